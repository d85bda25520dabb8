"""crosscheck.numerics.bits: raw bits and ULP distances."""

import ml_dtypes
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from crosscheck.numerics import bits_of, is_floating, ulp_distance


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


def test_bits_tell_signed_zeros_apart_and_keep_the_shape():
    a = np.array([[0.0, -0.0]], np.float32)
    assert bits_of(a).shape == (1, 2) and bits_of(a)[0, 0] != bits_of(a)[0, 1]
    assert bits_of(np.array(1.0, ml_dtypes.bfloat16)).dtype == np.uint16


def test_is_floating_knows_bfloat16():
    assert is_floating(ml_dtypes.bfloat16) and is_floating(np.float64) and not is_floating(np.int64)
