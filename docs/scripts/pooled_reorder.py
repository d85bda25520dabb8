"""PooledHead(pool_at="output") with and without the pool-first rewrite at T=2048, and the mean alone.

Usage: python docs/scripts/pooled_reorder.py

Input (16, 2048, 512) float32, hidden 512, 16 outputs; jaxlin along ``jaxlin.jitted``; 20 rounds,
each calling the three once (interleaved), medians.
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
    x = jnp.asarray(np.random.default_rng(0).standard_normal((16, 2048, 512)), jnp.float32)
    calls = {
        f"reorder={flag}": jaxlin.jitted(
            jaxlin.PooledHead(512, 512, 16, pool_at="output", reorder=flag, rngs=nnx.Rngs(0))
        )
        for flag in (True, False)
    }
    calls["mean over T alone"] = jax.jit(lambda x: jnp.mean(x, axis=1))
    for call in calls.values():
        call(x).block_until_ready()
    times = {name: [] for name in calls}
    for _ in range(20):
        for name, call in calls.items():
            start = time.perf_counter()
            call(x).block_until_ready()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(", ".join(f"{name} {m * 1e3:.2f} ms" for name, m in medians.items()))
    print(f"speed-up of the rewrite: {medians['reorder=False'] / medians['reorder=True']:.1f}x")


if __name__ == "__main__":
    main()
