"""The batched matmul alone, JAX against torch, on heads-major arrays (no layout copies).

Usage: python docs/scripts/batched_dot_parity.py

(heads, 2048, in) @ (heads, in, in) float32 for the study's three target shapes; ``jnp.matmul``
under ``jax.jit`` against ``torch.bmm``; 30 interleaved rounds with a 2 ms pause after each call
(torch's OpenMP threads spin-wait after a call and would slow the next JAX call), medians. This
separates the cost of the dot from the transposing copies XLA adds for heads-last activations.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch


def main() -> None:
    for heads, size in ((8, 64), (16, 128), (4, 512)):
        rng = np.random.default_rng(0)
        a = rng.standard_normal((heads, 2048, size)).astype(np.float32)
        b = rng.standard_normal((heads, size, size)).astype(np.float32)
        ja, jb, ta, tb = jnp.asarray(a), jnp.asarray(b), torch.from_numpy(a), torch.from_numpy(b)
        matmul = jax.jit(jnp.matmul)
        calls = {
            "jax": lambda m=matmul, a=ja, b=jb: m(a, b).block_until_ready(),
            "torch": lambda a=ta, b=tb: torch.bmm(a, b),
        }
        for call in calls.values():
            call()
        times = {name: [] for name in calls}
        for _ in range(30):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
                time.sleep(0.002)  # let torch's OpenMP threads stop spinning before the JAX call
        jax_ms, torch_ms = (statistics.median(times[n]) * 1e3 for n in ("jax", "torch"))
        shape = f"heads {heads}, {size}->{size}, 2048 rows"
        print(f"{shape}: jnp.matmul {jax_ms:.2f} ms, torch.bmm {torch_ms:.2f} ms")


if __name__ == "__main__":
    main()
