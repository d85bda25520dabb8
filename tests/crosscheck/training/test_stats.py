"""Spreads and confidence intervals over seeds, against scipy's own t-interval."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from crosscheck.training.stats import chance_of_gap, paired, summary


@given(st.lists(st.floats(0.8, 1.0), min_size=2, max_size=30))
def test_the_interval_is_scipys_t_interval_and_holds_the_mean(values):
    result = summary(values)
    a = np.asarray(values)
    low, high = result["interval"]
    if a.std() > 0:
        expected = scipy_stats.t.interval(0.95, a.size - 1, loc=a.mean(), scale=scipy_stats.sem(a))
        assert (low, high) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert low <= result["mean"] <= high and result["min"] <= result["mean"] <= result["max"]


def test_the_mean_of_equal_values_is_that_value():
    value = 0.8379512081283557  # five of it sum to a mean an ulp below it
    assert summary([value] * 5)["mean"] == value


def test_paired_differences_count_the_seeds_each_way():
    result = paired([0.91, 0.92, 0.93, 0.94], [0.92, 0.92, 0.92, 0.92])
    assert (result["higher"], result["equal"], result["lower"]) == (2, 1, 1)
    assert result["values"] == pytest.approx([-0.01, 0.0, 0.01, 0.02])
    assert result["mean"] == pytest.approx(0.005)


def test_the_chance_of_a_gap_is_two_normal_tails():
    assert chance_of_gap(0.003, 0.006) == pytest.approx(2 * scipy_stats.norm.sf(2.0))
    assert chance_of_gap(0.0, 0.006) == 0.0


def test_one_value_has_no_spread():
    with pytest.raises(ValueError, match="summary: a spread needs at least 2 values, got 1."):
        summary([0.9])
