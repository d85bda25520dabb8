"""BatchInvariantLinear / Linear in both frameworks: the median of per-round ratios, with its spread.

Usage: python docs/scripts/batch_invariant_ab.py [--rows 4096] [--features 1024 1024] [--rounds 60]
       [--tile-rows 128 ...] [--torch-threads N] [--frameworks jaxlin torch] [--previous REV]

Every round calls, per framework, the plain ``Linear`` and each ``BatchInvariantLinear`` (one per
``--tile-rows``) once, in a fresh random order, on one of three random inputs, and records each
invariant time divided by that round's plain time. On shared cores the load moves from one round to
the next, so a ratio taken within a round cancels most of it; the report is the median of those
ratios, their interquartile range, a bootstrap 95% interval of the median, and the load average
before and after. jaxlin runs through ``jaxlin.jitted``; torch eagerly under ``torch.no_grad()``.
``--previous REV`` adds, in the same rounds, each framework's ``BatchInvariantLinear`` as the file
``jaxlin/invariant.py`` / ``torch_ref/invariant.py`` was at git revision ``REV`` (before and after).

Shape:
    input ``(rows, in)`` -> output ``(rows, out)``, float32.

>>> summary(np.array([1.0, 1.2, 1.1]))["median"]
1.1
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import subprocess
import time
import types

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

import jaxlin
import torch_ref

INPUTS = 3  # distinct random inputs, rotated round by round


def summary(ratios: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Median, quartiles, extremes and a bootstrap 95% interval of the median of ``ratios``."""
    rng = np.random.default_rng(seed)
    boot = np.median(rng.choice(ratios, size=(2000, len(ratios))), axis=1)
    q1, median, q3 = np.percentile(ratios, [25, 50, 75])
    low, high = np.percentile(boot, [2.5, 97.5])
    return {"median": float(median), "q1": q1, "q3": q3, "ci_low": low, "ci_high": high,
            "min": ratios.min(), "max": ratios.max()}  # fmt: skip


def module_at(revision: str, path: str) -> types.ModuleType:
    """The module in file ``path`` as it was at git ``revision``."""
    show = subprocess.run(["git", "show", f"{revision}:{path}"], capture_output=True, text=True, check=True)
    module = types.ModuleType(f"{path}@{revision}")
    exec(compile(show.stdout, f"{path}@{revision}", "exec"), module.__dict__)  # noqa: S102
    return module


def jax_calls(rows: int, n_in: int, n_out: int, tiles: list[int], previous: str | None):
    """Plain and invariant jaxlin forwards (same weights), their inputs and the sync."""
    plain = jaxlin.Linear(n_in, n_out, rngs=nnx.Rngs(0))
    calls = {"plain": jaxlin.jitted(plain)}
    classes = {"": jaxlin.BatchInvariantLinear}
    if previous:
        classes[f" @{previous}"] = module_at(previous, "jaxlin/invariant.py").BatchInvariantLinear
    for tile in tiles:
        for suffix, cls in classes.items():
            layer = cls(n_in, n_out, tile_rows=tile, rngs=nnx.Rngs(0))
            calls[f"tile {tile}{suffix}"] = jaxlin.jitted(layer)
    inputs = [jnp.asarray(random_rows(rows, n_in, seed)) for seed in range(INPUTS)]
    return calls, inputs, jax.block_until_ready


def torch_calls(rows: int, n_in: int, n_out: int, tiles: list[int], previous: str | None):
    """Plain ``torch.nn.Linear`` and torch_ref invariant forwards, their inputs and the sync."""
    plain = torch.nn.Linear(n_in, n_out)
    calls = {"plain": plain}
    classes = {"": torch_ref.BatchInvariantLinear}
    if previous:
        classes[f" @{previous}"] = module_at(previous, "torch_ref/invariant.py").BatchInvariantLinear
    for tile in tiles:
        for suffix, cls in classes.items():
            layer = cls(n_in, n_out, tile_rows=tile)
            layer.load_state_dict(plain.state_dict())
            calls[f"tile {tile}{suffix}"] = layer
    inputs = [torch.from_numpy(random_rows(rows, n_in, seed)) for seed in range(INPUTS)]
    return calls, inputs, lambda result: result


def random_rows(rows: int, n_in: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, n_in)).astype(np.float32)


def rounds(frameworks: dict, count: int) -> dict[tuple[str, str], np.ndarray]:
    """Interleaved rounds; per (framework, call) the per-round time divided by the plain one."""
    shuffle = np.random.default_rng(0)
    times = {(fw, name): [] for fw, (calls, _, _) in frameworks.items() for name in calls}
    for calls, inputs, sync in frameworks.values():  # warm-up: compile, fill caches
        for fn in calls.values():
            for x in inputs:
                sync(fn(x))
    gc.disable()
    try:
        with torch.no_grad():
            for round_ in range(count):
                for fw, (calls, inputs, sync) in frameworks.items():
                    names = list(calls)
                    for index in shuffle.permutation(len(names)):
                        start = time.perf_counter()
                        sync(calls[names[index]](inputs[round_ % INPUTS]))
                        times[fw, names[index]].append(time.perf_counter() - start)
                    time.sleep(0.002)  # torch's OpenMP threads spin a moment after a call
    finally:
        gc.enable()
    return {key: np.array(value) for key, value in times.items()}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--features", type=int, nargs=2, default=(1024, 1024), metavar=("IN", "OUT"))
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--tile-rows", type=int, nargs="+", default=[128])
    parser.add_argument("--torch-threads", type=int, default=None)
    parser.add_argument("--frameworks", nargs="+", default=["jaxlin", "torch"], choices=["jaxlin", "torch"])
    parser.add_argument("--previous", default=None, help="also time the invariant modules at this revision")
    args = parser.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    makers = {"jaxlin": jax_calls, "torch": torch_calls}
    sizes = (args.rows, *args.features, args.tile_rows, args.previous)
    frameworks = {fw: makers[fw](*sizes) for fw in args.frameworks}
    load_before = os.getloadavg()
    times = rounds(frameworks, args.rounds)
    print(
        f"# {cpu_model()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
        f"jax {jax.__version__}, torch {torch.__version__}; ({args.rows}, {args.features[0]})→"
        f"{args.features[1]} float32, {args.rounds} rounds; load average (1 min) "
        f"{load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    print("| framework | layer | median ms | ratio to plain: median | IQR | 95% CI of median | min–max |")
    print("|---|---|---|---|---|---|---|")
    for (fw, name), seconds in times.items():
        s = summary(seconds / times[fw, "plain"])
        print(
            f"| {fw} | {name} | {np.median(seconds) * 1e3:.1f} | {s['median']:.3f} | "
            f"{s['q1']:.3f}–{s['q3']:.3f} | {s['ci_low']:.3f}–{s['ci_high']:.3f} | "
            f"{s['min']:.2f}–{s['max']:.2f} |"
        )


if __name__ == "__main__":
    main()
