"""``jax_array``: what ``jnp.asarray`` gives (dtype, bits, weak type), in memory of its own, with no
program compiled for the conversion."""

import logging

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from crosscheck.weights.arrays import jax_array

DTYPES = (np.float64, np.float32, np.float16, ml_dtypes.bfloat16, np.int64, np.int32, np.bool_)


@given(
    shape=st.lists(st.integers(0, 5), max_size=3).map(tuple),
    dtype=st.sampled_from(DTYPES),
    transposed=st.booleans(),
)
def test_a_numpy_array_becomes_what_jnp_asarray_makes_of_it_without_sharing_memory(shape, dtype, transposed):
    source = np.asarray(np.random.default_rng(0).standard_normal(shape) * 3).astype(dtype)
    if transposed:
        source = source.T  # not C-contiguous
    ours, theirs = jax_array(source), jnp.asarray(source)
    assert (ours.dtype, ours.shape, ours.weak_type) == (theirs.dtype, theirs.shape, theirs.weak_type)
    assert ours.sharding == theirs.sharding
    np.testing.assert_array_equal(_bytes(ours), _bytes(theirs))
    if source.size:
        before = _bytes(ours).copy()
        source[(0,) * source.ndim] = not source[(0,) * source.ndim]  # another value, whatever the dtype
        np.testing.assert_array_equal(_bytes(ours), before)


def _bytes(array) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(array)).reshape(-1).view(np.uint8)


def test_anything_else_goes_through_jnp_asarray():
    for value in (2.5, 3, [1.0, 2.0], jnp.ones(3)):
        ours, theirs = jax_array(value), jnp.asarray(value)
        assert (ours.dtype, ours.weak_type) == (theirs.dtype, theirs.weak_type)
        np.testing.assert_array_equal(ours, theirs)


def _compiled_while(convert, caplog) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="jax"), jax.log_compiles():
        convert(np.ones((13, 29, 3)))  # a shape no other test uses
    return [r.getMessage() for r in caplog.records if "Compiling" in r.getMessage()]


def test_no_program_is_compiled_for_the_conversion(caplog):
    assert _compiled_while(jax_array, caplog) == []
    assert _compiled_while(jnp.asarray, caplog) != []  # what it saves: a program per new shape


def test_outside_64_bit_mode_float64_becomes_float32_as_jnp_asarray_makes_it():
    source = np.random.default_rng(1).standard_normal((4, 3))
    with jax.enable_x64(False):
        ours, theirs = jax_array(source), jnp.asarray(source)
    assert ours.dtype == theirs.dtype == jnp.float32
    np.testing.assert_array_equal(_bytes(ours), _bytes(theirs))


def test_torch_views_a_numpy_array_in_place_or_says_it_cannot():
    from crosscheck.weights.arrays import torch_view_of_numpy

    kernel = np.arange(12, dtype=np.float32).reshape(3, 4)
    viewed = torch_view_of_numpy(kernel.T)
    assert tuple(viewed.shape) == (4, 3) and viewed.data_ptr() == kernel.ctypes.data  # no copy
    read_only = kernel.copy()
    read_only.flags.writeable = False  # as a JAX buffer's view is
    assert torch_view_of_numpy(read_only).data_ptr() == read_only.ctypes.data
    for cannot in (
        kernel[::-1],
        kernel.astype(">f4"),
        kernel.astype(ml_dtypes.bfloat16),
        kernel.astype(np.longdouble),
    ):
        assert torch_view_of_numpy(cannot) is None
