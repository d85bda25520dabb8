"""Layout rule of ``nnx.ConvTranspose`` ↔ ``nn.ConvTranspose1d/2d/3d`` (registered by
:mod:`crosscheck.weights.layouts`), and the padding notes of ``nnx.Conv`` ↔ ``nn.Conv1d/2d/3d``
(:func:`conv_padding_notes`: Flax's ``"SAME"`` depends on the input size, so it is compared with
PyTorch's padding residue by residue, :func:`same_agrees`).

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


def same_agrees(
    kernel: int, stride: int, dilation: int, low: int, high: int | None = None
) -> tuple[int, ...]:
    """The residues ``size % stride`` at which Flax's ``padding="SAME"`` computes what PyTorch's
    padding ``(low, high)`` does on one axis (same first window, same number of outputs); ``high``
    defaults to ``low`` (PyTorch's ``padding=p``).

    XLA's SAME pads ``max((ceil(n/s) − 1)·s + K − n, 0)`` in total (``K = d·(k − 1) + 1``), low half
    rounded down: ``max(K − s, 0)`` when ``n % s == 0``, else ``max(K − n % s, 0)``. PyTorch makes
    ``floor((n + 2p − K)/s) + 1`` outputs, SAME ``ceil(n/s)``; both depend on ``n`` through ``n % s``.

    Shape:
        one spatial axis; the residues in ``range(stride)``.

    >>> same_agrees(16, 16, 1, 0)  # a patch embedding: only sizes that are multiples of 16
    (0,)
    >>> same_agrees(3, 1, 1, 1), same_agrees(3, 2, 1, 1)
    ((0,), (1,))
    """
    reach, high = dilation * (kernel - 1) + 1, low if high is None else high
    agree = []
    for r in range(stride):
        total = max(reach - (stride if r == 0 else r), 0)
        outputs_agree = (r + low + high - reach) // stride + 1 == (1 if r else 0)
        if total // 2 == low and outputs_agree:
            agree.append(r)
    return tuple(agree)


def _pairs(padding, kernel: tuple[int, ...], dilation: tuple[int, ...]):
    """Either framework's padding as per-axis ``(low, high)`` pairs; ``"SAME"`` for Flax's (it depends
    on the input size), another mode's name (``"CIRCULAR"``) as it is."""
    spatial = len(kernel)
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0),) * spatial
        return mode
    sizes = (padding,) * spatial if isinstance(padding, int) else tuple(padding)
    return tuple((p, p) if isinstance(p, int) else tuple(p) for p in sizes)


def conv_padding_notes(ours, theirs) -> list[str]:
    """What differs between an ``nnx.Conv``'s padding and an ``nn.Conv1d/2d/3d``'s, or nothing.

    >>> import torch
    >>> patches = nnx.Conv(3, 8, kernel_size=(16, 16), strides=(16, 16), padding="SAME", rngs=nnx.Rngs(0))
    >>> (note,) = conv_padding_notes(patches, torch.nn.Conv2d(3, 8, 16, stride=16))
    >>> print(note)  # doctest: +NORMALIZE_WHITESPACE
    padding 'SAME' in Flax vs (0, 0) in PyTorch: the same function where every spatial size is a
    multiple of 16 (SAME's padding depends on the size); other sizes differ
    """
    kernel = tuple(ours.kernel_size)
    dilation = _per_axis(ours.kernel_dilation, len(kernel))
    strides = _per_axis(ours.strides, len(kernel))
    flax = _pairs(ours.padding, kernel, dilation)
    torch = theirs.padding
    if isinstance(torch, str) and torch.lower() == "same":  # stride 1 only; low half rounded down
        torch = tuple(((t := d * (k - 1)) // 2, t - t // 2) for k, d in zip(kernel, dilation, strict=True))
    torch = _pairs(torch, kernel, dilation)
    if flax == torch:
        return []
    plain = [f"padding {ours.padding!r} in Flax vs {theirs.padding!r} in PyTorch"]
    if flax != "SAME" or isinstance(torch, str) or tuple(getattr(theirs, "stride", strides)) != strides:
        return plain
    axes = list(zip(kernel, strides, dilation, torch, strict=True))
    agree = [same_agrees(k, s, d, low, high) for k, s, d, (low, high) in axes]
    if all(len(a) == s for a, s in zip(agree, strides, strict=True)):
        return []
    if not all(agree):
        return plain  # different for every input size
    if len(strides) > 1 and len(set(zip(strides, agree, strict=True))) == 1:  # every axis alike
        where = _condition("every spatial size", strides[0], agree[0])
    else:
        where = " and ".join(
            _condition("the size" if len(strides) == 1 else f"spatial size {axis}", s, a)
            for axis, (a, s) in enumerate(zip(agree, strides, strict=True))
            if len(a) < s
        )
    return [plain[0] + f": the same function where {where} (SAME's padding depends on the size); "
            "other sizes differ"]  # fmt: skip


def _condition(label: str, stride: int, residues: tuple[int, ...]) -> str:
    if residues == (0,):
        return f"{label} is a multiple of {stride}"
    if stride == 2:
        return f"{label} is odd"
    if len(residues) == 1:
        return f"{label} % {stride} == {residues[0]}"
    return f"{label} % {stride} in {residues}"


CONV_TRANSPOSE = Layout(
    "nnx.ConvTranspose",
    (nnx.ConvTranspose,),
    _conv_transpose_params(None),
    ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"),
    channels_first=True,
    notes=_conv_transpose_notes,
    params_of=_conv_transpose_params,
)
