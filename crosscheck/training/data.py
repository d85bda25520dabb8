"""The data: a classification task on sparse inputs, and the one stream of batches both frameworks read.

Each example is ``length`` positions of ``features`` entries, most of them zero (``density`` of them
nonzero on average), like the bag-of-features vectors of the Conv1d-vs-Linear question. Each class
has its own pattern of which entries tend to be nonzero: a pattern shared by every position plus a
position-specific part (``position`` of the variance), sharpened by ``separation``. Nonzero values are
exponential (positive magnitudes, like counts). Everything is NumPy from a seed, so both frameworks
get the very same arrays; each converts them itself.

>>> data = SparseTask(train=40, test=10).arrays()
>>> data.x_train.shape, data.x_train.dtype.name, data.y_test.shape
((40, 8, 32), 'float32', (10,))
>>> 0.02 < float((data.x_train != 0).mean()) < 0.08
True
>>> batch_indices(40, 16, steps=5, seed=0).shape
(5, 16)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Training and test arrays.

    Shape:
        ``x_* (examples, length, features)`` float32, ``y_* (examples,)`` int64.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class SparseTask:
    """The task's sizes and difficulty; :meth:`arrays` draws it from ``seed``.

    Shape:
        inputs ``(examples, length, features)``, labels ``(examples,)`` in ``[0, classes)``.
    """

    seed: int = 0
    length: int = 8
    features: int = 32
    classes: int = 4
    density: float = 0.05
    separation: float = 1.4
    position: float = 0.3
    train: int = 2000
    test: int = 2000

    def __post_init__(self):
        sizes = {k: getattr(self, k) for k in ("length", "features", "classes", "train", "test")}
        bad = {k: v for k, v in sizes.items() if v < 1} | (
            {} if 0 < self.density <= 1 and 0 <= self.position <= 1 else {"density/position": 0}
        )
        if bad:
            raise ValueError(
                f"SparseTask({', '.join(f'{k}={v}' for k, v in sizes.items())}, density={self.density}, "
                f"position={self.position}): sizes must be >= 1, density in (0, 1] and position in [0, 1]."
            )

    def patterns(self, rng: np.random.Generator) -> np.ndarray:
        """Each class's probability that an entry is nonzero, ``(classes, length, features)``."""
        shared = rng.standard_normal((self.classes, 1, self.features))
        local = rng.standard_normal((self.classes, self.length, self.features))
        z = np.sqrt(1 - self.position**2) * shared + self.position * local
        weight = np.exp(self.separation * z)
        return np.minimum(self.density * weight / weight.mean(axis=(1, 2), keepdims=True), 1.0)

    def arrays(self) -> Dataset:
        """The training and test sets (drawn together, then split)."""
        rng = np.random.default_rng([self.seed, 0])
        probability = self.patterns(rng)
        count = self.train + self.test
        labels = rng.integers(0, self.classes, count)
        shape = (count, self.length, self.features)
        present = rng.random(shape) < probability[labels]
        x = (present * rng.exponential(1.0, shape)).astype(np.float32)
        return Dataset(x[: self.train], labels[: self.train], x[self.train :], labels[self.train :])


def batch_indices(examples: int, batch: int, *, steps: int, seed: int) -> np.ndarray:
    """Which training examples each step reads: epochs of a seeded permutation, each cut into whole
    batches (the remainder of an epoch is dropped, as ``DataLoader(drop_last=True)`` does).

    Shape:
        ``(steps, batch)`` int64 indices into the training set.

    Raises:
        ValueError: ``batch`` is not in ``[1, examples]`` or ``steps < 0``.
    """
    if not 1 <= batch <= examples or steps < 0:
        raise ValueError(
            f"batch_indices(examples={examples}, batch={batch}, steps={steps}): the batch must be "
            f"between 1 and the number of examples and steps >= 0."
        )
    rng = np.random.default_rng([seed, 1])
    per_epoch = examples // batch
    epochs = -(-steps // per_epoch)
    rows = [rng.permutation(examples)[: per_epoch * batch].reshape(per_epoch, batch) for _ in range(epochs)]
    return np.concatenate(rows or [np.zeros((0, batch), np.int64)])[:steps].astype(np.int64)
