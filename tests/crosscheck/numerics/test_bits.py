"""crosscheck.numerics.bits: raw bits and ULP distances."""

import ml_dtypes
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from crosscheck.numerics import bits_of, is_floating, ulp_distance
from crosscheck.numerics.bits import ulp_steps


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


def _ulp_in_float64(a, b):
    """The counts as float64 arithmetic gives them: what the integer path of 32 bits and less must match."""
    signed = {2: np.int16, 4: np.int32}[a.dtype.itemsize]
    top = float(2 ** (8 * a.dtype.itemsize - 1))
    ia, ib = (np.asarray(v.view(signed), np.float64) for v in (a, b))
    ia, ib = np.where(ia < 0, -top - ia, ia), np.where(ib < 0, -top - ib, ib)
    return np.where(np.isnan(a.astype(np.float64)) | np.isnan(b.astype(np.float64)), np.inf, np.abs(ia - ib))


@given(
    st.sampled_from([np.float32, np.float16, ml_dtypes.bfloat16]),
    st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), min_size=0, max_size=40),
)
def test_ulp_distance_of_any_bit_patterns_is_the_float64_count(dtype, patterns):
    """Every bit pattern, NaNs, infinities and both zeros included, in any shape (0-d too)."""
    width = np.dtype(dtype).itemsize
    unsigned = {2: np.uint16, 4: np.uint32}[width]
    raw = np.array(patterns, np.uint64).reshape(-1, 2) % (2 ** (8 * width))
    a, b = (raw[:, i].astype(unsigned).view(dtype) for i in (0, 1))
    np.testing.assert_array_equal(ulp_distance(a, b), _ulp_in_float64(a, b))
    if a.size:
        assert ulp_distance(a[0].reshape(()), b[0].reshape(())).shape == ()
        np.testing.assert_array_equal(
            ulp_distance(a[0].reshape(()), b[0].reshape(())), _ulp_in_float64(a[:1], b[:1])[0]
        )


def _line(pattern: int, bits: int) -> int:
    """A bit pattern's place on the monotone line, in Python's exact integers."""
    magnitude = pattern & ((1 << (bits - 1)) - 1)
    return -magnitude if pattern >> (bits - 1) else magnitude


@given(st.lists(st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)), min_size=1, max_size=40))
def test_ulp_steps_of_float64_are_exact_for_any_bit_patterns(patterns):
    """64-bit patterns are far beyond float64's 2^53 exact integers: steps are counted in 64 unsigned bits
    (the float64 counts were rounded to multiples of up to 1024, so 1.0 and the next float64 were 0 apart)."""
    raw = np.array(patterns, np.uint64)
    a, b = raw[:, 0].view(np.float64), raw[:, 1].view(np.float64)
    exact = [abs(_line(int(p), 64) - _line(int(q), 64)) for p, q in patterns]
    assert ulp_steps(a, b).tolist() == exact
    counts = ulp_distance(a, b)
    nan = np.isnan(a) | np.isnan(b)
    assert np.all(counts[nan] == np.inf)
    np.testing.assert_array_equal(counts[~nan], np.array(exact, np.float64)[~nan])


def test_ulp_distance_counts_float64_steps_one_by_one():
    one = np.float64([1.0, -0.0, 3.0])
    assert ulp_distance(one, np.nextafter(one, 4.0)).tolist() == [1.0, 1.0, 1.0]
    assert ulp_distance(np.float64(1.0), np.float64(1.0 + 1e-14)) == 45
