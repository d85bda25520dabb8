"""jaxlin.Linear and collapse: float64 truth within the rounding bound, nnx.Linear parity, errors."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given
from hypothesis import strategies as st

from crosscheck.numerics import dot_bound
from jaxlin import Linear, collapse
from tests._helpers import apply, jax_grads, numpy_init

# Eager JAX compiles once per shape: draw from small sets so compiled programs are reused.
leading_shapes = st.sampled_from(((), (3,), (2, 5), (2, 1, 3)))
sizes = st.sampled_from((1, 3, 8, 17, 48))


@given(
    lead=leading_shapes,
    n_in=sizes,
    n_out=sizes,
    impl=st.sampled_from(("auto", "matmul", "conv")),
    seed=st.integers(0, 2**16),
)
def test_linear_matches_float64_truth_within_rounding_bound(variant, lead, n_in, n_out, impl, seed):
    # N(0, 1) weights and bias drawn by NumPy: no truncated-normal compile per drawn shape.
    layer = Linear(
        n_in,
        n_out,
        impl=impl,
        kernel_init=numpy_init(seed),
        bias_init=numpy_init(seed + 1),
        rngs=nnx.Rngs(seed),
    )
    x = np.random.default_rng(seed).standard_normal(lead + (n_in,)).astype(np.float32)
    kernel, bias = np.asarray(layer.kernel[...]), np.asarray(layer.bias[...])
    truth = x.astype(np.float64) @ kernel.astype(np.float64) + bias
    y = apply(layer, jnp.asarray(x), transform=variant)
    chex.assert_shape(y, lead + (n_out,))
    chex.assert_type(y, np.float32)
    y = np.asarray(y)
    assert np.all(np.abs(y - truth) <= dot_bound(x, kernel, "float32", bias=bias))


@pytest.mark.parametrize(("impl", "shape"), [("auto", (7, 11, 96)), ("matmul", (4, 1024, 96))])
def test_linear_is_bitwise_nnx_linear_with_the_same_parameters(impl, shape):
    ours, theirs = Linear(96, 40, impl=impl, rngs=nnx.Rngs(3)), nnx.Linear(96, 40, rngs=nnx.Rngs(3))
    x = jax.random.normal(jax.random.key(0), shape, jnp.float32)
    np.testing.assert_array_equal(ours.kernel[...], theirs.kernel[...])
    np.testing.assert_array_equal(ours(x), theirs(x))


@pytest.mark.parametrize(
    ("shape", "lowering"),
    [((7, 11, 96), "matmul"), ((8192, 96), "matmul"), ((1, 8192, 96), "matmul"), ((4, 1024, 96), "conv")],
)
def test_auto_takes_the_measured_lowering_and_runs_it_bitwise(variant, shape, lowering):
    # On CPU a batched input of >= 4096 rows runs as a 1x1 convolution (measured faster); the rest as
    # nnx.Linear's dot. Either way the bits are those of the explicit lowering, gradients included.
    if jax.default_backend() != "cpu":
        lowering = "matmul"
    auto = Linear(96, 40, rngs=nnx.Rngs(3))
    explicit = Linear(96, 40, impl=lowering, rngs=nnx.Rngs(3))
    x = jax.random.normal(jax.random.key(0), shape, jnp.float32)
    assert auto.formulation(x.shape) == lowering
    chex.assert_trees_all_equal(
        jax_grads(auto, x, transform=variant), jax_grads(explicit, x, transform=variant)
    )


def test_the_conv_lowering_on_tall_input_is_within_the_rounding_bound_of_float64_truth():
    layer = Linear(64, 32, impl="conv", rngs=nnx.Rngs(1), bias_init=nnx.initializers.normal(1.0))
    x = np.random.default_rng(0).standard_normal((4, 1024, 64)).astype(np.float32)
    kernel, bias = np.asarray(layer.kernel[...]), np.asarray(layer.bias[...])
    truth = x.astype(np.float64) @ kernel.astype(np.float64) + bias
    assert np.all(
        np.abs(np.asarray(layer(jnp.asarray(x))) - truth) <= dot_bound(x, kernel, "float32", bias=bias)
    )


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


def test_linear_errors_are_raised_at_trace_time_under_jit():
    layer = Linear(4, 2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"axis -1 has 5, not 4"):
        nnx.jit(lambda m, x: m(x))(layer, jnp.ones((3, 5), jnp.float32))


@pytest.mark.slow  # deselect with -m "not slow" (README)
@given(
    lead=leading_shapes,
    sizes=st.tuples(sizes, sizes, sizes),
    bias=st.tuples(st.booleans(), st.booleans()),
    seed=st.integers(0, 2**16),
)
def test_collapse_computes_second_of_first(variant, lead, sizes, bias, seed):
    n_in, hidden, n_out = sizes
    # N(0, 1) weights and biases drawn by NumPy: no truncated-normal compile per drawn shape.
    first, second = (
        Linear(
            n,
            m,
            use_bias=b,
            kernel_init=numpy_init(s),
            bias_init=numpy_init(s + 2),
            param_dtype=jnp.float64,
            rngs=nnx.Rngs(s),
        )
        for n, m, b, s in ((n_in, hidden, bias[0], seed), (hidden, n_out, bias[1], seed + 1))
    )
    merged = collapse(first, second)
    assert (merged.in_features, merged.out_features) == (n_in, n_out)
    assert (merged.bias is not None) == any(bias)
    x = jnp.asarray(np.random.default_rng(seed).standard_normal(lead + (n_in,)))
    stacked = variant(lambda a, b, v: b(a(v)))(first, second, x)
    # Both sides round in float64; allow the bound of the two-step product with reduction hidden·in.
    w1, w2 = np.abs(first.kernel[...]), np.abs(second.kernel[...])
    scale = np.abs(x) @ w1 @ w2 + (np.abs(first.bias[...]) @ w2 if bias[0] else 0) + 1
    np.testing.assert_array_less(
        np.abs(apply(merged, x, transform=variant) - stacked), 4 * (n_in + hidden + 2) * 2.0**-53 * scale
    )


def test_collapse_gradients_flow_through_the_merged_layer():
    merged = collapse(Linear(3, 5, rngs=nnx.Rngs(0)), Linear(5, 2, rngs=nnx.Rngs(1)))
    _, grads, input_grad = jax_grads(merged, jnp.ones((4, 3), jnp.float32))
    assert set(grads) == {"kernel", "bias"} and input_grad.shape == (4, 3)
