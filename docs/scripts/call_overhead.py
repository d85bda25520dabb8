"""Per-call overhead of the ways to call a tiny jaxlin module under jit (dispatch, not compute).

Usage: python docs/scripts/call_overhead.py

PerHeadLinear(1, 128, 128) on (4, 16, 1, 128): a raw ``jax.jit`` pure function, ``jaxlin.jitted``
(state flattened once), ``jax.jit`` over the ``nnx.State`` pytree, and ``nnx.jit``; 2000
interleaved rounds, medians in microseconds.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jaxlin


def main() -> None:
    layer = jaxlin.PerHeadLinear(1, 128, 128, rngs=nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 16, 1, 128)), jnp.float32)
    kernel, bias = layer.kernel[...], layer.bias[...]

    def pure(x, k, b):
        y = jnp.einsum("hri,hio->hro", jnp.moveaxis(x.reshape(64, 1, 128), 1, 0), k) + b[:, None]
        return jnp.moveaxis(y, 0, 1).reshape(x.shape)

    raw = jax.jit(pure)
    graphdef, state = nnx.split(layer)
    over_state = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))
    nnx_call = nnx.jit(lambda m, x: m(x))
    fast = jaxlin.jitted(layer)
    calls = {
        "raw jax.jit": lambda: raw(x, kernel, bias),
        "jaxlin.jitted": lambda: fast(x),
        "jax.jit over nnx.State": lambda: over_state(state, x),
        "nnx.jit": lambda: nnx_call(layer, x),
    }
    for call in calls.values():
        call().block_until_ready()
    times = {name: [] for name in calls}
    for _ in range(2000):
        for name, call in calls.items():
            start = time.perf_counter()
            call().block_until_ready()
            times[name].append(time.perf_counter() - start)
    print(", ".join(f"{name} {statistics.median(t) * 1e6:.1f} us" for name, t in times.items()))


if __name__ == "__main__":
    main()
