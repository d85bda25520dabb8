"""Per-call overhead of the ways to call a tiny jaxlin module under jit (dispatch, not compute).

Usage: python docs/scripts/call_overhead.py [--repeats N]

PerHeadLinear(1, 128, 128) on (4, 16, 1, 128): a raw ``jax.jit`` pure function, ``jaxlin.jitted``
(state flattened once), ``jax.jit`` over the ``nnx.State`` pytree, and ``nnx.jit``; timed
interleaved by crosscheck's timing engine (2000 rounds by default), medians in microseconds.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jaxlin
from crosscheck.runtime.timing import measure, prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2000)
    repeats = parser.parse_args().repeats
    layer = jaxlin.PerHeadLinear(1, 128, 128, rngs=nnx.Rngs(0))
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
        "raw jax.jit": lambda x: raw(x, kernel, bias),
        "jaxlin.jitted": fast,
        "jax.jit over nnx.State": lambda x: over_state(state, x),
        "nnx.jit": lambda x: nnx_call(layer, x),
    }
    make = lambda i: (jnp.asarray(np.random.default_rng(i).standard_normal((4, 16, 1, 128)), jnp.float32),)  # noqa: E731
    timings = measure(
        {name: prepare(call, make, sync=jax.block_until_ready) for name, call in calls.items()},
        repeats=repeats,
    )
    print(", ".join(f"{name} {t.median_s * 1e6:.1f} us" for name, t in timings.items()))


if __name__ == "__main__":
    main()
