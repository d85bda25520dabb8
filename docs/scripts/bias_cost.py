"""The cost of jaxlin.Linear's bias at (65536, 256)->256, under whatever XLA_FLAGS are set.

Usage:
    python docs/scripts/bias_cost.py
    XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=dot,eltwise python docs/scripts/bias_cost.py

Times Linear with and without a bias interleaved (30 rounds, median of the per-round ratios), and
prints the top-level HLO instructions of the biased layer: by default XLA:CPU runs the dot as a
YNNPACK fusion and the bias as a second pass over the output (``broadcast_add_fusion``); with the
YNNPACK fusion type ``dot,eltwise`` the add joins the dot's fusion.
"""

from __future__ import annotations

import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jaxlin

ROWS, FEATURES, ROUNDS = 65536, 256, 30


def main() -> None:
    rngs = [np.random.default_rng(i) for i in range(3)]
    x = [jnp.asarray(rng.standard_normal((ROWS, FEATURES)), jnp.float32) for rng in rngs]
    with_bias = jaxlin.Linear(FEATURES, FEATURES, rngs=nnx.Rngs(0))
    without = jaxlin.Linear(FEATURES, FEATURES, use_bias=False, rngs=nnx.Rngs(0))
    calls = {"bias": jaxlin.jitted(with_bias), "no bias": jaxlin.jitted(without)}
    for call in calls.values():
        call(x[0]).block_until_ready()
    times = {name: [] for name in calls}
    for r in range(ROUNDS):
        for name, call in calls.items():
            start = time.perf_counter()
            call(x[r % 3]).block_until_ready()
            times[name].append(time.perf_counter() - start)
    ratios = [b / n for b, n in zip(times["bias"], times["no bias"], strict=True)]
    graphdef, state = nnx.split(with_bias)
    hlo = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x)).lower(state, x[0]).compile().as_text()
    entry = hlo[hlo.index("ENTRY") :].splitlines()[1:]
    top = [line.split("=")[0].strip() for line in entry if "fusion(" in line]
    print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS') or '(unset)'}")
    print(f"  with bias {statistics.median(times['bias']) * 1e3:.2f} ms, without "
          f"{statistics.median(times['no bias']) * 1e3:.2f} ms, ratio (median of rounds) "
          f"{statistics.median(ratios):.3f}; fusions with bias: {', '.join(top)}")


if __name__ == "__main__":
    main()
