"""Layout rules that read the module they map (``Layout.params_of``): ``nnx.LinearGeneral`` and
``nnx.Einsum`` ↔ ``nn.Linear`` (weight ``(out, in)`` over the flattened feature axes), and
``nnx.PReLU`` ↔ ``nn.PReLU`` (registered by :mod:`crosscheck.weights.layouts`).

A ``LinearGeneral`` kernel ``(in..., out...)`` is ``weight.T`` reshaped by the module's own
``in_features`` and ``out_features``; an ``Einsum`` kernel is read through its string: the kernel
letters the output lacks are the input features (flattened in the input's order), those the input
lacks the output features (in the output's order), e.g. ``"BTD,NDH->BTNH"`` kernel ``(N, D, H)`` is
``nn.Linear(D, N·H)`` whose output is viewed as ``(B, T, N, H)``. A kernel letter in both (a per-head
weight) or in neither has no ``nn.Linear`` twin: :class:`WeightsError`.

>>> [rule.torch_name for rule in _einsum_params(nnx.Einsum("...d,dh->...h", (3, 2), rngs=nnx.Rngs(0)))]
['weight']
"""

from __future__ import annotations

import math

import numpy as np
from flax import nnx

from crosscheck.weights.fit import WeightsError
from crosscheck.weights.rules import Layout, ParamRule


def _flat_linear(in_shape: tuple[int, ...], out_shape: tuple[int, ...], order: tuple[int, ...]):
    """``(to_torch, from_torch)`` for a kernel whose axes, taken in ``order``, are ``(out..., in...)``
    of sizes ``out_shape + in_shape``: the weight ``(prod(out), prod(in))``."""
    inverse = tuple(int(i) for i in np.argsort(order))
    flat = (math.prod(out_shape), math.prod(in_shape))

    def to_torch(a: np.ndarray) -> np.ndarray:
        return np.reshape(np.transpose(a, order), flat)

    def from_torch(w: np.ndarray) -> np.ndarray:
        return np.transpose(np.reshape(w, (*out_shape, *in_shape)), inverse)

    return to_torch, from_torch


def _reshaper(shape: tuple[int, ...]):
    return lambda a: np.reshape(a, shape)


def _linear_general_params(module) -> tuple[ParamRule, ...]:
    in_shape, out_shape = tuple(module.in_features), tuple(module.out_features)
    if module.batch_axis:
        raise WeightsError(
            f"nnx.LinearGeneral(in_features={in_shape}, out_features={out_shape}, batch_axis="
            f"{dict(module.batch_axis)}): a kernel with batch axes has no nn.Linear twin; expected "
            "batch_axis={} (a kernel (in..., out...))"
        )
    spatial_in = len(in_shape)
    order = (*range(spatial_in, spatial_in + len(out_shape)), *range(spatial_in))
    kernel = ParamRule("kernel", "weight", *_flat_linear(in_shape, out_shape, order))
    bias = ParamRule("bias", "bias", _reshaper((math.prod(out_shape),)), _reshaper(out_shape))
    return (kernel, bias)


def _einsum_params(module) -> tuple[ParamRule, ...]:
    text = module.einsum_str.replace(" ", "")
    described = f"nnx.Einsum({module.einsum_str!r}, kernel_shape={tuple(module.kernel_shape)})"
    operands, _, out_spec = text.partition("->")
    in_spec, _, kernel_spec = operands.partition(",")
    if (
        not out_spec
        or "," in kernel_spec
        or "." in kernel_spec
        or len(kernel_spec) != len(module.kernel_shape)
    ):
        raise WeightsError(
            f"{described}: expected an einsum string 'input,kernel->output' with one letter per kernel "
            "axis and no ellipsis in the kernel, e.g. '...d,dh->...h'"
        )
    both = [c for c in kernel_spec if (c in in_spec) == (c in out_spec)]
    if both:
        raise WeightsError(
            f"{described}: kernel axes {', '.join(repr(c) for c in both)} are in both the input and the "
            "output, or in neither; an nn.Linear twin needs each kernel axis either contracted with the "
            "input or kept in the output (a per-head kernel is not one Linear)"
        )
    ins = sorted((c for c in kernel_spec if c in in_spec), key=in_spec.index)
    outs = sorted((c for c in kernel_spec if c in out_spec), key=out_spec.index)
    size = dict(zip(kernel_spec, module.kernel_shape, strict=True))
    in_shape, out_shape = tuple(size[c] for c in ins), tuple(size[c] for c in outs)
    order = tuple(kernel_spec.index(c) for c in (*outs, *ins))
    rules = [ParamRule("kernel", "weight", *_flat_linear(in_shape, out_shape, order))]
    if module.bias_shape is not None:
        bias_shape = tuple(module.bias_shape)
        if bias_shape != out_shape or not out_spec.endswith("".join(outs)):
            raise WeightsError(
                f"{described}: expected a bias of shape {out_shape} (the output features "
                f"{''.join(outs)!r}, last in the output), got bias_shape {bias_shape}"
            )
        rules.append(ParamRule("bias", "bias", _reshaper((math.prod(out_shape),)), _reshaper(out_shape)))
    return tuple(rules)


PRELU = Layout(
    "nnx.PReLU",
    (nnx.PReLU,),
    (ParamRule("negative_slope", "weight", _reshaper((1,)), _reshaper(())),),  # torch (1,), Flax ()
    ("PReLU",),
)
LINEAR_GENERAL = Layout(
    "nnx.LinearGeneral", (nnx.LinearGeneral,), (), ("Linear",), params_of=_linear_general_params
)
EINSUM = Layout("nnx.Einsum", (nnx.Einsum,), (), ("Linear",), params_of=_einsum_params)
GENERAL_LAYOUTS = (PRELU, LINEAR_GENERAL, EINSUM)
