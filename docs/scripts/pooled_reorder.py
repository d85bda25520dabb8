"""PooledHead(pool_at="output") with and without the pool-first rewrite at T=2048, and the mean alone.

Usage: python docs/scripts/pooled_reorder.py [--repeats N]

Input (16, 2048, 512) float32, hidden 512, 16 outputs; jaxlin through ``jaxlin.jitted``; the three
timed interleaved by crosscheck's timing engine, medians of rounds.
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
    parser.add_argument("--repeats", type=int, default=20)
    repeats = parser.parse_args().repeats
    make = lambda i: (np.random.default_rng(i).standard_normal((16, 2048, 512)).astype(np.float32),)  # noqa: E731
    calls = {
        f"reorder={flag}": jaxlin.jitted(
            jaxlin.PooledHead(512, 512, 16, pool_at="output", reorder=flag, rngs=nnx.Rngs(0))
        )
        for flag in (True, False)
    }
    calls["mean over T alone"] = jax.jit(lambda x: jnp.mean(x, axis=1))
    timings = measure(
        {name: prepare(call, make, sync=jax.block_until_ready) for name, call in calls.items()},
        repeats=repeats,
    )
    medians = {name: t.median_s for name, t in timings.items()}
    print(", ".join(f"{name} {m * 1e3:.2f} ms" for name, m in medians.items()))
    print(f"speed-up of the rewrite: {medians['reorder=False'] / medians['reorder=True']:.1f}x")


if __name__ == "__main__":
    main()
