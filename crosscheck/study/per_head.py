"""The per-head study: every formulation of ``heads`` independent linears with bias, on one set of weights.

Input ``(batch, windows, heads, size)`` -> ``(batch, windows, heads, size)``: jaxlin's three impls
(through :func:`jaxlin.jitted`), jaxlin on heads-first input, plain ``jax.vmap``, three einsum
operand orders, the ``nnx.split_rngs`` + ``nnx.vmap`` stack under ``nnx.jit``, torch_ref's three
impls, torch_ref on heads-first input and, where asked, ``torch.compile``; and the row's kernel parity,
each framework's plain batched GEMM of the same shape (:mod:`crosscheck.study.parity`).
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
from crosscheck.study.engine import Config, Impl
from crosscheck.study.inputs import (
    compiled_hlo,
    heads_first,
    heads_last,
    module_hlo,
    no_grad,
    per_head_magnitude,
    per_head_traffic,
    random_inputs,
    study_pair,
)


def _pair(heads: int, size: int, device: str, **options):
    """A jaxlin/torch_ref PerHeadLinear pair of the study's shape on its one set of weights."""
    return study_pair(
        jaxlin.PerHeadLinear, torch_ref.PerHeadLinear, heads, size, size, device=device, **options
    )


def _jaxlin_impls(heads: int, size: int, shape, device: str) -> tuple[list[Impl], object]:
    impls, module = [], None
    for impl, name in (
        ("auto", names.JAXLIN_AUTO),
        ("einsum", names.JAXLIN_EINSUM),
        ("vmap", names.JAXLIN_VMAP),
        ("loop", names.JAXLIN_LOOP),
    ):
        module, _ = _pair(heads, size, device, jax_options={"impl": impl})
        call = jaxlin.jitted(module)
        impls.append(Impl(name, "jax", call, module_hlo(call, shape)))
    call = jaxlin.jitted(_pair(heads, size, device, head_axis=0)[0])
    first_shape = (shape[-2], *shape[:-2], size)
    impls.append(
        Impl(names.JAXLIN_HEADS_FIRST, "jax", call, module_hlo(call, first_shape), heads_first, heads_last)
    )
    return impls, module


def _jax_formulations(heads: int, size: int, shape, kernel, bias) -> list[Impl]:
    rows = int(np.prod(shape[:-2]))

    def per_head_fn(xh, k, b):
        return xh @ k + b[None, None]  # xh (batch, windows, in): broadcasting spelled out

    vmapped = jax.vmap(per_head_fn, in_axes=(2, 0, 0), out_axes=2)
    formulations = {
        names.JAX_VMAP: lambda x, k, b: vmapped(x, k, b),
        names.EINSUM_NAIVE: lambda x, k, b: jnp.einsum("...hi,hio->...ho", x, k) + b[None, None],
        names.EINSUM_KERNEL_FIRST: lambda x, k, b: jnp.einsum("hio,...hi->...ho", k, x) + b[None, None],
        names.EINSUM_HEADS_MAJOR: lambda x, k, b: jnp.moveaxis(
            jnp.einsum("hri,hio->hro", jnp.moveaxis(x.reshape(rows, heads, size), 1, 0), k) + b[:, None], 0, 1
        ).reshape(x.shape),
    }
    x0 = jax.ShapeDtypeStruct(shape, jnp.float32)  # zeros made only when the HLO is read
    impls = []
    for name, fn in formulations.items():
        compiled = jax.jit(fn)
        impls.append(
            Impl(name, "jax", lambda x, f=compiled: f(x, kernel, bias), compiled_hlo(fn, x0, kernel, bias))
        )
    return impls


def _nnx_stack(heads: int, size: int, kernel, bias):
    """Per-head ``nnx.Linear`` layers made by ``nnx.split_rngs`` + ``nnx.vmap``, applied by ``nnx.vmap``
    under ``nnx.jit`` (the Flax documentation's pattern)."""

    @nnx.split_rngs(splits=heads)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def create(rngs):
        return nnx.Linear(size, size, rngs=rngs)

    stack = create(nnx.Rngs(0))
    stack.kernel[...], stack.bias[...] = kernel, bias

    @nnx.jit
    def forward(stack, x):
        return nnx.vmap(lambda layer, xh: layer(xh), in_axes=(0, 2), out_axes=2)(stack, x)

    return lambda x: forward(stack, x)


def _torch_impls(heads: int, size: int, device: str, *, compiled: bool) -> list[Impl]:
    impls = []
    for impl, name in (
        ("bmm", names.TORCH_REF_BMM),
        ("vmap", names.TORCH_REF_VMAP),
        ("loop", names.TORCH_REF_LOOP),
    ):
        impls.append(
            Impl(name, "torch", no_grad(_pair(heads, size, device, torch_options={"impl": impl})[1]))
        )
    first = no_grad(_pair(heads, size, device, head_axis=0)[1])
    impls.append(
        Impl(names.TORCH_REF_BMM_HEADS_FIRST, "torch", first, to_layout=heads_first, from_layout=heads_last)
    )
    if compiled:
        impls.append(
            Impl(names.TORCH_COMPILE_BMM, "torch", no_grad(torch.compile(_pair(heads, size, device)[1])))
        )
    return impls


def _kernel_parity(heads: int, size: int, leading, kernel, bias, device: str) -> list[Impl]:
    """Each framework's plain batched GEMM ``(heads, rows, in) @ (heads, in, out)`` on the row's kernel,
    heads-major input, no bias: what the backend's matmul costs at this shape. Checked against the
    others with the bias added back in NumPy (so it is the same product on the same weights)."""
    rows = int(np.prod(leading))
    to_major = lambda x: heads_first(x).reshape(heads, rows, size)  # noqa: E731
    bias_np = np.asarray(bias, np.float32)
    back = lambda y: heads_last(y.reshape(heads, *leading, size)) + bias_np  # noqa: E731
    jax_bmm = jax.jit(jnp.matmul)
    torch_kernel = torch.from_numpy(np.array(kernel, np.float32)).to(device)

    def torch_bmm(x):
        with torch.no_grad():
            return torch.bmm(x, torch_kernel)

    x0 = jax.ShapeDtypeStruct((heads, rows, size), jnp.float32)  # zeros made only when the HLO is read
    return [
        Impl(
            names.JAX_BMM,
            "jax",
            lambda x: jax_bmm(x, kernel),
            compiled_hlo(jnp.matmul, x0, kernel),
            to_major,
            back,
        ),
        Impl(names.TORCH_BMM, "torch", torch_bmm, to_layout=to_major, from_layout=back),
    ]


def per_head(heads: int, size: int, leading: tuple[int, int], device: str, *, compiled: bool) -> Config:
    """The per-head linear at ``heads`` × ``size``→``size`` on ``leading`` = (batch, windows) rows."""
    shape = (*leading, heads, size)
    rows = int(np.prod(leading))
    jaxlin_impls, module = _jaxlin_impls(heads, size, shape, device)
    kernel, bias = module.kernel[...], module.bias[...]
    impls = jaxlin_impls + _jax_formulations(heads, size, shape, kernel, bias)
    impls.append(Impl(names.NNX_VMAP_STACK, "jax", _nnx_stack(heads, size, kernel, bias)))
    impls += _torch_impls(heads, size, device, compiled=compiled)
    impls += _kernel_parity(heads, size, leading, kernel, bias, device)
    return Config(
        names.PER_HEAD,
        f"h{heads} {size}→{size} rows {rows}",
        {"heads": heads, "size": size, "rows": rows},
        2.0 * rows * heads * size * size,
        random_inputs(shape, device),
        impls,
        per_head_magnitude(kernel, bias, rows, heads, size),
        k=size + 1,
        checked_rows=lambda y: y.reshape(rows, heads, size)[:8],
        traffic=per_head_traffic(rows, heads, size),
    )
