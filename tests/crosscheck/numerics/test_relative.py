"""The rule where no analytic bound is known: each framework's error against float64 truth within c×
the other's plus a floor; and float64 agreement within what float64 rounding explains."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crosscheck.numerics.relative import FACTOR, compare_relative, compare_same_function


def _rounded(truth, seed):
    """An honest float32 result: the truth perturbed by about an ulp, then rounded."""
    noise = np.random.default_rng(seed).standard_normal(truth.shape) * np.abs(truth) * 2.0**-24
    return (truth + noise).astype(np.float32)


@given(seed=st.integers(0, 10_000), scale=st.floats(1e-6, 1e6))
def test_two_honest_roundings_pass(seed, scale):
    truth = np.random.default_rng(seed).standard_normal(300) * scale
    result = compare_relative(_rounded(truth, seed + 1), _rounded(truth, seed + 2), truth, "float32")
    assert result.passed, result.message("outputs")


def test_one_framework_far_worse_than_the_other_fails_and_says_by_how_much():
    truth = np.linspace(-1, 1, 100)
    good = truth.astype(np.float32)
    bad = (truth + 1e-4 * np.sin(truth * 7)).astype(np.float32)  # different math: 1e-4, not rounding
    result = compare_relative(bad, good, truth, "float32")
    assert not result.passed and result.metrics["actual_bound_ratio"] > 100
    assert "RMS error against float64 truth: actual" in result.message("outputs")
    assert f"c={FACTOR:g}×" in result.bound_text


def test_exact_results_pass_and_a_nan_never_does():
    truth = np.arange(5.0)
    assert compare_relative(truth.astype(np.float32), truth.astype(np.float32), truth, "float32").passed
    with_nan = truth.astype(np.float32).copy()
    with_nan[2] = np.nan
    assert not compare_relative(with_nan, truth.astype(np.float32), truth, "float32").passed


def test_same_function_passes_float64_rounding_and_fails_a_millionth():
    truth = np.random.default_rng(0).standard_normal(200)
    wobble = truth * (1 + 2.0**-52 * np.random.default_rng(1).standard_normal(200))
    assert compare_same_function(wobble, truth, working_error=1e-7, dtype="float32").passed
    result = compare_same_function(truth * (1 + 1e-6), truth, working_error=1e-7, dtype="float32")
    assert not result.passed and "RMS difference in float64" in result.message("outputs")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_floor_is_a_few_ulps_of_the_outputs_scale(dtype):
    truth = np.full(10, 1000.0)
    result = compare_relative(truth, truth + 1e-30, truth, dtype)
    assert result.passed and result.metrics["floor"] > 0
