"""Each framework's own call: its positional inputs and keyword arguments, in the working dtype and in
float64, and how the torch side's first input is laid out against the JAX side's.

``check(jax_model, torch_model, x_nhwc, torch_inputs=(x_nchw,), jax_kwargs=..., torch_kwargs=...)``:
floating arrays are rounded to the working dtype once and the float64 runs get exactly those values;
anything else (masks, token ids, flags) is passed as it is.

>>> x = np.arange(24.0).reshape(2, 3, 4)
>>> input_axes(x, np.transpose(x, (0, 2, 1)))
(0, 2, 1)
>>> input_axes(x, x[::-1]) is None
True
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from crosscheck.numerics import is_floating
from crosscheck.porting.evaluate import cast_inputs


@dataclass(frozen=True)
class Side:
    """One framework's arguments: ``work`` in the working dtype, ``truth`` the same values in float64."""

    work: tuple
    truth: tuple
    kwargs_work: dict = field(default_factory=dict)
    kwargs_truth: dict = field(default_factory=dict)


def cast_keywords(kwargs: dict | None, dtype) -> dict:
    """Keyword arguments with floating arrays cast to ``dtype``; everything else as it is."""
    cast = {}
    for name, value in (kwargs or {}).items():
        floating = isinstance(value, np.ndarray) and is_floating(value.dtype)
        cast[name] = value.astype(dtype) if floating else value
    return cast


def side(inputs, kwargs: dict | None, dtype) -> Side:
    """A :class:`Side` for ``inputs`` and ``kwargs`` (array-likes become NumPy arrays)."""
    kwargs = {k: np.asarray(v) if hasattr(v, "__array__") else v for k, v in (kwargs or {}).items()}
    work, kwargs_work = cast_inputs(inputs, dtype), cast_keywords(kwargs, dtype)
    return Side(work, cast_inputs(work, np.float64), kwargs_work, cast_keywords(kwargs_work, np.float64))


def input_axes(jax_input: np.ndarray, torch_input: np.ndarray) -> tuple[int, ...] | None:
    """The axis permutation that turns the JAX side's input into the torch side's (``np.transpose``),
    found from their values; ``None`` when no permutation does (the input gradients cannot pair)."""
    ours, theirs = np.asarray(jax_input), np.asarray(torch_input)
    if ours.ndim != theirs.ndim or ours.ndim > 6:
        return None
    for axes in itertools.permutations(range(ours.ndim)):
        moved = np.transpose(ours, axes)
        if moved.shape == theirs.shape and np.array_equal(moved, theirs, equal_nan=True):
            return axes
    return None


def to_jax_layout(torch_gradient: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """A gradient of the torch side's input laid out as the JAX side's input (``axes`` inverted)."""
    return np.transpose(torch_gradient, np.argsort(axes))
