"""The bfloat16 rows: jaxlin's ``Linear`` and ``PerHeadLinear`` (their default impl) against torch_ref's in
bfloat16 at the target shapes, each with its kernel parity (each framework's plain bfloat16 GEMM of
the same shape, timed in the same rounds), as the float32 per-head rows have (issue 23 item 3).

Weights are the study's one set (torch_ref's init under seed 0), rounded to bfloat16 for every
bfloat16 implementation; inputs are the study's float32 normals rounded to bfloat16. The first
implementation of each configuration is jaxlin's float32 layer on the unrounded inputs: every bfloat16
output is checked against it within twice the bfloat16 rounding allowance
(:class:`~crosscheck.numerics.Bound` with ``dtype="bfloat16"``), so a bfloat16 row that computes
something else fails the check as any other row would. These rows have no FLOPs: the run's roofline
is float32's (its GEMM peak), and a bfloat16 GEMM may run above it.

>>> config = per_head_bfloat16(2, 4, (2, 3), "cpu")
>>> config.label, config.rounding_dtype, [impl.name for impl in config.impls][:2]
('h2 4→4 rows 6, bfloat16', 'bfloat16', ['jaxlin PerHeadLinear float32 (the check’s reference)', \
'jaxlin PerHeadLinear auto (the default), bfloat16'])
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

import jaxlin
import torch_ref
from crosscheck.study import names
from crosscheck.study.engine import Config, Impl, Traffic
from crosscheck.study.inputs import (
    float32_normal,
    heads_first,
    heads_last,
    linear_magnitude,
    no_grad,
    per_head_magnitude,
    study_pair,
)

BF16 = "bfloat16"


def bfloat16_inputs(shape, device: str):
    """``make(seed, impl)``: the study's float32 normals of ``shape`` in the impl's framework and layout,
    rounded to bfloat16 except for the float32 reference (:data:`~crosscheck.study.names.FLOAT32_REFERENCE`
    names)."""

    def make(seed: int, impl: Impl):
        x = float32_normal(seed, shape)
        x = np.ascontiguousarray(impl.to_layout(x)) if impl.to_layout else x
        keep = impl.name in names.FLOAT32_REFERENCE
        if impl.framework == "jax":
            return (jnp.asarray(x) if keep else jnp.asarray(x).astype(jnp.bfloat16),)
        tensor = torch.from_numpy(x).to(device)
        return (tensor if keep else tensor.to(torch.bfloat16),)

    return make


def _bf16_traffic(inputs: float, weights: float, outputs: float) -> Traffic:
    return Traffic(2.0 * inputs, 2.0 * weights, 2.0 * outputs)


def per_head_bfloat16(heads: int, size: int, leading: tuple[int, int], device: str) -> Config:
    """PerHeadLinear ``heads`` × ``size``→``size`` on ``leading`` rows, heads-last input, bfloat16: jaxlin's
    default, torch_ref's bmm and vmap, and the plain batched GEMM of each framework."""
    shape, rows = (*leading, heads, size), int(np.prod(leading))
    reference, torch_f32 = study_pair(
        jaxlin.PerHeadLinear, torch_ref.PerHeadLinear, heads, size, size, device=device
    )
    kernel, bias = reference.kernel[...], reference.bias[...]
    ours = jaxlin.PerHeadLinear(heads, size, size, param_dtype=jnp.bfloat16, rngs=jax_rngs())
    ours.kernel[...], ours.bias[...] = kernel.astype(jnp.bfloat16), bias.astype(jnp.bfloat16)
    impls = [
        Impl(names.JAXLIN_PER_HEAD_F32_REF, "jax", jaxlin.jitted(reference)),
        Impl(names.JAXLIN_PER_HEAD_BF16, "jax", jaxlin.jitted(ours)),
    ]
    for impl in ("bmm", "vmap"):
        mirror = torch_ref.PerHeadLinear(heads, size, size, impl=impl)
        mirror.load_state_dict(torch_f32.state_dict())
        impls.append(
            Impl(names.TORCH_REF_PER_HEAD_BF16[impl], "torch", no_grad(mirror.to(device, torch.bfloat16)))
        )
    to_major = lambda x: heads_first(x).reshape(heads, rows, size)  # noqa: E731
    bias_np = np.asarray(bias, np.float32)
    back = lambda y: heads_last(y.reshape(heads, *leading, size)) + bias_np  # noqa: E731
    jax_kernel = kernel.astype(jnp.bfloat16)
    torch_kernel = torch.from_numpy(np.array(kernel, np.float32)).to(device, torch.bfloat16)
    matmul = jax.jit(jnp.matmul)

    def torch_bmm(x):
        with torch.no_grad():
            return torch.bmm(x, torch_kernel)

    impls += [
        Impl(
            names.JAX_BMM_BF16, "jax", lambda x: matmul(x, jax_kernel), to_layout=to_major, from_layout=back
        ),
        Impl(names.TORCH_BMM_BF16, "torch", torch_bmm, to_layout=to_major, from_layout=back),
    ]
    return Config(
        names.BF16_PER_HEAD,
        f"h{heads} {size}→{size} rows {rows}, {BF16}",
        {"heads": heads, "size": size, "rows": rows},
        None,
        bfloat16_inputs(shape, device),
        impls,
        per_head_magnitude(kernel, bias, rows, heads, size),
        k=size + 1,
        checked_rows=lambda y: y.reshape(rows, heads, size)[:8],
        traffic=_bf16_traffic(rows * heads * size, heads * size * (size + 1), rows * heads * size),
        rounding_dtype=BF16,
    )


def linear_bfloat16(rows: int, n_in: int, n_out: int, device: str) -> Config:
    """Linear ``(rows, n_in) -> (rows, n_out)`` in bfloat16: jaxlin's default against torch_ref's, and the
    plain GEMM of each framework (``jnp.matmul``, ``torch.mm``)."""
    reference, torch_f32 = study_pair(jaxlin.Linear, torch_ref.Linear, n_in, n_out, device=device)
    kernel, bias = reference.kernel[...], reference.bias[...]
    ours = jaxlin.Linear(n_in, n_out, param_dtype=jnp.bfloat16, rngs=jax_rngs())
    ours.kernel[...], ours.bias[...] = kernel.astype(jnp.bfloat16), bias.astype(jnp.bfloat16)
    mirror = torch_ref.Linear(n_in, n_out)
    mirror.load_state_dict(torch_f32.state_dict())
    jax_kernel = kernel.astype(jnp.bfloat16)
    torch_kernel = torch.from_numpy(np.array(kernel, np.float32)).to(device, torch.bfloat16)
    bias_np = np.asarray(bias, np.float32)
    matmul = jax.jit(jnp.matmul)

    def torch_mm(x):
        with torch.no_grad():
            return torch.mm(x, torch_kernel)

    plus_bias = lambda y: y + bias_np  # noqa: E731
    impls = [
        Impl(names.JAXLIN_LINEAR_F32_REF, "jax", jaxlin.jitted(reference)),
        Impl(names.JAXLIN_LINEAR_BF16, "jax", jaxlin.jitted(ours)),
        Impl(names.TORCH_REF_LINEAR_BF16, "torch", no_grad(mirror.to(device, torch.bfloat16))),
        Impl(names.JAX_MM_BF16, "jax", lambda x: matmul(x, jax_kernel), from_layout=plus_bias),
        Impl(names.TORCH_MM_BF16, "torch", torch_mm, from_layout=plus_bias),
    ]
    return Config(
        names.BF16_LINEAR,
        f"({rows}, {n_in})→{n_out}, {BF16}",
        {"rows": rows, "size": n_in, "out": n_out},
        None,
        bfloat16_inputs((rows, n_in), device),
        impls,
        linear_magnitude(kernel, bias),
        k=n_in + 1,
        checked_rows=lambda y: y.reshape(-1, n_out)[:8],
        traffic=_bf16_traffic(rows * n_in, n_in * n_out + n_out, rows * n_out),
        rounding_dtype=BF16,
    )


def jax_rngs() -> nnx.Rngs:
    """A throwaway ``nnx.Rngs`` for layers whose parameters are overwritten at once."""
    return nnx.Rngs(0)
