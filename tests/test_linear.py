"""jaxlin.Linear and collapse: float64 truth within the rounding bound, nnx.Linear parity, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given
from hypothesis import strategies as st

from crosscheck.bounds import dot_bound
from jaxlin import Linear, collapse
from tests._helpers import jax_grads

# Eager JAX compiles once per shape: draw from small sets so compiled programs are reused.
leading_shapes = st.sampled_from(((), (3,), (2, 5), (2, 1, 3)))
sizes = st.sampled_from((1, 3, 8, 17, 48))


@given(lead=leading_shapes, n_in=sizes, n_out=sizes, seed=st.integers(0, 2**16))
def test_linear_matches_float64_truth_within_rounding_bound(lead, n_in, n_out, seed):
    layer = Linear(n_in, n_out, rngs=nnx.Rngs(seed), bias_init=nnx.initializers.normal(1.0))
    x = np.random.default_rng(seed).standard_normal(lead + (n_in,)).astype(np.float32)
    kernel, bias = np.asarray(layer.kernel[...]), np.asarray(layer.bias[...])
    truth = x.astype(np.float64) @ kernel.astype(np.float64) + bias
    y = np.asarray(layer(jnp.asarray(x)))
    assert y.shape == lead + (n_out,) and y.dtype == np.float32
    assert np.all(np.abs(y - truth) <= dot_bound(x, kernel, "float32", bias=bias))


def test_linear_is_bitwise_nnx_linear_with_the_same_parameters():
    ours, theirs = Linear(96, 40, rngs=nnx.Rngs(3)), nnx.Linear(96, 40, rngs=nnx.Rngs(3))
    x = jax.random.normal(jax.random.key(0), (7, 11, 96), jnp.float32)
    np.testing.assert_array_equal(ours.kernel[...], theirs.kernel[...])
    np.testing.assert_array_equal(ours(x), theirs(x))


def test_linear_without_bias_has_no_bias_parameter():
    layer = Linear(4, 3, use_bias=False, rngs=nnx.Rngs(0))
    assert layer.bias is None
    x = jnp.ones((2, 4), jnp.float32)
    np.testing.assert_array_equal(layer(x), x @ layer.kernel[...])


def test_linear_dtype_sets_the_computation_dtype():
    layer = Linear(8, 4, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    assert layer(jnp.ones((2, 8), jnp.float32)).dtype == jnp.bfloat16
    assert layer.kernel[...].dtype == jnp.float32


def test_linear_runs_under_jit_over_split_state():
    layer = Linear(5, 3, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(layer)
    forward = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))
    x = jnp.arange(10.0, dtype=jnp.float32).reshape(2, 5)
    np.testing.assert_allclose(forward(state, x), layer(x), rtol=1e-6)


def test_seed_linear_128_on_a_tensor_pooled_on_the_last_axis_says_which_axis_was_features():
    # Seed: x of shape (32, 128, 100) was pooled with .mean(-1) in mind, but Linear reads axis -1.
    layer = Linear(128, 10, rngs=nnx.Rngs(0))
    with pytest.raises(
        ValueError,
        match=r"Linear\(in_features=128, out_features=10\): expected input of "
        r"shape \(\.\.\., features=128\), got \(32, 128, 100\); features are taken from the "
        r"last axis \(axis -1\) and axis -1 has 100, not 128",
    ):
        layer(jnp.ones((32, 128, 100), jnp.float32))


def test_linear_errors_are_raised_at_trace_time_under_jit():
    layer = Linear(4, 2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"axis -1 has 5, not 4"):
        nnx.jit(lambda m, x: m(x))(layer, jnp.ones((3, 5), jnp.float32))


def test_linear_rejects_a_scalar_input():
    with pytest.raises(ValueError, match=r"got \(\); .*a scalar has no features axis"):
        Linear(1, 1, rngs=nnx.Rngs(0))(jnp.float32(1.0))


def test_linear_rejects_integer_input_with_type_error():
    with pytest.raises(
        TypeError,
        match=r"Linear\(in_features=3, out_features=2\): expected a floating-point "
        r"input, got dtype int32",
    ):
        Linear(3, 2, rngs=nnx.Rngs(0))(jnp.ones((2, 3), jnp.int32))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, None])
def test_linear_rejects_non_positive_sizes(bad):
    with pytest.raises(ValueError, match=r"Linear\(in_features=3, out_features=.*\): out_features must be a positive integer, got"):
        Linear(3, bad, rngs=nnx.Rngs(0))


@given(
    lead=leading_shapes,
    sizes=st.tuples(sizes, sizes, sizes),
    bias=st.tuples(st.booleans(), st.booleans()),
    seed=st.integers(0, 2**16),
)
def test_collapse_computes_second_of_first(lead, sizes, bias, seed):
    n_in, hidden, n_out = sizes
    normal = nnx.initializers.normal(1.0)
    first = Linear(
        n_in, hidden, use_bias=bias[0], bias_init=normal, param_dtype=jnp.float64, rngs=nnx.Rngs(seed)
    )
    second = Linear(
        hidden, n_out, use_bias=bias[1], bias_init=normal, param_dtype=jnp.float64, rngs=nnx.Rngs(seed + 1)
    )
    merged = collapse(first, second)
    assert (merged.in_features, merged.out_features) == (n_in, n_out)
    assert (merged.bias is not None) == any(bias)
    x = jnp.asarray(np.random.default_rng(seed).standard_normal(lead + (n_in,)))
    stacked = second(first(x))
    # Both sides round in float64; allow the bound of the two-step product with reduction hidden·in.
    w1, w2 = np.abs(first.kernel[...]), np.abs(second.kernel[...])
    scale = np.abs(x) @ w1 @ w2 + (np.abs(first.bias[...]) @ w2 if bias[0] else 0) + 1
    np.testing.assert_array_less(np.abs(merged(x) - stacked), 4 * (n_in + hidden + 2) * 2.0**-53 * scale)


def test_collapse_rejects_sizes_that_do_not_chain():
    first, second = Linear(4, 8, rngs=nnx.Rngs(0)), Linear(6, 2, rngs=nnx.Rngs(1))
    with pytest.raises(
        ValueError,
        match=r"collapse\(first=Linear\(in_features=4, out_features=8\), "
        r"second=Linear\(in_features=6, out_features=2\)\): the sizes don't chain; first's "
        r"out_features=8 must equal second's in_features=6",
    ):
        collapse(first, second)


def test_collapse_rejects_a_layer_that_is_not_linear():
    with pytest.raises(TypeError, match=r"collapse: second must be a jaxlin.Linear, got Dropout"):
        collapse(Linear(4, 8, rngs=nnx.Rngs(0)), nnx.Dropout(0.5))


def test_collapse_gradients_flow_through_the_merged_layer():
    merged = collapse(Linear(3, 5, rngs=nnx.Rngs(0)), Linear(5, 2, rngs=nnx.Rngs(1)))
    _, grads, input_grad = jax_grads(merged, jnp.ones((4, 3), jnp.float32))
    assert set(grads) == {"kernel", "bias"} and input_grad.shape == (4, 3)
