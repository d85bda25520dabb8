"""The batched matmul alone, JAX against torch, on heads-major arrays (no layout copies).

Usage: python docs/scripts/batched_dot_parity.py [--repeats N]

(heads, 2048, in) @ (heads, in, in) float32 for the study's three target shapes; ``jnp.matmul``
under ``jax.jit`` against ``torch.bmm``; timed interleaved by crosscheck's timing engine (one
framework after the other in each round, with a pause between: torch's OpenMP threads spin-wait
after a call and would slow the next JAX call), medians. This separates the cost of the dot from
the transposing copies XLA adds for heads-last activations.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import torch

from crosscheck.runtime.timing import measure, prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    repeats = parser.parse_args().repeats
    for heads, size in ((8, 64), (16, 128), (4, 512)):

        def make(i, heads=heads, size=size):
            rng = np.random.default_rng(i)
            return (
                rng.standard_normal((heads, 2048, size)).astype(np.float32),
                rng.standard_normal((heads, size, size)).astype(np.float32),
            )

        matmul = jax.jit(jnp.matmul)
        calls = {
            "jax": prepare(
                matmul, lambda i: tuple(map(jnp.asarray, make(i))), sync=jax.block_until_ready, group="jax"
            ),
            "torch": prepare(
                torch.bmm, lambda i: tuple(map(torch.from_numpy, make(i))), sync=lambda _: None, group="torch"
            ),
        }
        timings = measure(calls, repeats=repeats)
        print(
            f"heads {heads}, {size}->{size}, 2048 rows: jnp.matmul {timings['jax'].median_s * 1e3:.2f} ms, "
            f"torch.bmm {timings['torch'].median_s * 1e3:.2f} ms"
        )


if __name__ == "__main__":
    main()
