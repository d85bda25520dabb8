"""Layout rule of ``nnx.ConvTranspose`` ↔ ``nn.ConvTranspose1d/2d/3d`` (registered by
:mod:`crosscheck.weights.layouts`).

PyTorch's transposed convolution is the gradient of its convolution: weight ``(in, out, k...)``
(``groups=1``). Flax's ``nnx.ConvTranspose`` with ``transpose_kernel=False`` (the default) is a
dilated-input convolution that does NOT flip its kernel ``(k..., in, out)``, so the same function
needs the kernel flipped along every spatial axis: ``kernel = flip(weight.transpose(k..., in, out))``.
With ``transpose_kernel=True`` Flax flips and swaps itself; its kernel ``(k..., out, in)`` is then
the weight transposed, unflipped (both found by comparing outputs in float64, stride, dilation and
padding varied).

Padding: PyTorch's ``padding=p, output_padding=q`` is Flax's explicit padding
``(d·(k−1) − p, d·(k−1) − p + q)`` per axis; ``"VALID"`` and ``"SAME"`` are compared through the
pairs JAX computes for them, so only a real difference is noted.

>>> w = np.arange(6.0).reshape(1, 2, 3)  # torch (in=1, out=2, k=3)
>>> bool(np.array_equal(_flipped_to_weight(_weight_to_flipped(w)), w))
True
"""

from __future__ import annotations

import numpy as np
from flax import nnx

from crosscheck.weights.rules import Layout, ParamRule


def _weight_to_flipped(w: np.ndarray) -> np.ndarray:
    """torch ``(in, out, k...)`` -> Flax ``(k..., in, out)`` flipped in space (transpose_kernel=False)."""
    spatial = w.ndim - 2
    return np.flip(np.transpose(w, (*range(2, w.ndim), 0, 1)), axis=tuple(range(spatial)))


def _flipped_to_weight(a: np.ndarray) -> np.ndarray:
    """Flax ``(k..., in, out)`` (transpose_kernel=False) -> torch ``(in, out, k...)``, unflipped."""
    spatial = a.ndim - 2
    return np.transpose(np.flip(a, axis=tuple(range(spatial))), (spatial, spatial + 1, *range(spatial)))


def _swapped_to_weight(a: np.ndarray) -> np.ndarray:
    """Flax ``(k..., out, in)`` (transpose_kernel=True) -> torch ``(in, out, k...)``."""
    spatial = a.ndim - 2
    return np.transpose(a, (spatial + 1, spatial, *range(spatial)))


def _weight_to_swapped(w: np.ndarray) -> np.ndarray:
    """torch ``(in, out, k...)`` -> Flax ``(k..., out, in)`` (transpose_kernel=True)."""
    return np.transpose(w, (*range(2, w.ndim), 1, 0))


def _conv_transpose_params(module) -> tuple[ParamRule, ...]:
    if getattr(module, "transpose_kernel", False):
        kernel = ParamRule("kernel", "weight", _swapped_to_weight, _weight_to_swapped)
    else:
        kernel = ParamRule("kernel", "weight", _flipped_to_weight, _weight_to_flipped)
    return (kernel, ParamRule("bias", "bias"))


def _per_axis(value, spatial: int) -> tuple[int, ...]:
    value = 1 if value is None else value
    return (value,) * spatial if isinstance(value, int) else tuple(value)


def _jax_pairs(padding, kernel: tuple[int, ...], strides: tuple[int, ...]):
    """Flax's padding as the ``(low, high)`` pairs ``lax.conv_transpose`` pads the dilated input
    with (its rule for ``"SAME"`` and ``"VALID"``); ``None`` for another mode (``"CIRCULAR"``)."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode not in ("SAME", "VALID"):
            return None
        pairs = []
        for k, s in zip(kernel, strides, strict=True):
            length = k + s - 2 + (max(k - s, 0) if mode == "VALID" else 0)
            low = k - 1 if mode == "VALID" or s > k - 1 else int(np.ceil(length / 2))
            pairs.append((low, length - low))
        return tuple(pairs)
    sizes = (padding,) * len(kernel) if isinstance(padding, int) else tuple(padding)
    return tuple((p, p) if isinstance(p, int) else tuple(p) for p in sizes)


def _conv_transpose_notes(ours, theirs) -> list[str]:
    spatial = len(ours.kernel_size)
    strides, dilation = _per_axis(ours.strides, spatial), _per_axis(ours.kernel_dilation, spatial)
    notes = []
    for flax_name, flax_value, torch_name in (("strides", strides, "stride"),
                                              ("kernel_dilation", dilation, "dilation")):  # fmt: skip
        torch_value = getattr(theirs, torch_name, None)
        if torch_value is not None and flax_value != tuple(torch_value):
            notes.append(f"{flax_name} {flax_value} in Flax vs {torch_name} {tuple(torch_value)} in PyTorch")
    if all(hasattr(theirs, name) for name in ("padding", "output_padding", "dilation")):
        dilated = tuple(d * (k - 1) + 1 for k, d in zip(ours.kernel_size, dilation, strict=True))
        flax = _jax_pairs(ours.padding, dilated, strides)
        reach = tuple(
            d * (k - 1) for k, d in zip(ours.kernel_size, _per_axis(theirs.dilation, spatial), strict=True)
        )
        sizes = zip(reach, theirs.padding, theirs.output_padding, strict=True)
        torch = tuple((r - p, r - p + q) for r, p, q in sizes)
        if flax != torch:
            notes.append(
                f"padding {ours.padding!r} in Flax vs padding {tuple(theirs.padding)}, output_padding "
                f"{tuple(theirs.output_padding)} in PyTorch (Flax pads the dilated input by {torch} to match)"
            )
    return notes


CONV_TRANSPOSE = Layout(
    "nnx.ConvTranspose",
    (nnx.ConvTranspose,),
    _conv_transpose_params(None),
    ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"),
    channels_first=True,
    notes=_conv_transpose_notes,
    params_of=_conv_transpose_params,
)
