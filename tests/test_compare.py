"""crosscheck.compare: metrics, bounds, NaN handling and the torch-style message."""

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crosscheck.bounds import dot_bound, gamma, unit_roundoff
from crosscheck.compare import SLACK, AssertionMismatch, Bound, assert_close, compare, ulp_distance


@pytest.mark.parametrize(
    ("dtype", "u"),
    [("float64", 2.0**-53), ("float32", 2.0**-24), ("float16", 2.0**-11), ("bfloat16", 2.0**-8)],
)
def test_unit_roundoff(dtype, u):
    assert unit_roundoff(dtype) == u


def test_gamma_is_k_u_over_one_minus_k_u_and_infinite_past_one():
    u = 2.0**-24
    assert gamma(1000, "float32") == pytest.approx(1000 * u / (1 - 1000 * u), rel=1e-15)
    assert gamma(2**24, "float32") == np.inf
    assert gamma(400, "float32", probabilistic=True) == 20 * u


def test_dot_bound_uses_absolute_values_and_counts_the_bias():
    x, w, b = np.array([[1.0, -2.0]]), np.array([[3.0], [-4.0]]), np.array([-5.0])
    assert dot_bound(x, w, "float32", bias=b)[0, 0] == pytest.approx(gamma(3, "float32") * (3 + 8 + 5))


def test_bound_allowance_is_slack_times_probabilistic_capped_by_deterministic():
    small, large = Bound(np.ones(1), 4, "float32"), Bound(np.ones(1), 4096, "float32")
    assert small.allowed()[0] == pytest.approx(gamma(4, "float32"))  # 4·√4 > 4: the rigorous bound wins
    assert large.allowed()[0] == pytest.approx(SLACK * 64 * 2.0**-24)


@given(st.floats(-1e30, 1e30, allow_nan=False, allow_infinity=False).map(np.float32), st.integers(-5, 5))
def test_ulp_distance_counts_representable_steps(value, steps):
    a = np.float32(value)
    b = a
    direction = np.float32(np.inf if steps > 0 else -np.inf)
    for _ in range(abs(steps)):
        b = np.nextafter(b, direction)
    assert ulp_distance(a, b) == abs(steps)


def test_ulp_distance_treats_signed_zeros_as_equal_and_nan_as_infinite():
    assert ulp_distance(np.float32(0.0), np.float32(-0.0)) == 0
    assert ulp_distance(np.float32(np.nan), np.float32(1.0)) == np.inf
    one = np.array([1.0], ml_dtypes.bfloat16)
    assert ulp_distance(one, np.array([1.0078125], ml_dtypes.bfloat16))[0] == 1


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


def test_matching_non_finite_values_pass():
    assert compare(np.float32([np.inf, np.nan]), np.float32([np.inf, np.nan]), bound=0.0).passed
    assert not compare(np.float32([np.inf]), np.float32([-np.inf]), bound=np.inf).passed


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
