"""crosscheck.weights.files: permission errors, cast refusing complex values and overflow, NaN/inf
counted, and random bytes or truncated files raising WeightsError while the module stays bitwise as it was."""

from __future__ import annotations

import builtins
import os

import chex
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxlin
from crosscheck.weights import WeightsError, load_weights, save_weights
from crosscheck.weights.files import Spec, nonfinite_counts, read, require_fit, write
from tests._helpers import params_of


def _head() -> jaxlin.PooledHead:
    return jaxlin.PooledHead(5, 4, 3, rngs=nnx.Rngs(1))


def test_a_file_that_exists_but_cannot_be_read_says_permission_denied(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    save_weights(_head(), path)
    real_open = builtins.open

    def refusing(name, *args, **kwargs):  # what the OS says to a user without read permission
        if os.fspath(name) == os.fspath(path):
            raise PermissionError(13, "Permission denied", os.fspath(name))
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing)
    with pytest.raises(
        WeightsError, match=r"w.safetensors: permission denied \(the file exists but cannot be read\)"
    ):
        load_weights(_head(), path)


def test_cast_refuses_a_complex_tensor_for_a_real_parameter(tmp_path):
    path = tmp_path / "w.safetensors"
    write(path, {"bias": np.ones(3, np.complex64) * (1 + 2j)}, {})
    with pytest.raises(
        WeightsError,
        match="key 'bias' has dtype complex64, which cannot become float32 without losing its imaginary part",
    ):
        read(path, {"bias": Spec((3,), "float32")}, "Demo()", cast=True)


def test_cast_refuses_overflow_to_inf_unless_asked_for_it(tmp_path):
    path = tmp_path / "w.safetensors"
    write(path, {"bias": np.array([1.0, 1e300, -1e300], np.float64)}, {})
    want = {"bias": Spec((3,), "float32")}
    with pytest.raises(
        WeightsError,
        match=r"key 'bias' has 2 finite values \(up to 1e\+300\) that become inf in float32 for Demo\(\); pass cast='unsafe'",
    ):
        read(path, want, "Demo()", cast=True)
    assert read(path, want, "Demo()", cast="unsafe").arrays["bias"].tolist() == [1.0, np.inf, -np.inf]
    with pytest.raises(ValueError, match="cast must be one of False, True, 'unsafe', got 'yes'"):
        read(path, want, "Demo()", cast="yes")


def test_a_file_holding_nan_and_inf_loads_and_counts_them(tmp_path):
    path = tmp_path / "w.safetensors"
    write(path, {"weight": np.array([[np.nan, -np.inf]], np.float32), "bias": np.zeros(1, np.float32)}, {})
    loaded = read(path, {"weight": Spec((1, 2), "float32"), "bias": Spec((1,), "float32")}, "Demo()")
    assert loaded.nonfinite == {"weight": 2} and np.isnan(loaded.arrays["weight"][0, 0])
    assert nonfinite_counts(path) == {"weight": 2}


def test_require_fit_lists_every_problem_in_one_message():
    declared = {"w": Spec((2, 3), "float64"), "b": Spec((4,), "float32")}
    expected = {"w": Spec((3, 2), "float32"), "b": Spec((3,), "float32")}
    with pytest.raises(
        WeightsError,
        match=r"src: key 'w' has shape \(2, 3\), expected \(3, 2\); key 'b' has shape \(4,\), expected \(3,\); key 'w' has dtype float64, expected float32 for Demo\(\); pass cast=True",
    ):
        require_fit("src", declared, expected, "Demo()")


def test_a_write_into_a_directory_that_cannot_be_written_raises_and_leaves_nothing(tmp_path):
    with pytest.raises(OSError, match="cannot write weights to"):
        save_weights(_head(), tmp_path / "missing-dir" / "w.safetensors")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600))
def test_random_bytes_raise_weights_error_and_leave_the_module_bitwise_unchanged(tmp_path, data):
    path = tmp_path / "random.safetensors"
    path.write_bytes(data)
    module = _head()
    before = params_of(module)
    with pytest.raises(WeightsError):
        load_weights(module, path)
    chex.assert_trees_all_equal(params_of(module), before)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 10_000), dtype=st.sampled_from(["float32", "bfloat16", "float64"]))
def test_every_truncation_of_a_good_file_raises_weights_error_and_changes_nothing(tmp_path, cut, dtype):
    source = jaxlin.PooledHead(5, 4, 3, param_dtype=jnp.dtype(dtype), rngs=nnx.Rngs(2))
    path = tmp_path / "good.safetensors"
    save_weights(source, path)
    data = path.read_bytes()
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(data[: cut % len(data)])
    module = jaxlin.PooledHead(5, 4, 3, param_dtype=jnp.dtype(dtype), rngs=nnx.Rngs(3))
    before = params_of(module)
    with pytest.raises(WeightsError):
        load_weights(module, truncated)
    chex.assert_trees_all_equal(params_of(module), before)
