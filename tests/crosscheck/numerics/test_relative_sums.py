"""The whole-tensor sums of the relative rule, a chunk at a time: the same numbers as the plain NumPy
formulas (to the last few ulps: only the order of the sum differs), the same worst index, NaN kept."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crosscheck.numerics import chunks, relative
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


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 40),
    columns=st.integers(1, 40),
    seed=st.integers(0, 1000),
    chunk=st.sampled_from([1, 3, 7, 64, 1 << 18]),
    dtype=st.sampled_from([np.float32, np.float64, np.float16]),
    layout=st.sampled_from(["transposed", "strided", "reversed"]),
    tile=st.sampled_from([(64, 256), (2, 3), (1, 1)]),
)
def test_a_matrix_not_in_c_order_is_summed_as_its_c_order_copy(
    rows, columns, seed, chunk, dtype, layout, tile, monkeypatch
):
    """A transposed kernel's gradient is read a few rows at a time, copied a tile at a time, with the
    same chunks, so the same sums to the bit, the same largest element and the same index as its
    C-order copy."""
    monkeypatch.setattr(chunks, "TILE", tile)
    rng = np.random.default_rng(seed)
    stored_shape = (columns, 2 * rows) if layout == "strided" else (columns, rows)
    stored = rng.standard_normal(stored_shape).astype(dtype)
    view = {"transposed": stored.T, "strided": stored.T[::2], "reversed": stored.T[::-1]}[layout]
    truth = rng.standard_normal(view.shape)
    original = relative.CHUNK
    relative.CHUNK = chunk
    try:
        read, copied = difference(view, truth), difference(np.ascontiguousarray(view), truth)
        alone, alone_copied = (
            relative.sum_of_squares(view),
            relative.sum_of_squares(np.ascontiguousarray(view)),
        )
    finally:
        relative.CHUNK = original
    assert not view.flags.c_contiguous or min(view.shape) == 1
    assert read == copied and alone == alone_copied


def test_judged_layout_keeps_a_transposed_kernel_as_a_view_and_moves_the_rest_to_c_order():
    from crosscheck.porting.evaluate import judged_layout

    kernel = np.arange(12.0).reshape(3, 4)
    assert np.shares_memory(judged_layout(kernel.T), kernel)  # no copy: read a chunk at a time
    moved = judged_layout(np.arange(24.0).reshape(2, 3, 4).transpose(2, 0, 1))
    assert moved.flags.c_contiguous and moved.shape == (4, 2, 3)
    reversed_rows = judged_layout(kernel[::-1])
    assert reversed_rows.flags.c_contiguous and reversed_rows.tolist() == kernel[::-1].tolist()


def _plain_difference(a, b, chunk):
    """The chunked sums as they were: ``|a - b|`` into a float64 buffer, its squares summed and its
    first largest element found a chunk at a time (``b=None``: ``|a|``)."""
    a = np.ascontiguousarray(a).reshape(-1)
    b = None if b is None else np.ascontiguousarray(b).reshape(-1)
    total, largest, index = 0.0, 0.0, 0
    for start in range(0, a.size, chunk):
        step = np.abs(
            a[start : start + chunk].astype(np.float64) - (0 if b is None else b[start : start + chunk])
        )
        total += float(np.einsum("i,i->", step, step))
        where = int(np.argmax(step))
        if not step[where] <= largest:
            largest, index = float(step[where]), start + where
            if np.isnan(largest):
                return float("nan"), largest, index
    return total, largest, index


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 30), min_size=1, max_size=2).map(tuple),
    seed=st.integers(0, 1000),
    chunk=st.sampled_from([1, 3, 7, 64, 1 << 18]),
    dtype=st.sampled_from([np.float32, np.float64, np.float16]),
    offset=st.integers(0, 3),
    transposed=st.booleans(),
    bad=st.sampled_from([None, np.nan, np.inf, -np.inf]),
)
def test_sums_and_extremes_are_those_of_the_plain_chunked_loop_to_the_bit(
    shape, seed, chunk, dtype, offset, transposed, bad, monkeypatch
):
    """:func:`difference` finds its largest element from the two extremes and :func:`sum_of_squares`
    sums float64 where it lies: the same bits, index and NaN as the loop of absolute values, for any
    layout, a start off the buffer's alignment, and a NaN or inf anywhere."""
    monkeypatch.setattr(relative, "CHUNK", chunk)
    rng = np.random.default_rng(seed)
    stored = rng.standard_normal(math.prod(shape) + offset).astype(dtype)[offset:].reshape(shape)
    a = stored.T if transposed and stored.ndim == 2 else stored
    b = rng.standard_normal(a.shape)
    if bad is not None:
        np.asarray(b).reshape(-1)[rng.integers(b.size)] = bad
    got = difference(a, b)
    assert (got.sum_of_squares, got.largest, got.index) == pytest.approx(
        _plain_difference(a, b, chunk), nan_ok=True, rel=0
    )
    assert relative.sum_of_squares(b) == pytest.approx(
        _plain_difference(b, None, chunk)[0], nan_ok=True, rel=0
    )
    assert relative.sum_of_squares(a) == pytest.approx(
        _plain_difference(a, None, chunk)[0], nan_ok=True, rel=0
    )


def test_finite_values_whose_squares_overflow_are_judged_as_finite():
    """A sum of squares that overflows does not by itself mean a NaN or inf: ``all_finite`` decides,
    and the tiers take the finite path (no non-finite note) as they did when it was asked first."""
    t = np.full(4, 1e200)
    a = e = np.full(4, np.inf, np.float32)  # float32 cannot hold 1e200
    assert not relative.finite_sums(relative.sum_of_squares(t))
    result = compare_relative(t * 1.0, t * 1.0, t, "float64")
    same = compare_same_function(t, t * (1 + 1e-16), working_error=0.0, dtype="float64")
    assert not result.nonfinite and not same.nonfinite and result.metrics["actual_rms_error"] == 0.0
    assert compare_relative(a, e, t, "float32").nonfinite  # a real inf is still one


def test_judge_relative_given_the_truths_squares_is_the_same_as_reading_them():
    from crosscheck.porting.verdicts import Evidence, judge_relative

    rng = np.random.default_rng(3)
    t = rng.standard_normal((40, 30))
    evidence = Evidence(*(t + rng.standard_normal(t.shape) * s for s in (1e-7, 1e-7, 1e-15)), t)
    evidence = Evidence(evidence.jax_work.astype(np.float32), evidence.torch_work.astype(np.float32),
                        evidence.jax_truth, t)  # fmt: skip
    read = judge_relative("grads.w", evidence, "float32", scale=1.0)
    given = judge_relative(
        "grads.w", evidence, "float32", scale=1.0, truth_squares=relative.sum_of_squares(t)
    )
    assert (
        read.rounding.metrics == given.rounding.metrics
        and read.same_function.metrics == given.same_function.metrics
    )
    assert read.passed
