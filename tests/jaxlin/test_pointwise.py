"""jaxlin.PointwiseConv: impl "matmul" = impl "conv" = jaxlin.Linear on kernel[0], nnx.Conv parity, the old
names, zero-length sequences.

Sizes are drawn from small fixed sets: eager JAX compiles every new shape, so a few shapes that
recur keep the suite fast while still covering no/one/several leading axes and length 1.
"""

import chex
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxlin.pointwise
from crosscheck.numerics import dot_bound
from jaxlin import Linear, PointwiseConv
from tests._helpers import CHEAP, jax_grads, linear_holding, loss_weights, numpy_init, params_of

leading_shapes = st.sampled_from(((), (2,), (3, 1), (2, 2, 3)))
lengths = st.sampled_from((1, 3, 8))
feature_pairs = st.sampled_from(((1, 1), (3, 8), (17, 5)))


def make(impl, n_in, n_out, dtype, use_bias=True, seed=0):
    return PointwiseConv(
        n_in,
        n_out,
        impl=impl,
        use_bias=use_bias,
        param_dtype=dtype,
        kernel_init=numpy_init(seed),
        bias_init=numpy_init(seed + 1),
        rngs=nnx.Rngs(0),
    )


def linear_like(conv: PointwiseConv) -> Linear:
    """A jaxlin.Linear holding ``conv.kernel[0]`` and ``conv.bias``."""
    return linear_holding(conv.kernel[0], conv.bias[...] if conv.use_bias else None, conv.param_dtype)


def gradient_bounds(x, kernel, cotangent, dtype, use_bias):
    """Rounding bounds (computed in float64) for the gradients of ``sum((x @ kernel + b) * cotangent)``.

    input: ``cotangent @ kernel.T`` (K = out); kernel: ``rows.T @ cotangent`` (K = rows = all
    positions); bias: the sum of ``cotangent`` over rows (K = rows).
    """
    rows_x = x.reshape(-1, x.shape[-1])
    rows_ct = cotangent.reshape(-1, cotangent.shape[-1])
    bounds = {
        "input": dot_bound(cotangent, kernel.T, dtype),
        "kernel": dot_bound(rows_x.T, rows_ct, dtype),
    }
    if use_bias:
        bounds["bias"] = dot_bound(np.ones((1, rows_ct.shape[0])), rows_ct, dtype)[0]
    return bounds


def assert_within(actual, expected, bound, what):
    excess = np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64)) - bound
    assert np.all(excess <= 0), f"{what}: exceeds the bound by up to {excess.max():.3e}"


@pytest.mark.slow  # deselect with -m "not slow" (README)
@settings(deadline=None)
@given(
    dtype=st.sampled_from((jnp.float32, jnp.float64)),
    lead=leading_shapes,
    length=lengths,
    features=feature_pairs,
    use_bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_matmul_conv_and_linear_are_the_same_function_with_the_same_gradients(
    variant, dtype, lead, length, features, use_bias, seed
):
    n_in, n_out = features
    dot = make("matmul", n_in, n_out, dtype, use_bias, seed)
    conv = make("conv", n_in, n_out, dtype, use_bias, seed)
    dense = linear_like(dot)
    x = jnp.asarray(np.random.default_rng(seed).standard_normal(lead + (length, n_in)), dtype)

    y_dot, g_dot, gx_dot = jax_grads(dot, x, transform=variant)
    y_conv, g_conv, gx_conv = jax_grads(conv, x, transform=variant)
    y_dense, g_dense, gx_dense = jax_grads(dense, x, transform=variant)
    assert y_dot.shape == y_conv.shape == lead + (length, n_out)
    assert y_dot.dtype == y_conv.dtype == np.dtype(dtype)
    assert set(g_dot) == set(g_conv) == ({"kernel", "bias"} if use_bias else {"kernel"})
    assert g_dot["kernel"].shape == g_conv["kernel"].shape == (1, n_in, n_out)

    # "matmul" runs the same dot_general as Linear on kernel[0]: bitwise equal, gradients included.
    np.testing.assert_array_equal(y_dot, y_dense)
    np.testing.assert_array_equal(gx_dot, gx_dense)
    np.testing.assert_array_equal(g_dot["kernel"][0], g_dense["kernel"])
    if use_bias:
        np.testing.assert_array_equal(g_dot["bias"], g_dense["bias"])

    # "conv" goes through a convolution kernel: the same function, rounded in another order.
    # Both are within the bound of the exact result, so they are within twice the bound of each other.
    x64 = np.asarray(x, np.float64)
    kernel = params_of(dot)["kernel"][0].astype(np.float64)
    bias = params_of(dot)["bias"].astype(np.float64) if use_bias else None
    name = np.dtype(dtype).name
    assert_within(y_conv, y_dot, 2 * dot_bound(x64, kernel, name, bias=bias), "output")
    cotangent = np.asarray(jnp.asarray(loss_weights(y_dot.shape), dtype), np.float64)
    bounds = gradient_bounds(x64, kernel, cotangent, name, use_bias)
    assert_within(gx_conv, gx_dot, 2 * bounds["input"], "input gradient")
    assert_within(g_conv["kernel"][0], g_dot["kernel"][0], 2 * bounds["kernel"], "kernel gradient")
    if use_bias:
        assert_within(g_conv["bias"], g_dot["bias"], 2 * bounds["bias"], "bias gradient")


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
def test_matmul_and_conv_match_float64_truth_within_rounding_bound(dtype):
    # NumPy's float64 product is the reference; it carries its own float64 rounding, so the
    # allowance is the module's bound plus the float64 bound of the reference.
    x = np.random.default_rng(1).standard_normal((2, 8, 17))
    name = np.dtype(dtype).name
    for impl in ("matmul", "conv"):
        layer = make(impl, 17, 5, dtype, seed=3)
        kernel = params_of(layer)["kernel"][0].astype(np.float64)
        bias = params_of(layer)["bias"].astype(np.float64)
        x_rounded = np.asarray(jnp.asarray(x, dtype), np.float64)
        truth = x_rounded @ kernel + bias
        bound = dot_bound(x_rounded, kernel, name, bias=bias) + dot_bound(
            x_rounded, kernel, "float64", bias=bias
        )
        assert_within(layer(jnp.asarray(x, dtype)), truth, bound, impl)


def test_kernel_is_stored_like_nnx_conv_and_initialized_identically():
    ours, theirs = PointwiseConv(17, 5, rngs=nnx.Rngs(4)), nnx.Conv(17, 5, kernel_size=(1,), rngs=nnx.Rngs(4))
    assert ours.kernel.shape == theirs.kernel.shape == (1, 17, 5)
    assert ours.bias.shape == theirs.bias.shape == (5,)
    np.testing.assert_array_equal(ours.kernel[...], theirs.kernel[...])
    np.testing.assert_array_equal(ours.bias[...], theirs.bias[...])


@pytest.mark.parametrize("lead", [(), (2,), (2, 2, 3)])
def test_conv_impl_is_bitwise_nnx_conv_with_the_same_kernel_and_bias(lead):
    ours = make("conv", 17, 5, jnp.float32, seed=5)
    theirs = nnx.Conv(17, 5, kernel_size=(1,), rngs=nnx.Rngs(0))
    theirs.kernel[...] = ours.kernel[...]
    theirs.bias[...] = ours.bias[...]
    x = jnp.asarray(np.random.default_rng(6).standard_normal(lead + (8, 17)), jnp.float32)
    np.testing.assert_array_equal(ours(x), theirs(x))


def test_matmul_impl_is_within_the_bound_of_nnx_conv():
    # Not bitwise: nnx.Conv runs a convolution, "matmul" a GEMM; the rounding order differs.
    ours = make("matmul", 17, 5, jnp.float32, seed=5)
    theirs = nnx.Conv(17, 5, kernel_size=(1,), rngs=nnx.Rngs(0))
    theirs.kernel[...] = ours.kernel[...]
    theirs.bias[...] = ours.bias[...]
    x = np.random.default_rng(6).standard_normal((2, 8, 17)).astype(np.float32)
    bound = dot_bound(x, ours.kernel[0], "float32", bias=ours.bias[...])
    assert_within(ours(jnp.asarray(x)), theirs(jnp.asarray(x)), 2 * bound, "nnx.Conv")


def test_default_impl_is_auto_and_no_bias_means_no_bias_parameter():
    layer = PointwiseConv(3, 2, use_bias=False, **CHEAP, rngs=nnx.Rngs(0))
    assert layer.impl == "auto" and layer.bias is None
    x = jnp.ones((4, 3), jnp.float32)
    np.testing.assert_array_equal(layer(x), x @ layer.kernel[0])


@pytest.mark.parametrize("picked", ["matmul", "conv"])
def test_auto_runs_the_path_the_rule_picks_bitwise(monkeypatch, variant, picked):
    monkeypatch.setattr(jaxlin.pointwise, "fastest_pointwise", lambda *sizes: picked)
    auto = make("auto", 17, 5, jnp.float32, seed=4)
    explicit = make(picked, 17, 5, jnp.float32, seed=4)
    x = jnp.asarray(np.random.default_rng(3).standard_normal((2, 8, 17)), jnp.float32)
    assert auto.formulation(x.shape) == picked
    y_auto, g_auto, gx_auto = jax_grads(auto, x, transform=variant)
    y, g, gx = jax_grads(explicit, x, transform=variant)
    chex.assert_trees_all_equal((y_auto, g_auto, gx_auto), (y, g, gx))


# ---------------------------------------------------------------- errors


def test_errors_are_raised_at_trace_time_under_jit():
    layer = PointwiseConv(4, 2, **CHEAP, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"axis -1 has 5, not 4"):
        nnx.jit(lambda m, x: m(x))(layer, jnp.ones((3, 5), jnp.float32))


def test_gradients_are_finite_under_jit():
    layer = PointwiseConv(3, 2, impl="conv", **CHEAP, rngs=nnx.Rngs(0))
    grads = nnx.jit(nnx.grad(lambda m, x: jnp.sum(m(x) ** 2)))(layer, jnp.ones((2, 4, 3), jnp.float32))
    chex.assert_tree_all_finite(grads)


@pytest.mark.parametrize("old, new", [("dot", "matmul"), ("linear", "matmul")])
def test_the_old_names_of_the_matmul_path_are_accepted(old, new):
    assert PointwiseConv(3, 2, impl=old, **CHEAP, rngs=nnx.Rngs(0)).impl == new


@pytest.mark.parametrize("impl", ["matmul", "conv"])
@pytest.mark.parametrize("lead", [(2,), (0,), ()])
def test_a_zero_length_sequence_gives_an_empty_output_on_both_impls(impl, lead):
    layer = PointwiseConv(3, 4, impl=impl, **CHEAP, rngs=nnx.Rngs(0))
    y = layer(jnp.ones((*lead, 0, 3), jnp.float32))
    chex.assert_shape(y, (*lead, 0, 4))
    chex.assert_type(y, jnp.float32)
