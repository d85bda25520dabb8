"""The cost of jaxlin.Linear's bias at (65536, 256)->256, under whatever XLA_FLAGS are set.

Usage:
    python docs/scripts/bias_cost.py [--repeats N]
    XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=dot,eltwise python docs/scripts/bias_cost.py

Times Linear with and without a bias interleaved (crosscheck's timing engine, 30 rounds by
default), and prints the top-level fusions of the biased layer: by default XLA:CPU runs the dot as a
YNNPACK fusion and the bias as a second pass over the output (``broadcast_add_fusion``); with the
YNNPACK fusion type ``dot,eltwise`` the add joins the dot's fusion.
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jaxlin
from crosscheck.runtime.timing import measure, prepare

ROWS, FEATURES = 65536, 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    repeats = parser.parse_args().repeats
    make = lambda i: (jnp.asarray(np.random.default_rng(i).standard_normal((ROWS, FEATURES)), jnp.float32),)  # noqa: E731
    with_bias = jaxlin.Linear(FEATURES, FEATURES, rngs=nnx.Rngs(0))
    without = jaxlin.Linear(FEATURES, FEATURES, use_bias=False, rngs=nnx.Rngs(0))
    calls = {"bias": jaxlin.jitted(with_bias), "no bias": jaxlin.jitted(without)}
    timings = measure(
        {name: prepare(call, make, sync=jax.block_until_ready) for name, call in calls.items()},
        repeats=repeats,
    )
    hlo = calls["bias"].lower(make(0)[0]).compile().as_text()
    entry = hlo[hlo.index("ENTRY") :].splitlines()[1:]
    top = [line.split("=")[0].strip() for line in entry if "fusion(" in line]
    bias_ms, plain_ms = (timings[name].median_s * 1e3 for name in ("bias", "no bias"))
    print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS') or '(unset)'}")
    print(
        f"  with bias {bias_ms:.2f} ms, without {plain_ms:.2f} ms, ratio {bias_ms / plain_ms:.3f}; "
        f"fusions with bias: {', '.join(top)}"
    )


if __name__ == "__main__":
    main()
