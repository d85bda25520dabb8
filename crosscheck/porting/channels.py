"""Where the features axis sits: channels last ``(N, ..., C)`` (jaxlin, ``nnx.Conv``) or channels first
``(N, C, ...)`` (``nn.Conv1d/2d/3d``), for a model's input and its output separately.

``channels_first=`` of ``check`` and ``locate`` takes ``True`` (the torch model takes its first input
and gives its outputs channels first), ``"input"`` (only the input: a convolution, then global pooling
and a ``Linear``), ``"output"`` (only the outputs), ``False`` (neither) or ``None`` (detected from the
torch model: :func:`channels_first_of`). Moving channels last to first moves the last axis to
position 1: NHWC -> NCHW, NDHWC -> NCDHW, ``(N, L, C)`` -> ``(N, C, L)``; a 2-D array is an unbatched
sequence, ``(L, C)`` -> ``(C, L)``.

>>> to_channels_first(np.zeros((2, 5, 6, 3))).shape, to_channels_last(np.zeros((2, 3, 5, 6))).shape
((2, 3, 5, 6), (2, 5, 6, 3))
>>> channels_option("input")
Channels(input=True, output=False)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import torch_ref

FORMS = "True, 'input', 'output', False or None (detected from the torch model)"


@dataclass(frozen=True)
class Channels:
    """Whether the torch model takes its first input channels first, and gives its outputs so."""

    input: bool = False
    output: bool = False


def channels_option(value) -> Channels | None:
    """``channels_first=`` as a :class:`Channels`, or ``None`` (detect it).

    >>> channels_option(True), channels_option(None)
    (Channels(input=True, output=True), None)

    Raises:
        ValueError: any other value, naming the accepted ones.
    """
    if value is None or isinstance(value, Channels):
        return value
    if isinstance(value, (bool, np.bool_)):
        return Channels(bool(value), bool(value))
    if isinstance(value, str) and value in ("input", "output"):
        return Channels(value == "input", value == "output")
    raise ValueError(f"channels_first must be {FORMS}; got {value!r}")


def swap_channels(a: np.ndarray) -> np.ndarray:
    """Channels last ``(..., length, features)`` <-> channels first ``(..., features, length)``; its
    own inverse (for 3-D arrays the same as :func:`to_channels_first` and :func:`to_channels_last`).

    Shape:
        ``(..., a, b)`` -> ``(..., b, a)``.
    """
    return np.swapaxes(a, -1, -2)


def to_channels_first(a: np.ndarray) -> np.ndarray:
    """``(N, ..., C)`` -> ``(N, C, ...)``: the last axis to position 1 (a 2-D array: swapped; fewer
    axes: as it is).

    Shape:
        ``(N, *spatial, C)`` -> ``(N, C, *spatial)``.
    """
    if np.ndim(a) >= 3:
        return np.moveaxis(a, -1, 1)
    return np.swapaxes(a, -1, -2) if np.ndim(a) == 2 else a


def to_channels_last(a: np.ndarray) -> np.ndarray:
    """``(N, C, ...)`` -> ``(N, ..., C)``: the inverse of :func:`to_channels_first`.

    Shape:
        ``(N, C, *spatial)`` -> ``(N, *spatial, C)``.
    """
    if np.ndim(a) >= 3:
        return np.moveaxis(a, 1, -1)
    return np.swapaxes(a, -1, -2) if np.ndim(a) == 2 else a


_CONVS = (
    *(torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d),
    *(torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d),
    *(torch.nn.BatchNorm2d, torch.nn.BatchNorm3d, torch_ref.PointwiseConv),
)
"""Leaf layers that take and give channels first."""
_LAST = (torch.nn.Linear, torch.nn.Flatten, torch.nn.LayerNorm, torch.nn.Embedding, torch.nn.RMSNorm)
"""Leaf layers that take or give channels last (or no channels axis)."""


def _leaves(torch_module) -> list:
    return [m for m in torch_module.modules() if not any(True for _ in m.children())]


def _decides(leaf) -> bool | None:
    if isinstance(leaf, _CONVS):
        return True
    if isinstance(leaf, _LAST) or any(True for _ in leaf.parameters(recurse=False)):
        return False  # a layer no rule knows, holding parameters: assume channels last
    return None  # activations, dropout, pooling, identity: the layout passes through


def channels_first_of(torch_module) -> Channels:
    """Where the torch model's features axis is, guessed conservatively from its leaf layers in
    registration order (execution order for ``nn.Sequential``): the input is channels first when the
    first layer that decides is a convolution (``nn.Conv1d/2d/3d``, a transposed one, ``BatchNorm2d/3d``
    or torch_ref's ``PointwiseConv``); the output when the last one that decides is (a ``Linear``,
    ``Flatten``, ``LayerNorm``, ``Embedding`` or an unknown layer with parameters decides channels last;
    activations, dropout and pooling pass the layout through).

    >>> stem = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    >>> classifier = torch.nn.Sequential(*stem, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
    ...                                  torch.nn.Linear(4, 2))
    >>> channels_first_of(stem), channels_first_of(classifier)
    (Channels(input=True, output=True), Channels(input=True, output=False))
    """
    decided = [d for d in map(_decides, _leaves(torch_module)) if d is not None]
    return Channels(bool(decided) and decided[0], bool(decided) and decided[-1])
