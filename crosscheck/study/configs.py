"""The study's grids and its configurations of the layers: PointwiseConv against Linear, PooledHead's
reorder, BatchInvariantLinear, the ways to call a module, the cost of a bias, and Linear's row sweep.
The machine's limits (the GEMM peak, the memory bandwidth) are built by
:mod:`~crosscheck.study.machine_limits`; :func:`peak` and :func:`bandwidth` are imported here, so that
the plan reads every configuration from this module.

Each layer builder returns a :class:`~crosscheck.study.engine.Config` whose implementations share one
set of weights: the torch_ref module's init, copied into jaxlin by the one pair builder and into plain
PyTorch layers by :func:`crosscheck.weights.copy_jax_to_torch`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

import jaxlin
import torch_ref
from crosscheck.porting.channels import swap_channels
from crosscheck.porting.magnitudes import magnitudes
from crosscheck.study import names
from crosscheck.study.engine import Config, Impl, float32_traffic
from crosscheck.study.inputs import (
    first_rows,
    linear_magnitude,
    no_grad,
    per_head_magnitude,
    per_head_traffic,
    random_inputs,
    study_pair,
)
from crosscheck.study.machine_limits import bandwidth as bandwidth
from crosscheck.study.machine_limits import peak as peak
from crosscheck.suite.cases import PLACEHOLDER_INIT
from crosscheck.weights import copy_jax_to_torch

FULL = {
    "heads": (1, 4, 8, 16, 32),
    "sizes": (32, 64, 128, 256, 512, 1024),
    "leading": ((32, 64), (4, 16)),  # (batch, windows)
    "pooled_lengths": (16, 256, 2048),
    "peak_shapes": ((2048, 2048, 2048), (2048, 1024, 1024)),
}
QUICK = {
    "heads": (4, 8),
    "sizes": (32, 64),
    "leading": ((4, 16),),
    "pooled_lengths": (16, 256),
    "peak_shapes": ((1024, 1024, 1024),),
}
TARGET_SHAPES = ((8, 64), (16, 128), (4, 512))  # (heads, in = out) at leading (32, 64): 2048 rows


def _torch_twin(module, jax_module, device: str):
    """A plain PyTorch layer given ``jax_module``'s weights, on ``device``."""
    copy_jax_to_torch(jax_module, module)
    return module.to(device)


def _dense(
    study: str, rows: int, n_in: int, n_out: int, device: str, impls, magnitude, *, leading=None, **options
) -> Config:
    """A configuration of ``(rows, n_in) -> (rows, n_out)`` layers (the rows shaped ``leading`` when
    given, e.g. ``(batch, length)``): label, sizes, FLOPs and inputs."""
    leading = leading or (rows,)
    traffic = float32_traffic(rows * n_in, n_in * n_out + n_out, rows * n_out)
    options = {"k": n_in + 1, "checked_rows": first_rows(n_out), "traffic": traffic} | options
    sizes, flops = {"rows": rows, "size": n_in}, 2.0 * rows * n_in * n_out
    label = f"({', '.join(map(str, leading))}, {n_in})→{n_out}"
    inputs = random_inputs((*leading, n_in), device)
    return Config(study, label, sizes, flops, inputs, impls, magnitude, **options)


def pointwise(batch: int, length: int, n_in: int, n_out: int, device: str) -> Config:
    """A 1×1 convolution on ``(batch, length, in)`` (torch: ``(batch, in, length)``) against Linear."""
    linear, _ = study_pair(jaxlin.Linear, torch_ref.Linear, n_in, n_out, device=device)
    impls = [Impl(names.JAXLIN_LINEAR, "jax", jaxlin.jitted(linear))]
    for impl in ("auto", "matmul", "conv"):
        conv, _ = study_pair(
            jaxlin.PointwiseConv,
            torch_ref.PointwiseConv,
            n_in,
            n_out,
            device=device,
            jax_options={"impl": impl},
        )
        conv.kernel[...] = linear.kernel[...][None]  # the Linear's weights, as a (1, in, out) kernel
        conv.bias[...] = linear.bias[...]
        impls.append(Impl(names.JAXLIN_POINTWISE[impl], "jax", jaxlin.jitted(conv)))
    torch_linear = _torch_twin(torch.nn.Linear(n_in, n_out), linear, device)
    impls.append(Impl(names.TORCH_LINEAR_CHANNELS_LAST, "torch", no_grad(torch_linear)))
    channels_first = {"to_layout": swap_channels, "from_layout": swap_channels}
    impls.append(
        Impl(
            names.TORCH_LINEAR_CHANNELS_FIRST,
            "torch",  # what a user holding (batch, channels, length) writes
            no_grad(lambda x: torch_linear(x.transpose(-1, -2)).transpose(-1, -2)),
            **channels_first,
        )
    )
    for impl in ("matmul", "conv"):
        mirror = _torch_twin(torch_ref.PointwiseConv(n_in, n_out, impl=impl), conv, device)
        impls.append(Impl(names.TORCH_REF_POINTWISE[impl], "torch", no_grad(mirror), **channels_first))
    conv1d = _torch_twin(torch.nn.Conv1d(n_in, n_out, 1), conv, device)
    impls.append(Impl(names.TORCH_CONV1D, "torch", no_grad(conv1d), **channels_first))
    return Config(
        names.POINTWISE,
        f"({batch}, {length}, {n_in})→{n_out}",
        {"rows": batch * length, "size": n_in},
        2.0 * batch * length * n_in * n_out,
        random_inputs((batch, length, n_in), device),
        impls,
        linear_magnitude(linear.kernel[...], linear.bias[...]),
        k=n_in + 1,
        checked_rows=first_rows(n_out),
        traffic=float32_traffic(batch * length * n_in, n_in * n_out + n_out, batch * length * n_out),
    )


POOLED_ROUNDS = 30
"""Rounds for the pooled configurations: a literal head takes ~40× the pool-first one, so the time
budget alone would give the millisecond rows only ~10 samples, too few for a median here."""


def pooled(batch: int, length: int, features: int, device: str) -> Config:
    """``PooledHead(pool_at="output")`` literal (reorder off) against pool-first (reorder on), and
    the bare mean over the same input: the pool-first head can cost no less than reading it once."""
    out = 16
    positions = batch * length
    mean_flops = float(positions * features)
    head_flops = {
        False: 2.0 * positions * features * (features + out) + positions * out,
        True: mean_flops + 2.0 * batch * features * (features + out),
    }
    impls, literal = [], None
    for reorder in (True, False):
        module, mirror = study_pair(
            jaxlin.PooledHead,
            torch_ref.PooledHead,
            features,
            features,
            out,
            device=device,
            pool_at="output",
            reorder=reorder,
        )
        literal = module
        work = {"flops": head_flops[reorder]}
        impls.append(Impl(names.JAXLIN_REORDER[reorder], "jax", jaxlin.jitted(module), **work))
        impls.append(Impl(names.TORCH_REF_REORDER[reorder], "torch", no_grad(mirror), **work))
    impls = impls[0::2] + impls[1::2]  # the JAX impls first: the first one is the reference
    mean = jax.jit(lambda x: jnp.mean(x, axis=1))
    reads = float32_traffic(positions * features, 0, batch * features)
    impls.append(Impl(names.JAX_MEAN, "jax", mean, flops=mean_flops, traffic=reads, checked=False))

    def magnitude(inputs):
        return magnitudes(literal, (np.asarray(inputs[0])[:2],), None, grads=False).output

    return Config(
        names.POOLED,
        f"T={length} ({batch}, {length}, {features})",
        {"rows": batch, "length": length, "size": features},
        head_flops[False],
        random_inputs((batch, length, features), device),
        impls,
        magnitude,
        k=2 * features + 2 + length,
        checked_rows=lambda y: y[:2],
        traffic=float32_traffic(
            positions * features, features * (features + out) + features + out, batch * out
        ),
        rounds=POOLED_ROUNDS,
    )


def invariant(rows: int, n_in: int, n_out: int, device: str) -> Config:
    """``BatchInvariantLinear`` against ``Linear`` with the same weights, both frameworks."""
    impls = []
    for name, jax_cls in (
        (names.JAXLIN_LINEAR, jaxlin.Linear),
        (names.JAXLIN_INVARIANT, jaxlin.BatchInvariantLinear),
    ):
        module, _ = study_pair(jax_cls, torch_ref.Linear, n_in, n_out, device=device)
        impls.append(Impl(name, "jax", jaxlin.jitted(module)))
    plain = _torch_twin(torch.nn.Linear(n_in, n_out), module, device)
    tiled = _torch_twin(torch_ref.BatchInvariantLinear(n_in, n_out), module, device)
    impls += [
        Impl(names.TORCH_LINEAR, "torch", no_grad(plain)),
        Impl(names.TORCH_INVARIANT, "torch", no_grad(tiled)),
    ]
    return _dense(
        names.INVARIANT,
        rows,
        n_in,
        n_out,
        device,
        impls,
        linear_magnitude(module.kernel[...], module.bias[...]),
    )


def call_path(heads: int, size: int, leading: tuple[int, int], device: str) -> Config:
    """One PerHeadLinear called four ways: eagerly, ``nnx.jit``, :func:`jaxlin.jitted` (the
    recommendation) and a raw ``jax.jit`` pure function with the same math."""
    module, _ = study_pair(jaxlin.PerHeadLinear, torch_ref.PerHeadLinear, heads, size, size, device=device)
    kernel, bias = module.kernel[...], module.bias[...]
    rows = int(np.prod(leading))

    @nnx.jit
    def nnx_call(module, x):
        return module(x)

    def raw(x, k, b):  # PerHeadLinear's default formulation, written out
        y = jnp.einsum("hri,hio->hro", jnp.moveaxis(x.reshape(rows, heads, size), 1, 0), k) + b[:, None]
        return jnp.moveaxis(y, 0, 1).reshape(x.shape)

    raw_jit = jax.jit(raw)
    impls = [
        Impl(names.RAW_JIT, "jax", lambda x: raw_jit(x, kernel, bias)),
        Impl(names.RECOMMENDED, "jax", jaxlin.jitted(module)),
        Impl(names.NNX_JIT, "jax", lambda x: nnx_call(module, x)),
        Impl(names.EAGER, "jax", module),
    ]
    return Config(
        names.CALL_PATH,
        f"h{heads} {size}→{size} rows {rows}",
        {"heads": heads, "size": size, "rows": rows},
        2.0 * rows * heads * size * size,
        random_inputs((*leading, heads, size), "cpu"),
        impls,
        per_head_magnitude(kernel, bias, rows, heads, size),
        k=size + 1,
        checked_rows=lambda y: y.reshape(rows, heads, size)[:8],
        traffic=per_head_traffic(rows, heads, size),
    )


def bias(rows: int, features: int, device: str) -> Config:
    """jaxlin ``Linear`` with and without a bias (and torch's, for scale) at a tall shape."""
    with_bias, _ = study_pair(jaxlin.Linear, torch_ref.Linear, features, features, device=device)
    without = jaxlin.Linear(features, features, use_bias=False, rngs=nnx.Rngs(0), **PLACEHOLDER_INIT)
    without.kernel[...] = with_bias.kernel[...]
    impls = [
        Impl(names.JAXLIN_BIAS[True], "jax", jaxlin.jitted(with_bias)),
        Impl(names.JAXLIN_BIAS[False], "jax", jaxlin.jitted(without)),
    ]
    for use, source in ((True, with_bias), (False, without)):
        module = _torch_twin(torch.nn.Linear(features, features, bias=use), source, device)
        impls.append(Impl(names.TORCH_BIAS[use], "torch", no_grad(module)))
    return _dense(
        names.BIAS,
        rows,
        features,
        features,
        device,
        impls,
        None,
        checked_rows=lambda y: y[:0],
        extra={"note": "outputs differ by the bias; not compared"},
    )


ROW_SWEEP = (64, 256, 1024, 4096, 16384, 65536)
QUICK_ROWS = (64, 4096)


LINEAR_ROWS_LENGTH = 1024
"""The sequence length of the Linear row sweep's inputs: ``(rows / 1024, 1024, in)``, as a Conv1d's."""


def linear_rows(rows: int, n_in: int, n_out: int, device: str) -> Config:
    """``Linear`` (``impl="auto"``, the default) at ``rows`` rows shaped ``(batch, length)`` against its
    two explicit lowerings (a dot, a 1×1 convolution: PointwiseConv's two paths on the same weights)
    and torch's ``nn.Linear``."""
    linear, _ = study_pair(jaxlin.Linear, torch_ref.Linear, n_in, n_out, device=device)
    impls = [Impl(names.JAXLIN_LINEAR, "jax", jaxlin.jitted(linear))]
    for impl in ("matmul", "conv"):
        conv = jaxlin.PointwiseConv(n_in, n_out, impl=impl, rngs=nnx.Rngs(0), **PLACEHOLDER_INIT)
        conv.kernel[...], conv.bias[...] = linear.kernel[...][None], linear.bias[...]
        impls.append(Impl(names.JAXLIN_POINTWISE[impl], "jax", jaxlin.jitted(conv)))
    impls.append(
        Impl(names.TORCH_LINEAR, "torch", no_grad(_torch_twin(torch.nn.Linear(n_in, n_out), linear, device)))
    )
    return _dense(
        names.LINEAR_ROWS,
        rows,
        n_in,
        n_out,
        device,
        impls,
        linear_magnitude(linear.kernel[...], linear.bias[...]),
        leading=(max(1, rows // LINEAR_ROWS_LENGTH), min(rows, LINEAR_ROWS_LENGTH)),
    )
