"""The configurations that measure the machine's limits, against which every row's roofline is drawn:
the GEMM peak (a float32 matmul) and the memory bandwidth (a streaming sum, an elementwise ``x + 1``),
each in both frameworks.

:mod:`~crosscheck.study.configs` imports both for the plan, beside the layers' configurations.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch

from crosscheck.study import names
from crosscheck.study.engine import Config, Impl, Traffic, float32_traffic

PEAK_ROUNDS = 30
"""Rounds for the GEMM peak: every row's roofline divides by it, so its median gets more samples than
the 0.6 s budget gives a 100 ms call (6); with 6, a row of the very same GEMM shape once read 111%."""


def peak(m: int, k: int, n: int) -> Config:
    """A float32 ``(m, k) @ (k, n)`` matmul in each framework; the machine's GEMM peak is the best
    rate of the peak shapes measured (one square GEMM is not always the fastest shape)."""

    def make(seed, impl):
        rng = np.random.default_rng(seed)
        a, b = (rng.standard_normal(shape).astype(np.float32) for shape in ((m, k), (k, n)))
        return (
            (jnp.asarray(a), jnp.asarray(b))
            if impl.framework == "jax"
            else (torch.from_numpy(a), torch.from_numpy(b))
        )

    jax_mm = jax.jit(jnp.matmul)
    impls = [Impl(names.JAX_MATMUL, "jax", jax_mm), Impl(names.TORCH_MM, "torch", torch.mm)]
    impls[0].hlo = lambda: jax_mm.lower(*make(0, impls[0])).compile().as_text()

    def magnitude(inputs):
        a, b = (np.abs(np.asarray(t, np.float64)) for t in inputs)
        return a[:8] @ b

    return Config(
        names.PEAK,
        f"{m}x{k}x{n}",
        {"m": m, "k": k, "n": n},
        2.0 * m * k * n,
        make,
        impls,
        magnitude,
        k=k,
        checked_rows=lambda y: y[:8],
        traffic=float32_traffic(m * k + k * n, 0, m * n),
        rounds=PEAK_ROUNDS,
    )


def bandwidth(n_bytes: int, level: str) -> Config:
    """A float32 sum over ``n_bytes`` in each framework (a streaming read), and an elementwise
    ``x + 1`` (a read and a write of the same size): the memory limit is the best of the four.

    ``level``: "memory" (larger than any cache: main memory) or "cache" (half the last-level cache,
    one array for every call so that it stays there; the other rows rotate their inputs).
    """
    n = n_bytes // 4
    arrays = {}

    def make(seed, impl):
        seed = 0 if level == "cache" else seed
        if (seed, impl.framework) not in arrays:
            x = np.random.default_rng(seed).standard_normal(n, dtype=np.float32)
            arrays[seed, impl.framework] = jnp.asarray(x) if impl.framework == "jax" else torch.from_numpy(x)
        return (arrays[seed, impl.framework],)

    impls = [Impl(names.JAX_SUM, "jax", jax.jit(jnp.sum)), Impl(names.TORCH_SUM, "torch", torch.sum)]
    same = level == "cache"
    streams = {"flops": float(n), "traffic": Traffic(n_bytes, 0, n_bytes, same), "checked": False}
    impls += [
        Impl(names.JAX_ADD_ONE, "jax", jax.jit(lambda x: x + 1), **streams),
        Impl(names.TORCH_ADD_ONE, "torch", lambda x: x + 1, **streams),
    ]
    return Config(
        names.BANDWIDTH,
        f"sum of {n_bytes / 2**20:.4g} MiB",
        {"n": n},
        float(n),
        make,
        impls,
        lambda inputs: np.abs(np.asarray(inputs[0], np.float64)).sum(keepdims=True),
        k=n,
        checked_rows=lambda y: np.reshape(y, (1,)),
        extra={"level": level},
        traffic=Traffic(n_bytes, same_inputs=same),
    )
