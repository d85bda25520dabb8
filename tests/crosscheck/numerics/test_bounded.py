"""compare under a Bound, a chunk at a time (crosscheck.numerics.bounded): the same Comparison, field for
field and bit for bit, as the whole-array path, at any chunk size."""

import dataclasses

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crosscheck.numerics import Bound, bounded, compare


def _whole_array(monkeypatch, *args, **kwargs):
    with monkeypatch.context() as patch:
        patch.setattr(bounded, "fits", lambda *_: False)
        return compare(*args, **kwargs)


def _same(ours, theirs):
    for field in dataclasses.fields(ours):
        a, b = getattr(ours, field.name), getattr(theirs, field.name)
        assert repr(a) == repr(b), field.name


@given(
    shape=st.lists(st.integers(1, 9), min_size=0, max_size=3).map(tuple),
    dtype=st.sampled_from([np.float32, np.float16, ml_dtypes.bfloat16, np.float64]),
    noise=st.sampled_from([0.0, 1e-9, 1e-6, 1e-3, 1.0]),
    zeros=st.booleans(),
    reference=st.booleans(),
    k=st.sampled_from([1, 7, 512, 10**9]),
    chunk=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_the_chunked_comparison_is_the_whole_arrays_bit_for_bit(
    shape, dtype, noise, zeros, reference, k, chunk, seed
):
    rng = np.random.default_rng(seed)
    truth = rng.standard_normal(shape)
    magnitude = np.abs(truth) * rng.uniform(1, 30)
    if zeros:  # elements the bound allows nothing: 0/0 passes, anything else is infinitely over
        truth.flat[::3], magnitude.flat[::3] = 0.0, 0.0
    actual = (truth + noise * rng.standard_normal(shape)).astype(dtype)
    expected = (truth + noise * rng.standard_normal(shape)).astype(dtype)
    options = {"bound": Bound(magnitude, k, "float32"), "reference": truth if reference else None}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bounded, "CHUNK", chunk)
        assert bounded.fits(actual, expected, options["reference"], options["bound"])
        _same(compare(actual, expected, **options), _whole_array(patch, actual, expected, **options))


def test_non_finite_values_and_other_bounds_take_the_whole_array_path():
    x, bound = np.float32([1.0, 2.0]), Bound(np.ones(2), 4, "float32")
    assert bounded.fits(x, x, None, bound)
    assert not bounded.fits(np.float32([1.0, np.nan]), x, None, bound)
    assert not bounded.fits(x, x, np.float64([np.inf, 1.0]), bound)
    assert not bounded.fits(x, x, None, 1e-3)
    assert not bounded.fits(x, x, None, Bound(np.ones(1), 4, "float32"))  # broadcast: the whole path
    assert not bounded.fits(x[:0], x[:0], None, Bound(np.ones(0), 4, "float32"))


@given(
    rows=st.integers(1, 12),
    columns=st.integers(1, 12),
    dtype=st.sampled_from([np.float32, np.float64]),
    noise=st.sampled_from([0.0, 1e-15, 1e-7, 1.0]),
    chunk=st.integers(1, 40),
    counted=st.sampled_from([1, 4, 1 << 12]),
    seed=st.integers(0, 2**16),
)
def test_matrices_in_any_layout_give_their_c_order_copies_comparison(
    rows, columns, dtype, noise, chunk, counted, seed
):
    """A kernel's gradient viewed in torch's layout (a transpose) and its magnitude are read a chunk at a
    time, never copied whole: the same Comparison as their C-order copies, the ULP median included
    whether the distances are counted or kept."""
    rng = np.random.default_rng(seed)
    truth = rng.standard_normal((rows, columns))
    stored = (truth + noise * rng.standard_normal(truth.shape)).astype(dtype).T.copy()
    expected = (truth + noise * rng.standard_normal(truth.shape)).astype(dtype)
    magnitude = (np.abs(truth) * 10).T.copy().T
    bound = Bound(magnitude, 64, "float32")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bounded, "CHUNK", chunk)
        patch.setattr(bounded, "COUNTED", counted)
        viewed = bounded.compare_bounded(stored.T, expected, truth, bound)
        copied = bounded.compare_bounded(
            np.ascontiguousarray(stored.T),
            expected,
            truth,
            Bound(np.ascontiguousarray(magnitude), 64, "float32"),
        )
        whole = _whole_array(patch, np.ascontiguousarray(stored.T), expected, reference=truth, bound=bound)
    _same(viewed, copied)
    _same(viewed, whole)


@given(seed=st.integers(0, 99), k=st.integers(1, 4096), dtype=st.sampled_from(["float32", "bfloat16"]))
def test_a_bounds_arrays_written_into_buffers_are_those_it_returns(seed, k, dtype):
    magnitude = np.abs(np.random.default_rng(seed).standard_normal(50)) * 10.0 ** (seed % 7 - 3)
    bound = Bound(magnitude, k, dtype)
    buffers = tuple(np.full(50, np.nan) for _ in range(3))
    for made, written in zip(bound.of(magnitude), bound.of(magnitude, out=buffers), strict=True):
        assert np.array_equal(made.view(np.uint64), written.view(np.uint64))


def test_comparisons_on_two_threads_at_once_are_those_made_one_after_the_other():
    """Each thread judges in its own buffers."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(5)
    cases = []
    for size in (3 * bounded.CHUNK + 17, 2 * bounded.CHUNK + 5):
        truth = rng.standard_normal(size)
        work = [(truth * (1 + 1e-7 * rng.standard_normal(size))).astype(np.float32) for _ in range(2)]
        cases.append((*work, truth, Bound(np.abs(truth) * 8, 64, "float32")))

    def judged(case):
        return [compare(case[0], case[1], reference=case[2], bound=case[3]) for _ in range(4)]

    alone = [judged(case) for case in cases]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(judged, cases))
    assert together == alone
