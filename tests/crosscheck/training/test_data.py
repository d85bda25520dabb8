"""The sparse task and its batch stream: deterministic, sparse, and each epoch a permutation."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from crosscheck.training.data import SparseTask, batch_indices


def test_the_same_seed_gives_the_same_arrays_and_another_seed_others():
    a, b = SparseTask(seed=3, train=50, test=20).arrays(), SparseTask(seed=3, train=50, test=20).arrays()
    c = SparseTask(seed=4, train=50, test=20).arrays()
    assert all(
        np.array_equal(getattr(a, k), getattr(b, k)) for k in ("x_train", "y_train", "x_test", "y_test")
    )
    assert not np.array_equal(a.x_train, c.x_train)


def test_inputs_are_sparse_nonnegative_and_every_class_occurs():
    data = SparseTask().arrays()
    assert data.x_train.shape == (2000, 8, 32) and data.x_test.shape == (2000, 8, 32)
    assert 0.04 < (data.x_train != 0).mean() < 0.06 and data.x_train.min() == 0
    assert set(np.unique(data.y_train)) == {0, 1, 2, 3}


@given(
    examples=st.integers(1, 60), batch=st.integers(1, 60), steps=st.integers(0, 40), seed=st.integers(0, 99)
)
def test_each_epoch_reads_distinct_examples_in_whole_batches(examples, batch, steps, seed):
    assume(batch <= examples)
    rows = batch_indices(examples, batch, steps=steps, seed=seed)
    assert rows.shape == (steps, batch) and rows.dtype == np.int64
    assert ((0 <= rows) & (rows < examples)).all()
    per_epoch = examples // batch
    for start in range(0, steps, per_epoch):
        epoch = rows[start : start + per_epoch].ravel()
        assert len(set(epoch.tolist())) == epoch.size
    assert np.array_equal(rows, batch_indices(examples, batch, steps=steps, seed=seed))


def test_bad_sizes_are_refused_with_the_rule():
    with pytest.raises(ValueError, match=r"SparseTask\(length=0, .*sizes must be >= 1, density in \(0, 1\]"):
        SparseTask(length=0)
    with pytest.raises(ValueError, match=r"density=1.5, position=0.3\): sizes must be"):
        SparseTask(density=1.5)
    with pytest.raises(
        ValueError, match=r"batch_indices\(examples=10, batch=11, steps=3\): the batch must be"
    ):
        batch_indices(10, 11, steps=3, seed=0)
