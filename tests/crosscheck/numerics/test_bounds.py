"""crosscheck.numerics.bounds: u, γ_K, the dot-product bound, and Bound's allowance and validation."""

import numpy as np
import pytest

from crosscheck.numerics import SLACK, Bound, dot_bound, gamma, unit_roundoff


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


@pytest.mark.parametrize(
    "magnitude, count",
    [(np.array([1.0, -2.0]), "0 NaN and 1 negative"), (np.array([np.nan]), "1 NaN and 0 negative")],
)
def test_a_bound_with_negative_or_nan_magnitudes_is_refused(magnitude, count):
    with pytest.raises(ValueError, match=f"Bound: magnitudes must be non-negative numbers .*, got {count}"):
        Bound(magnitude, 8, "float32")


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_a_bound_needs_a_positive_integer_k(k):
    with pytest.raises(ValueError, match=f"Bound: k must be a positive integer .*, got {k!r}"):
        Bound(np.ones(1), k, "float32")


def test_an_infinite_magnitude_is_a_bound_that_allows_any_finite_error():
    assert Bound(np.array([np.inf]), 8, "float32").allowed()[0] == np.inf
