"""A task and a classifier small enough that a 200-step run in both frameworks takes a fraction of a
second once compiled, shared by the training tests so that compiled programs are reused."""

from crosscheck.training.data import SparseTask, batch_indices
from crosscheck.training.models import ModelSpec

SIZES = {"length": 4, "features": 8, "classes": 3}
TASK = SparseTask(**SIZES, density=0.2, train=128, test=64)
SPEC = ModelSpec(hidden=8, **SIZES)
BATCH = 16


def rows(steps: int, seed: int = 0):
    """The batch stream of ``steps`` steps over :data:`TASK`."""
    return batch_indices(TASK.train, BATCH, steps=steps, seed=seed)
