"""Cost of BatchInvariantLinear against a plain Linear, in both frameworks, as ratios from one run.

Usage: python docs/scripts/batch_invariant_cost.py [--repeats N]

Each pair (plain, invariant) is timed interleaved by crosscheck's timing engine on rotating random
inputs, so a load change on the machine hits both sides alike; the ratio is of the medians. jaxlin
runs through ``jaxlin.jitted``; torch runs eagerly under ``torch.no_grad()``.
"""

from __future__ import annotations

import argparse
import functools

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

import jaxlin
import torch_ref
from crosscheck.runtime.devices import device_info
from crosscheck.runtime.timing import measure, prepare

SHAPES = ((128, 768, 768), (4096, 1024, 1024), (1, 768, 768))


def random_rows(shape, seed: int) -> tuple[np.ndarray]:
    return (np.random.default_rng(seed).standard_normal(shape).astype(np.float32),)


def torch_call(layer):
    def call(x):
        with torch.no_grad():
            return layer(x)

    return call


def interleaved(plain, invariant, make, sync, repeats: int) -> tuple[float, float, float]:
    """Median seconds of each and their ratio invariant/plain, timed interleaved."""
    calls = {"plain": prepare(plain, make, sync=sync), "invariant": prepare(invariant, make, sync=sync)}
    timings = measure(calls, repeats=repeats)
    t_plain, t_inv = timings["plain"].median_s, timings["invariant"].median_s
    return t_plain, t_inv, t_inv / t_plain


def row(rows, n_in, n_out, framework, t_plain, t_inv, ratio) -> None:
    shape = f"({rows}, {n_in})→{n_out}"
    print(f"| {shape} | {framework} | {t_plain * 1e3:.3f} ms | {t_inv * 1e3:.3f} ms | {ratio:.2f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    info = device_info("cpu")
    print(
        f"# {info['cpu_model']}, {info['cpu_cores']} cores, torch threads {info['torch_threads']}, "
        f"jax {jax.__version__}, torch {torch.__version__}, float32, repeats {args.repeats}"
    )
    print("| rows, in→out | framework | plain Linear | BatchInvariantLinear | ratio |")
    print("|---|---|---|---|---|")
    for rows, n_in, n_out in SHAPES:
        make = functools.partial(random_rows, (rows, n_in))
        plain = jaxlin.jitted(jaxlin.Linear(n_in, n_out, rngs=nnx.Rngs(0)))
        invariant = jaxlin.jitted(jaxlin.BatchInvariantLinear(n_in, n_out, rngs=nnx.Rngs(0)))
        to_jax = lambda i, m=make: tuple(map(jnp.asarray, m(i)))  # noqa: E731
        row(
            rows,
            n_in,
            n_out,
            "jaxlin",
            *interleaved(plain, invariant, to_jax, jax.block_until_ready, args.repeats),
        )
        torch_plain = torch_call(torch.nn.Linear(n_in, n_out))
        torch_inv = torch_call(torch_ref.BatchInvariantLinear(n_in, n_out))
        to_torch = lambda i, m=make: tuple(map(torch.from_numpy, m(i)))  # noqa: E731
        row(
            rows,
            n_in,
            n_out,
            "torch",
            *interleaved(torch_plain, torch_inv, to_torch, lambda _: None, args.repeats),
        )


if __name__ == "__main__":
    main()
