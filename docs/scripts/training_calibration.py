"""Measure the numbers behind `crosscheck train`'s rule: honest pairs and planted differences.

Usage: python docs/scripts/training_calibration.py [--seeds 5] [--out docs/results/training]

Honest pairs (every model, optimizer and seed, 200 steps; two seeds also 1000 steps): the largest
ratio of the distance between the frameworks to the larger float64 distance (the triangle inequality
bounds it by 2 where the float64 runs agree), the largest ratio of the float64 disagreement to
(u64/u) times that distance, and both tiers' worst ratios. Planted differences: the first failing
step of each. Also optax's float32 bias correction 1 - b2^t against float64. Writes
calibration.json and calibration.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from crosscheck.numerics import unit_roundoff
from crosscheck.reporting.documents import write_documents
from crosscheck.reporting.environment import environment, machine_line
from crosscheck.reporting.tables import markdown_table
from crosscheck.runtime.devices import device_info
from crosscheck.training.data import SparseTask, batch_indices
from crosscheck.training.models import spec_named
from crosscheck.training.optimizers import OptimizerConfig
from crosscheck.training.parity import train_pair, write_initial_weights
from crosscheck.training.planted import plant_problem
from crosscheck.training.runs import Job

U, U64 = unit_roundoff("float32"), unit_roundoff("float64")


def measure(job: Job, seed: int, steps: int, folder: str) -> dict:
    path = os.path.join(folder, f"{job.model.name}-{seed}.safetensors")
    write_initial_weights(job.model, seed=seed, path=path)
    task = SparseTask(seed=seed)
    rows = batch_indices(task.train, 32, steps=steps, seed=seed)
    d = train_pair(job, path, task.arrays(), rows).divergence
    own = np.maximum(d.own_a, d.own_b)[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(own > 0, d.cross[1:] / own, np.nan)
        float64 = np.where(own > 0, d.float64[1:] / ((U64 / U) * own), np.nan)
    return {
        "model": job.model.name,
        "optimizer": job.optimizer.name,
        "plant": job.plant,
        "seed": seed,
        "steps": steps,
        "max_cross_over_own": float(np.nanmax(raw)),
        "p99_cross_over_own": float(np.nanpercentile(raw, 99)),
        "max_float64_over_scaled_own": float(np.nanmax(float64)),
        "steps_with_zero_own": int((own == 0).sum()),
        "worst_ratio": float(d.ratio.max()),
        "worst_float64_ratio": float(d.float64_ratio.max()),
        "first_failure": d.first_failure,
    }


def bias_correction_error() -> list[dict]:
    """optax's 1 - b2**t in float32 (64-bit mode off, as users run it) against float64."""
    rows = []
    with jax.enable_x64(False):
        for t in (1, 2, 10, 100, 1000):
            f32 = float(1 - 0.999 ** jnp.asarray(t, jnp.int32))
            rows.append({"t": t, "float32": f32, "relative_error": abs(f32 / (1 - 0.999**t) - 1)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default="docs/results/training")
    args = parser.parse_args()
    start = time.perf_counter()
    honest, planted = [], []
    with tempfile.TemporaryDirectory() as folder:
        for model in ("linear", "conv", "conv-maxpool"):
            for name in ("sgd", "adam", "adamw"):
                for seed in range(args.seeds):
                    honest.append(measure(Job(spec_named(model), OptimizerConfig(name)), seed, 200, folder))
                for seed in range(2):
                    job = Job(spec_named(model), OptimizerConfig(name, steps=1000))
                    honest.append(measure(job, seed, 1000, folder))
                print(model, name, f"{time.perf_counter() - start:.0f} s", flush=True)
        for plant in ("adam-eps", "bias-decay", "schedule-offset"):
            for name in ("sgd", "adam", "adamw"):
                if plant_problem(plant, OptimizerConfig(name)) is None:
                    for seed in range(args.seeds):
                        job = Job(spec_named("linear"), OptimizerConfig(name), plant)
                        planted.append(measure(job, seed, 200, folder))
    keys = ("max_cross_over_own", "max_float64_over_scaled_own", "worst_ratio", "worst_float64_ratio")
    worst = {key: max(r[key] for r in honest) for key in keys}
    document = {
        "honest": honest,
        "planted": planted,
        "worst_honest": worst,
        "honest_failures": sum(r["first_failure"] is not None for r in honest),
        "planted_first_failures": sorted({r["first_failure"] for r in planted}, key=str),
        "bias_correction": bias_correction_error(),
        "seconds": time.perf_counter() - start,
    }
    env = environment(f"python {' '.join(sys.argv)}", device=device_info("cpu"), precision={})
    document["environment"] = env
    lines = ["# Calibration of the training-parity rule", "", f"`{env['command']}` · {env['timestamp']}", ""]
    lines += [f"{machine_line(env)} · versions {env['versions']} · {document['seconds']:.0f} s", ""]
    lines += [f"{len(honest)} honest pairs, {document['honest_failures']} failed; worst: {worst}", ""]
    rows = [
        (
            r["model"],
            r["optimizer"],
            str(r["seed"]),
            str(r["steps"]),
            f"{r['max_cross_over_own']:.3f}",
            f"{r['max_float64_over_scaled_own']:.3g}",
            f"{r['worst_ratio']:.3f}",
            f"{r['worst_float64_ratio']:.3g}",
            str(r["first_failure"]),
        )
        for r in honest
    ]
    headers = (
        "model",
        "optimizer",
        "seed",
        "steps",
        "max |a-b|/max own",
        "max |a64-b64|/((u64/u) own)",
        "worst ratio",
        "worst float64 ratio",
        "first failure",
    )
    lines += ["## Honest pairs", "", *markdown_table(headers, rows), "", "## Planted differences", ""]
    rows = [
        (r["plant"], r["optimizer"], str(r["seed"]), f"{r['worst_ratio']:.3g}", str(r["first_failure"]))
        for r in planted
    ]
    lines += markdown_table(("plant", "optimizer", "seed", "worst ratio", "first failure"), rows)
    rows = [
        (str(r["t"]), repr(r["float32"]), f"{r['relative_error']:.2e}") for r in document["bias_correction"]
    ]
    lines += ["", "## optax's bias correction 1 - 0.999^t in float32", ""]
    lines += markdown_table(("t", "float32", "relative error"), rows)
    print(write_documents(args.out, "calibration", document, "\n".join(lines) + "\n"), worst)


if __name__ == "__main__":
    main()
