"""Training parity of one job: the four runs (each framework in the working dtype and in float64) and
the verdict on their trajectories.

>>> import tempfile, os
>>> from crosscheck.training.data import SparseTask, batch_indices
>>> from crosscheck.training.models import ModelSpec
>>> from crosscheck.training.optimizers import OptimizerConfig
>>> path = os.path.join(tempfile.mkdtemp(), "init.safetensors")
>>> write_initial_weights(ModelSpec(), seed=0, path=path)
>>> data, rows = SparseTask(train=64, test=32).arrays(), batch_indices(64, 16, steps=8, seed=0)
>>> result = train_pair(Job(ModelSpec(), OptimizerConfig("adam", steps=8)), path, data, rows)
>>> result.divergence.first_failure is None, sorted(result.runs)
(True, ['jax-float32', 'jax-float64', 'torch-float32', 'torch-float64'])
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from crosscheck.training.data import Dataset
from crosscheck.training.models import ModelSpec, torch_model
from crosscheck.training.runs import Job, Run, run_jax, run_torch
from crosscheck.training.trajectory import Divergence, diverge
from crosscheck.weights import save_weights


def write_initial_weights(spec: ModelSpec, *, seed: int, path: str | os.PathLike) -> None:
    """PyTorch's default init of the torch_ref classifier under ``torch.manual_seed(seed)``, saved as
    the one weights file both frameworks start from."""
    save_weights(torch_model(spec, seed=seed), path)


@dataclass
class Parity:
    """The four runs by ``"framework-dtype"`` and the verdict on the working-dtype pair."""

    job: Job
    runs: dict[str, Run]
    divergence: Divergence

    @property
    def passed(self) -> bool:
        return bool(self.divergence.passed.all())


def train_pair(
    job: Job,
    weights: str | os.PathLike,
    data: Dataset,
    rows: np.ndarray,
    dtype: str = "float32",
    *,
    every: int = 1,
    advance: Callable[[], None] | None = None,
) -> Parity:
    """Train ``job`` in both frameworks, in ``dtype`` and in float64, from ``weights`` on ``rows``;
    ``advance()`` is called after each of the four runs.

    Shape:
        ``rows (steps, batch)``; every run records ``steps // every + 1`` times.
    """
    runs = {}
    for framework, run in (("jax", run_jax), ("torch", run_torch)):
        for kind in (dtype, "float64"):
            runs[f"{framework}-{kind}"] = run(job, weights, data, rows, kind, every=every)
            if advance is not None:
                advance()
    jax32, jax64 = runs[f"jax-{dtype}"], runs["jax-float64"]
    divergence = diverge(jax32, runs[f"torch-{dtype}"], jax64, runs["torch-float64"], dtype)
    return Parity(job, runs, divergence)
