"""The whole-tensor sums of the relative rule, a chunk at a time: the same numbers as the plain NumPy
formulas (to the last few ulps: only the order of the sum differs), the same worst index, NaN kept."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crosscheck.numerics import relative
from crosscheck.numerics.judging import all_finite
from crosscheck.numerics.relative import compare_relative, compare_same_function, difference

shapes = st.lists(st.integers(1, 9), min_size=0, max_size=3).map(tuple)


def _reference_relative(a, e, t, dtype, scale=0.0):
    """The rule's formulas written plainly (float64 copies, squares, means)."""
    a, e, t = (np.asarray(v, np.float64) for v in (a, e, t))
    err_a, err_e = np.sqrt(np.mean((a - t) ** 2)), np.sqrt(np.mean((e - t) ** 2))
    floor = relative.FLOOR_ULPS * relative.unit_roundoff(dtype) * max(np.sqrt(np.mean(t**2)), scale)
    return err_a, err_e, floor, np.max(np.abs(a - t)), np.max(np.abs(e - t))


@settings(max_examples=60, deadline=None)
@given(shape=shapes, seed=st.integers(0, 1000), chunk=st.sampled_from([1, 3, 7, 1 << 18]))
def test_chunked_sums_match_the_plain_formulas(shape, seed, chunk):
    rng = np.random.default_rng(seed)
    t = rng.standard_normal(shape)
    a, e = (t + rng.standard_normal(shape) * 1e-7).astype(np.float32), t.astype(np.float32)
    original = relative.CHUNK
    relative.CHUNK = chunk
    try:
        result = compare_relative(a, e, t, "float32")
        same = compare_same_function(a.astype(np.float64), t, working_error=1e-7, dtype="float32")
    finally:
        relative.CHUNK = original
    err_a, err_e, floor, max_a, max_e = _reference_relative(a, e, t, "float32")
    m = result.metrics
    np.testing.assert_allclose([m["actual_rms_error"], m["expected_rms_error"], m["floor"]],
                               [err_a, err_e, floor], rtol=1e-12)  # fmt: skip
    assert (m["actual_max_error"], m["expected_max_error"]) == (max_a, max_e)
    side = a if m["actual_bound_ratio"] >= m["expected_bound_ratio"] else e
    expected_index = (
        np.unravel_index(np.argmax(np.abs(side.astype(np.float64) - t)), t.shape) if t.size else ()
    )
    assert result.worst_index == tuple(int(i) for i in expected_index)
    plain = np.sqrt(np.mean((a.astype(np.float64) - t) ** 2))
    np.testing.assert_allclose(same.metrics["rms_difference"], plain, rtol=1e-12)


def test_difference_keeps_the_first_largest_and_a_nan():
    assert difference(np.array([1.0, 3.0, 3.0]), np.zeros(3)) == (19.0, 3.0, 1, 3)
    with_nan = difference(np.array([1.0, np.nan, 5.0]), np.zeros(3))
    assert np.isnan(with_nan.sum_of_squares) and np.isnan(with_nan.largest) and with_nan.index == 1


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_all_finite_finds_one_bad_element_and_an_overflowing_sum_is_not_one(bad):
    values = np.ones(1000, np.float32)
    assert all_finite(values) and all_finite(np.full(3, 3e38, np.float32))  # the sum overflows
    values[517] = bad
    assert not all_finite(values)


def test_a_non_finite_input_takes_the_masked_path_with_the_same_verdict_as_before():
    t = np.arange(6.0)
    a = t.astype(np.float32)
    a[4] = np.nan
    result = compare_relative(a, t.astype(np.float32), t, "float32")
    assert not result.passed and result.worst_index == (4,) and result.nonfinite
