"""``cast=True`` never changes a value silently: NaN, out-of-range values and fractions into integers,
overflow to inf and underflow to 0 are refused, naming the key; ``cast="unsafe"`` converts as NumPy
does. The copies take the same ``cast`` (converting by default)."""

from __future__ import annotations

import re

import ml_dtypes
import numpy as np
import pytest
import safetensors.torch
import torch
from flax import nnx
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import jaxlin
from crosscheck.weights import WeightsError, copy_jax_to_torch, copy_torch_to_jax, load_weights
from crosscheck.weights.fit import converted
from tests.crosscheck.weights._snapshots import snapshot


class Counter(torch.nn.Module):
    """A module whose state is one integer buffer, as a step counter or token ids are."""

    def __init__(self, dtype=torch.int64, size=3):
        super().__init__()
        self.register_buffer("count", torch.full((size,), 7, dtype=dtype))


def _file(tmp_path, values, dtype=np.float64):
    path = tmp_path / "w.safetensors"
    safetensors.torch.save_file({"count": torch.from_numpy(np.array(values, dtype))}, path)
    return path


@pytest.mark.parametrize(
    "values, dtype, pattern",
    [
        (
            [np.nan, 1e30, 5],
            torch.int64,
            "key 'count' has 1 NaN or infinite values, which int64 cannot hold, 1 values outside int64's "
            "range [-9223372036854775808, 9223372036854775807] (e.g. 1e+30) for tests.Counter",
        ),
        ([-1.0, 2.0, 3.0], torch.uint8, "key 'count' has 1 values outside uint8's range [0, 255] (e.g. -1)"),
        (
            [2.7, 1.0, 0.0],
            torch.int64,
            "1 values that are not whole numbers (e.g. 2.7), which int64 would truncate",
        ),
        ([2.0**63, 0, 0], torch.int64, "1 values outside int64's range [-9223372036854775808, "),
        (
            [0.5, 1.0, 0.0],
            torch.bool,
            "1 values that are not whole numbers (e.g. 0.5), which bool would truncate",
        ),
        ([2.0, 1.0, 0.0], torch.bool, "1 values outside bool's range [0, 1] (e.g. 2)"),
    ],
)
def test_cast_refuses_values_an_integer_dtype_cannot_hold_and_changes_nothing(
    tmp_path, values, dtype, pattern
):
    module = Counter(dtype)
    before = snapshot(module)
    with pytest.raises(WeightsError, match=re.escape(pattern) + ".*; pass cast='unsafe' to accept that"):
        load_weights(module, _file(tmp_path, values), cast=True)
    assert snapshot(module) == before


def test_cast_refuses_an_integer_that_wraps_around(tmp_path):
    with pytest.raises(WeightsError, match=re.escape("1 values outside uint8's range [0, 255] (e.g. 300)")):
        load_weights(Counter(torch.uint8), _file(tmp_path, [300, 1, 2], np.int64), cast=True)
    with pytest.raises(
        WeightsError, match=re.escape("1 values outside uint64's range [0, 18446744073709551615] (e.g. -1)")
    ):
        load_weights(Counter(torch.uint64), _file(tmp_path, [-1, 1, 2], np.int64), cast=True)


def test_cast_refuses_underflow_to_zero(tmp_path):
    module = Counter(torch.float16)
    before = snapshot(module)
    with pytest.raises(
        WeightsError,
        match=re.escape("key 'count' has 1 nonzero values (e.g. 1e-10) that become 0 in float16"),
    ):
        load_weights(module, _file(tmp_path, [1e-10, 1.0, 0.0]), cast=True)
    assert snapshot(module) == before


def test_cast_unsafe_converts_as_numpy_does(tmp_path):
    module = Counter(torch.float16)
    load_weights(module, _file(tmp_path, [1e-10, 1e10, 1.0]), cast="unsafe")
    assert module.count.tolist() == [0.0, float("inf"), 1.0]
    ints = Counter(torch.int64)
    load_weights(ints, _file(tmp_path, [-2.7, 2.7, 3.0]), cast="unsafe")
    assert ints.count.tolist() == [-2, 2, 3]


def test_cast_keeps_every_value_an_integer_dtype_holds(tmp_path):
    module = Counter(torch.int64)
    load_weights(module, _file(tmp_path, [-(2.0**63), 2.0**62, -0.0]), cast=True)
    assert module.count.tolist() == [-(2**63), 2**62, 0]


FLOATS = ["float64", "float32", "float16", "bfloat16"]
INTEGERS = ["int64", "int32", "int8", "uint8", "uint64", "bool"]


@given(
    values=hnp.arrays(np.float64, st.integers(1, 6), elements=st.floats(allow_subnormal=True, width=64)),
    dtype=st.sampled_from(FLOATS + INTEGERS),
)
def test_cast_true_converts_exactly_or_refuses(values, dtype):
    """A property over every float64 value: a converted value is the nearest value of the new dtype
    (for integers: the same number), never inf from a finite value, never 0 from a nonzero one."""
    try:
        result = converted("src", "w", values, dtype, "Demo()", cast=True)
    except WeightsError as error:
        assert str(error).startswith("src: key 'w' has ") and "pass cast='unsafe'" in str(error)
        return
    got = result.astype(np.float64)
    if result.dtype.kind in "iub":
        assert np.array_equal(got, values)
    else:
        assert np.array_equal(np.isfinite(got), np.isfinite(values))
        assert np.array_equal(got == 0, values == 0)
        with np.errstate(over="ignore"):
            assert np.array_equal(
                got,
                values.astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype).astype(np.float64),
                equal_nan=True,
            )


# ---------------------------------------------------------------- the copies take cast= too


def test_the_copies_overflow_hint_names_an_option_they_take():
    theirs = torch.nn.Linear(2, 2, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight[0, 0] = 1e300
    ours = jaxlin.Linear(2, 2, rngs=nnx.Rngs(0))
    with pytest.raises(WeightsError, match="become inf in float32 for jaxlin.Linear.*; pass cast='unsafe'"):
        copy_torch_to_jax(theirs, ours)
    copy_torch_to_jax(theirs, ours, cast="unsafe")
    assert np.isinf(np.asarray(ours.kernel[...])[0, 0])


def test_copies_with_cast_false_require_equal_dtypes_and_change_nothing():
    theirs, ours = torch.nn.Linear(2, 2, dtype=torch.float64), jaxlin.Linear(2, 2, rngs=nnx.Rngs(0))
    before = snapshot(ours)
    with pytest.raises(
        WeightsError, match="key 'weight' has dtype float64, expected float32.*pass cast=True"
    ):
        copy_torch_to_jax(theirs, ours, cast=False)
    assert snapshot(ours) == before
    back = torch.nn.Linear(2, 2, dtype=torch.float64)
    before = snapshot(back)
    with pytest.raises(
        WeightsError, match="key 'weight' has dtype float32, expected float64.*pass cast=True"
    ):
        copy_jax_to_torch(ours, back, cast=False)
    assert snapshot(back) == before


def test_copy_jax_to_torch_refuses_underflow_unless_unsafe():
    ours = jaxlin.Linear(2, 2, rngs=nnx.Rngs(0))
    ours.kernel[...] = ours.kernel[...].at[0, 0].set(1e-30)
    theirs = torch.nn.Linear(2, 2, dtype=torch.float16)
    before = snapshot(theirs)
    with pytest.raises(
        WeightsError,
        match=re.escape("key 'weight' has 1 nonzero values (e.g. 1e-30) that become 0 in float16"),
    ):
        copy_jax_to_torch(ours, theirs)
    assert snapshot(theirs) == before
    copy_jax_to_torch(ours, theirs, cast="unsafe")
    assert theirs.weight[0, 0].item() == 0.0
