"""Time jaxlin.PointwiseConv impl="matmul" against impl="conv", both through jaxlin.jitted.

Usage: python docs/scripts/pointwise_dot_vs_conv.py [--repeats N]

Two shapes (the 1x1-convolution question's and a tall one), timed interleaved by crosscheck's
timing engine (:mod:`crosscheck.runtime.timing`), medians of rounds.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
from flax import nnx

import jaxlin
from crosscheck.runtime.timing import measure, prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    repeats = parser.parse_args().repeats
    for shape, out in [((128, 8, 256), 32), ((64, 1024, 256), 256)]:
        make = lambda i, s=shape: (np.random.default_rng(i).standard_normal(s).astype(np.float32),)  # noqa: E731
        calls = {
            impl: prepare(
                jaxlin.jitted(jaxlin.PointwiseConv(shape[-1], out, impl=impl, rngs=nnx.Rngs(0))),
                make,
                sync=jax.block_until_ready,
            )
            for impl in ("matmul", "conv")
        }
        timings = measure(calls, repeats=repeats)
        medians = {impl: t.median_s * 1e3 for impl, t in timings.items()}
        print(
            shape,
            "->",
            out,
            {k: f"{v:.3f} ms" for k, v in medians.items()},
            f"conv/matmul = {medians['conv'] / medians['matmul']:.2f}",
        )


if __name__ == "__main__":
    main()
