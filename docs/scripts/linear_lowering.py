"""Linear's two lowerings on tall inputs: one ``dot_general`` (YNNPACK on XLA:CPU) against the 1×1
convolution (which XLA:CPU rewrites into its own dot), each on a rank-2 ``(rows, 256)`` and a rank-3
``(rows / 1024, 1024, 256)`` input holding the same numbers; 256→256 with bias, float32.

Interleaved: 30 rounds, each calling the four programs once in a fresh random order; medians and
interquartile ranges over rounds. The printed table is what ``docs/pointwise.md`` quotes.

Usage (from the repository root, nothing else running):
    PYTHONPATH=. python docs/scripts/linear_lowering.py 1024 4096 8192 16384 65536
"""

from __future__ import annotations

import random
import sys
import time

import jax
import numpy as np
from flax import nnx

import jaxlin

ROUNDS = 30


def programs(rows: int) -> dict:
    """The four calls at ``rows`` rows, on one set of weights."""
    matmul = jaxlin.Linear(256, 256, impl="matmul", rngs=nnx.Rngs(0))
    conv = jaxlin.Linear(256, 256, impl="conv", rngs=nnx.Rngs(0))
    x3 = jax.random.normal(jax.random.key(0), (max(1, rows // 1024), min(rows, 1024), 256))
    x2 = jax.numpy.asarray(np.asarray(x3).reshape(rows, 256))
    dot, convolution = jaxlin.jitted(matmul), jaxlin.jitted(conv)
    return {
        "dot, rank 2": lambda: dot(x2),
        "dot, rank 3": lambda: dot(x3),
        "conv, rank 2": lambda: convolution(x2),
        "conv, rank 3": lambda: convolution(x3),
    }


def measure(calls: dict) -> dict[str, list[float]]:
    for call in calls.values():
        call().block_until_ready()
    times = {name: [] for name in calls}
    for _ in range(ROUNDS):
        for name in random.sample(list(calls), len(calls)):
            start = time.perf_counter()
            calls[name]().block_until_ready()
            times[name].append(time.perf_counter() - start)
    return times


def main(row_counts: list[int]) -> None:
    print("| rows | dot, rank 2 | dot, rank 3 | conv, rank 2 | conv, rank 3 | rank 3: dot / conv |")
    print("|---|---|---|---|---|---|")
    for rows in row_counts:
        medians = {name: float(np.median(t)) * 1e3 for name, t in measure(programs(rows)).items()}
        cells = " | ".join(f"{medians[name]:.2f} ms" for name in medians)
        print(f"| {rows} | {cells} | {medians['dot, rank 3'] / medians['conv, rank 3']:.2f} |")


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [1024, 4096, 8192, 16384, 65536])
