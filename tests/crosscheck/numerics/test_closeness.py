"""crosscheck.compare: metrics, bounds, NaN handling and the torch-style message."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from crosscheck.numerics import AssertionMismatch, Bound, assert_close, compare


def test_compare_metrics():
    actual = np.float32([1.0, 2.0, 4.0, 8.0])
    expected = np.float32([1.0, 2.0, 4.0, 8.0 + 2 * 2.0**-20])
    result = compare(actual, expected, bound=1.0)
    assert result.passed
    assert result.metrics["bitwise_equal"] == 0.75
    assert result.metrics["max_ulp"] == 2 and result.metrics["median_ulp"] == 0
    assert result.metrics["max_abs"] == pytest.approx(2.0**-19)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("with_reference", [False, True])
def test_nan_or_inf_where_the_reference_is_finite_never_passes(bad, with_reference):
    actual = np.float32([1.0, bad])
    expected = np.float32([1.0, 2.0])
    reference = expected.astype(np.float64) if with_reference else None
    result = compare(actual, expected, reference=reference, bound=np.inf)
    assert not result.passed and result.mismatched == 1
    assert not compare(
        actual, expected, reference=reference, bound=Bound(np.full(2, 1e30), 8, "float32")
    ).passed


def test_matching_infinities_pass_and_nan_passes_only_with_equal_nan():
    assert compare(np.float32([np.inf, -np.inf]), np.float32([np.inf, -np.inf]), bound=0.0).passed
    assert not compare(np.float32([np.inf]), np.float32([-np.inf]), bound=np.inf).passed
    both_nan = (np.float32([1.0, np.nan]), np.float32([1.0, np.nan]))
    assert not compare(*both_nan, bound=np.inf).passed
    assert compare(*both_nan, bound=0.0, equal_nan=True).passed


def test_with_a_reference_each_side_is_judged_against_the_truth():
    truth = np.array([1.0])
    bound = Bound(np.ones(1), 16, "float32")
    close = np.float32([1.0 + 2.0**-23])
    far = np.float32([1.0 + 2.0**-12])
    assert compare(close, close, reference=truth, bound=bound).passed
    result = compare(close, far, reference=truth, bound=bound)  # torch-side error far above its bound
    assert not result.passed and result.metrics["expected_bound_ratio"] > 100


def test_zero_magnitude_allows_only_exact_zero():
    bound = Bound(np.zeros(2), 8, "float32")
    assert compare(np.float32([0, 0]), np.float32([0, 0]), bound=bound).passed
    assert not compare(np.float32([0, 1e-30]), np.float32([0, 0]), bound=bound).passed


def test_default_tolerance_is_torch_testing_for_the_dtype():
    assert compare(np.float32([1.0]), np.float32([1.0 + 1e-6]), bound=None).passed
    assert not compare(np.float32([1.0]), np.float32([1.0 + 1e-4]), bound=None).passed


def test_shape_mismatch_is_a_value_error():
    with pytest.raises(
        ValueError, match=r"compare: actual has shape \(2,\), expected \(3,\); they must match"
    ):
        compare(np.zeros(2), np.zeros(3))


def test_assert_close_message_reads_like_torch_with_item_path_and_bound():
    actual = np.zeros((4, 8), np.float32)
    expected = actual.copy()
    expected[0, 7] = 2.1e-3
    with pytest.raises(AssertionError) as caught:
        assert_close(
            actual,
            expected,
            bound=Bound(np.ones((4, 8)), 768, "float32"),
            what="gradients",
            item="['grads']['kernel']",
            header="jaxlin.Linear vs torch_ref.Linear",
        )
    message = str(caught.value)
    assert message.splitlines() == [
        "jaxlin.Linear vs torch_ref.Linear: gradients are not close (float32)",
        "Mismatched elements: 1 / 32 (3.1%)",
        "Greatest absolute difference: 2.1e-03 at index (0, 7) (up to 1.3e-05 allowed; "
        "bound c·√K·u·|x|·|W| with c=4, K=768, u=2^-24)",
        "The failure occurred for item ['grads']['kernel']",
    ]
    assert isinstance(caught.value, AssertionMismatch) and caught.value.comparison.mismatched == 1


def test_a_bound_past_k_u_of_one_is_infinite_but_zero_magnitude_still_demands_zero():
    bound = Bound(np.array([0.0, 1.0]), 4096, "bfloat16")  # γ_K = inf for bfloat16 at K=4096
    assert bound.deterministic.tolist() == [0.0, np.inf]
    assert not compare(np.float32([1e-3, 0]), np.float32([0, 0]), bound=bound).passed


# ---------------------------------------------------------------- NaN and inf never pass


def test_an_all_nan_output_fails_and_the_message_says_where_and_how_many():
    nan = np.full((2, 3), np.nan, np.float32)
    result = compare(nan, nan, bound=Bound(np.ones((2, 3)), 8, "float32"))
    assert not result.passed and result.mismatched == 6
    message = result.message("outputs")
    assert "Non-finite values: actual has 6 NaN, first at index (0, 0)" in message
    assert compare(nan, nan, bound=Bound(np.ones((2, 3)), 8, "float32"), equal_nan=True).passed


def test_with_a_reference_nan_passes_only_where_all_three_agree_and_equal_nan_is_asked():
    nan = np.float32([np.nan, 1.0])
    truth = np.array([np.nan, 1.0])
    assert not compare(nan, nan, reference=truth, bound=1e-3).passed
    assert compare(nan, nan, reference=truth, bound=1e-3, equal_nan=True).passed
    finite_truth = np.array([0.5, 1.0])  # a non-finite value where the truth is finite: always a failure
    result = compare(nan, nan, reference=finite_truth, bound=1e-3, equal_nan=True)
    assert not result.passed
    assert "actual has 1 NaN, first at index (0,)" in result.message("outputs")


def test_a_finite_value_where_the_truth_is_infinite_fails_and_says_so():
    result = compare(np.float32([1.0]), np.float32([np.inf]), reference=np.array([np.inf]), bound=np.inf)
    assert not result.passed
    assert "actual is finite at 1 where the float64 reference is not" in result.message("outputs")


@given(
    values=arrays(np.float32, st.integers(1, 20), elements=st.floats(-1e6, 1e6, width=32)),
    where=st.integers(0, 19),
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
)
def test_one_planted_non_finite_value_always_fails_whatever_the_bound(values, where, bad):
    planted = values.copy()
    planted[where % values.size] = bad
    for bound in (np.inf, 1e30, Bound(np.full(values.shape, 1e30), 8, "float32")):
        assert not compare(planted, values, bound=bound).passed
        assert not compare(values, planted, bound=bound).passed
        assert not compare(planted, values, reference=values.astype(np.float64), bound=bound).passed


# ---------------------------------------------------------------- compare validates what it is given


@pytest.mark.parametrize("bound", [-1.0, np.nan, np.array([1e-3, -1e-3]), np.array([np.nan, 1.0])])
def test_a_negative_or_nan_bound_is_refused(bound):
    with pytest.raises(ValueError, match="compare: bound must be non-negative and not NaN"):
        compare(np.zeros(2), np.zeros(2), bound=bound)


@pytest.mark.parametrize("bound", ["1e-3", True, object(), np.array(["a"])])
def test_a_bound_that_is_not_a_number_is_refused(bound):
    with pytest.raises(ValueError, match="compare: bound must be a Bound, a number or an array of numbers"):
        compare(np.zeros(2), np.zeros(2), bound=bound)


def test_a_bound_that_does_not_broadcast_is_refused():
    with pytest.raises(
        ValueError, match=r"compare: the bound has shape \(3,\), which does not broadcast to \(2,\)"
    ):
        compare(np.zeros(2), np.zeros(2), bound=np.ones(3))


def test_the_reference_must_have_the_shape_of_expected():
    with pytest.raises(
        ValueError, match=r"compare: reference has shape \(\), expected \(3,\); they must match"
    ):
        compare(np.zeros(3), np.zeros(3), reference=np.float64(0.0), bound=1.0)


def test_zero_dimensional_arrays_compare_like_any_other():
    loss = np.float32(2.0)
    assert compare(
        loss, np.float32(2.0), reference=np.float64(2.0), bound=Bound(np.float64(2.0), 8, "float32")
    ).passed
    result = compare(loss, np.float32(3.0), bound=1e-3)
    assert not result.passed and result.worst_index == () and result.shape == ()
    assert "at index ()" in result.message("losses")


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_input_is_refused_never_reduced_to_its_real_part(dtype):
    with pytest.raises(
        TypeError, match=r"compare: actual is complex \(complex\d+\); compare its .real and .imag parts"
    ):
        compare(np.ones(2, dtype), np.ones(2, dtype))


def test_integers_compare_exactly_in_their_own_type_even_beyond_two_to_the_53():
    big = np.array([2**62, 3], np.int64)
    off_by_one = big + np.array([1, 0])
    assert big.astype(np.float64)[0] == off_by_one.astype(np.float64)[0]  # float64 cannot tell them apart
    result = compare(big, off_by_one, bound=1e30)
    assert (
        not result.passed
        and result.mismatched == 1
        and result.worst_index == (0,)
        and result.worst_error == 1
    )
    assert compare(big, big.copy()).passed


def test_bools_compare_exactly_and_integers_never_against_floats():
    assert not compare(np.array([True, False]), np.array([True, True])).passed
    with pytest.raises(
        TypeError, match="compare: integer and bool arrays compare exactly, only with each other"
    ):
        compare(np.array([1, 2]), np.array([1.0, 2.0]))
