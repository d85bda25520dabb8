"""Cost of BatchInvariantLinear against a plain Linear, in both frameworks, as ratios from one run.

Usage: python docs/scripts/batch_invariant_cost.py [--repeats N]

Each pair (plain, invariant) is timed interleaved — plain, invariant, plain, invariant, ... — on
rotating random inputs, and the ratio reported is the median of the per-pair ratios, so a load
change on the machine hits both sides alike. jaxlin runs along its recommended call path
(``jax.jit`` over ``nnx.split`` state); torch runs eagerly under ``torch.no_grad()``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

import jaxlin
import torch_ref
from crosscheck.timing import device_info

SHAPES = ((128, 768, 768), (4096, 1024, 1024), (1, 768, 768))


def jax_call(layer):
    graphdef, state = nnx.split(layer)
    forward = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))
    return lambda x: forward(state, x).block_until_ready()


def torch_call(layer):
    def call(x):
        with torch.no_grad():
            return layer(x)

    return call


def interleaved(plain, invariant, inputs, repeats: int) -> tuple[float, float, float]:
    """Median seconds of each, and the median of per-pair ratios invariant/plain."""
    for x in inputs[:2]:  # compile and warm up
        plain(x), invariant(x)
    a, b, ratios = [], [], []
    for i in range(repeats):
        x = inputs[i % len(inputs)]
        start = time.perf_counter()
        plain(x)
        middle = time.perf_counter()
        invariant(x)
        end = time.perf_counter()
        a.append(middle - start), b.append(end - middle), ratios.append((end - middle) / (middle - start))
    return statistics.median(a), statistics.median(b), statistics.median(ratios)


def row(rows, n_in, n_out, framework, t_plain, t_inv, ratio) -> None:
    shape = f"({rows}, {n_in})→{n_out}"
    print(f"| {shape} | {framework} | {t_plain * 1e3:.3f} ms | {t_inv * 1e3:.3f} ms | {ratio:.2f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    info = device_info("cpu")
    print(f"# {info['cpu_model']}, {info['cpu_cores']} cores, torch threads {info['torch_threads']}, "
          f"jax {jax.__version__}, torch {torch.__version__}, float32, repeats {args.repeats}")
    print("| rows, in→out | framework | plain Linear | BatchInvariantLinear | ratio (median of pairs) |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for rows, n_in, n_out in SHAPES:
        inputs = [rng.standard_normal((rows, n_in)).astype(np.float32) for _ in range(3)]
        plain = jaxlin.Linear(n_in, n_out, rngs=nnx.Rngs(0))
        invariant = jaxlin.BatchInvariantLinear(n_in, n_out, rngs=nnx.Rngs(0))
        jax_inputs = [jnp.asarray(x) for x in inputs]
        t_plain, t_inv, ratio = interleaved(jax_call(plain), jax_call(invariant), jax_inputs, args.repeats)
        row(rows, n_in, n_out, "jaxlin", t_plain, t_inv, ratio)
        torch_plain = torch.nn.Linear(n_in, n_out)
        torch_inv = torch_ref.BatchInvariantLinear(n_in, n_out)
        torch_inputs = [torch.from_numpy(x) for x in inputs]
        t_plain, t_inv, ratio = interleaved(
            torch_call(torch_plain), torch_call(torch_inv), torch_inputs, args.repeats
        )
        row(rows, n_in, n_out, "torch", t_plain, t_inv, ratio)


if __name__ == "__main__":
    main()
