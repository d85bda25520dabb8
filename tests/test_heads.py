"""jaxlin.PerHeadLinear: einsum = vmap = loop = jaxlin.Linear head by head, head_axis, init, errors.

Sizes are drawn from small fixed sets: eager JAX compiles every new shape, so a few shapes that
recur keep the suite fast while still covering no/one/several leading axes and a single head.
"""

import re

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from crosscheck.bounds import dot_bound
from jaxlin import PerHeadLinear
from tests._helpers import CHEAP, jax_grads, linear_holding, loss_weights, numpy_init

IMPLS = ("einsum", "vmap", "loop")
leading_shapes = st.sampled_from(((), (2,), (3, 1), (2, 2, 3)))
head_sizes = st.sampled_from(((1, 3, 2), (4, 8, 5)))  # (num_heads, in_features, out_features)




def make(impl, sizes, dtype=jnp.float64, use_bias=True, seed=0, head_axis=-2):
    return PerHeadLinear(
        *sizes,
        impl=impl,
        head_axis=head_axis,
        use_bias=use_bias,
        param_dtype=dtype,
        kernel_init=numpy_init(seed),
        bias_init=numpy_init(seed + 1),
        rngs=nnx.Rngs(0),
    )


def linear_head_by_head(layer: PerHeadLinear, x) -> np.ndarray:
    """One jaxlin.Linear loaded with ``kernel[h]``/``bias[h]`` applied to ``x[..., h, :]``, stacked."""
    outputs = []
    for head in range(layer.num_heads):
        bias = layer.bias[head] if layer.use_bias else None
        dense = linear_holding(layer.kernel[head], bias, layer.param_dtype)
        outputs.append(np.asarray(dense(x[..., head, :])))
    return np.stack(outputs, axis=-2)


def per_head_bounds(x, kernel, bias, cotangent, dtype):
    """Rounding bounds (float64) per head for the output and the gradients of ``sum(y * cotangent)``.

    output: K = in (+1 with a bias); input gradient ``ct_h @ kernel[h].T``: K = out; kernel and
    bias gradients reduce over the rows (all leading positions): K = rows.
    """
    heads = kernel.shape[0]
    rows_x = x.reshape(-1, heads, x.shape[-1])
    rows_ct = cotangent.reshape(-1, heads, cotangent.shape[-1])
    ones = np.ones((1, rows_ct.shape[0]))
    per_head = [
        {
            "output": dot_bound(x[..., h, :], kernel[h], dtype, bias=None if bias is None else bias[h]),
            "input": dot_bound(cotangent[..., h, :], kernel[h].T, dtype),
            "kernel": dot_bound(rows_x[:, h].T, rows_ct[:, h], dtype),
            "bias": dot_bound(ones, rows_ct[:, h], dtype)[0],
        }
        for h in range(heads)
    ]
    stack_axis = {"output": -2, "input": -2, "kernel": 0, "bias": 0}
    return {key: np.stack([b[key] for b in per_head], axis=axis) for key, axis in stack_axis.items()}


def assert_within(actual, expected, bound, what):
    excess = np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64)) - bound
    assert np.all(excess <= 0), f"{what}: exceeds the bound by up to {excess.max():.3e}"


def reference_bounds(layer: PerHeadLinear, x, cotangent=None):
    """``per_head_bounds`` for ``layer``'s parameters in its parameter dtype."""
    kernel = np.asarray(layer.kernel[...], np.float64)
    bias = np.asarray(layer.bias[...], np.float64) if layer.use_bias else None
    if cotangent is None:
        cotangent = np.zeros(x.shape[:-1] + (layer.out_features,))
    name = np.dtype(layer.param_dtype).name
    return per_head_bounds(np.asarray(x, np.float64), kernel, bias, cotangent, name)


@settings(deadline=None)
@given(
    dtype=st.sampled_from((jnp.float32, jnp.float64)),
    lead=leading_shapes,
    sizes=head_sizes,
    use_bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_impls_agree_with_each_other_and_with_linear_head_by_head(dtype, lead, sizes, use_bias, seed):
    num_heads, n_in, n_out = sizes
    layers = {impl: make(impl, sizes, dtype, use_bias, seed) for impl in IMPLS}
    x = jnp.asarray(np.random.default_rng(seed).standard_normal(lead + (num_heads, n_in)), dtype)
    expected = linear_head_by_head(layers["loop"], x)
    assert expected.shape == lead + (num_heads, n_out) and expected.dtype == np.dtype(dtype)
    outputs = {impl: np.asarray(layer(x)) for impl, layer in layers.items()}
    # "loop" runs Linear's own dot_general on kernel[h]: bitwise Linear head by head.
    np.testing.assert_array_equal(outputs["loop"], expected)
    # Each side is within the bound of the exact result, so within twice the bound of each other.
    bound = reference_bounds(layers["loop"], x)["output"]
    for impl in ("einsum", "vmap"):
        assert outputs[impl].shape == expected.shape and outputs[impl].dtype == expected.dtype, impl
        assert_within(outputs[impl], expected, 2 * bound, impl)


# Gradients cost a compile per shape and impl: a few fixed configurations, the shapes above.
@pytest.mark.parametrize(
    "dtype, lead, use_bias",
    [(jnp.float64, (2, 2, 3), True), (jnp.float32, (2, 2, 3), True), (jnp.float32, (), False)],
    ids=["float64", "float32", "float32-unbatched-no-bias"],
)
def test_gradients_agree_across_impls(dtype, lead, use_bias):
    sizes = (4, 8, 5)
    layers = {impl: make(impl, sizes, dtype, use_bias, seed=11) for impl in IMPLS}
    x = jnp.asarray(np.random.default_rng(12).standard_normal(lead + sizes[:2]), dtype)
    results = {impl: jax_grads(layer, x) for impl, layer in layers.items()}
    y_loop, g_loop, gx_loop = results["loop"]
    cotangent = np.asarray(jnp.asarray(loss_weights(y_loop.shape), dtype), np.float64)
    bounds = reference_bounds(layers["loop"], x, cotangent)
    assert set(g_loop) == ({"kernel", "bias"} if use_bias else {"kernel"})
    for impl in ("einsum", "vmap"):
        y, g, gx = results[impl]
        assert set(g) == set(g_loop) and gx.shape == x.shape, impl
        assert_within(y, y_loop, 2 * bounds["output"], f"{impl} output")
        assert_within(gx, gx_loop, 2 * bounds["input"], f"{impl} input gradient")
        assert_within(g["kernel"], g_loop["kernel"], 2 * bounds["kernel"], f"{impl} kernel gradient")
        if use_bias:
            assert_within(g["bias"], g_loop["bias"], 2 * bounds["bias"], f"{impl} bias gradient")


@pytest.mark.parametrize("impl", IMPLS)
def test_each_impl_matches_float64_truth_within_rounding_bound_in_float32(impl):
    layer = make(impl, (4, 8, 5), jnp.float32, seed=3)
    x = jnp.asarray(np.random.default_rng(2).standard_normal((2, 2, 3, 4, 8)), jnp.float32)
    kernel = np.asarray(layer.kernel[...], np.float64)
    truth = np.einsum("...hi,hio->...ho", np.asarray(x, np.float64), kernel) + np.asarray(layer.bias[...])
    assert_within(layer(x), truth, reference_bounds(layer, x)["output"], impl)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("head_axis", [1, -3])
@pytest.mark.parametrize("use_bias", [True, False])
def test_head_axis_on_a_4d_input_gives_the_moved_axis_result(impl, head_axis, use_bias):
    moved = make(impl, (3, 5, 4), use_bias=use_bias, head_axis=head_axis)
    default = make(impl, (3, 5, 4), use_bias=use_bias)
    x = jnp.asarray(np.random.default_rng(1).standard_normal((2, 3, 7, 5)))  # (batch, heads, seq, in)
    y = moved(x)
    assert y.shape == (2, 3, 7, 4)
    np.testing.assert_array_equal(y, jnp.moveaxis(default(jnp.moveaxis(x, 1, -2)), -2, 1))
    truth = np.einsum("bhsi,hio->bhso", np.asarray(x), np.asarray(moved.kernel[...]))
    if use_bias:
        truth = truth + np.asarray(moved.bias[...])[None, :, None, :]
    np.testing.assert_allclose(y, truth, rtol=1e-13, atol=1e-13)


def test_head_axis_zero_on_a_3d_input():
    layer = make("einsum", (3, 5, 4), head_axis=0)
    x = jnp.asarray(np.random.default_rng(1).standard_normal((3, 7, 5)))  # (heads, seq, in)
    y = layer(x)
    assert y.shape == (3, 7, 4)
    expected = np.moveaxis(linear_head_by_head(layer, jnp.moveaxis(x, 0, -2)), -2, 0)
    np.testing.assert_allclose(y, expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("impl", IMPLS)
def test_no_bias_has_no_bias_parameter_and_is_x_times_kernel_per_head(impl):
    layer = make(impl, (4, 8, 5), use_bias=False)
    assert layer.bias is None
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 4, 8)))
    expected = np.einsum("bhi,hio->bho", np.asarray(x), np.asarray(layer.kernel[...]))
    np.testing.assert_allclose(layer(x), expected, rtol=1e-13, atol=1e-13)


def test_parameters_have_per_head_shapes():
    layer = PerHeadLinear(4, 8, 5, **CHEAP, rngs=nnx.Rngs(0))
    assert layer.kernel.shape == (4, 8, 5) and layer.bias.shape == (4, 5)
    assert layer.impl == "einsum" and layer.head_axis == -2


def test_default_kernel_init_uses_the_per_head_fan_in():
    num_heads, n_in, n_out = 4, 64, 32
    layer = PerHeadLinear(num_heads, n_in, n_out, rngs=nnx.Rngs(0))
    kernel = np.asarray(layer.kernel[...], np.float64)
    std = kernel.std()
    # lecun_normal draws a truncated normal rescaled to variance 1/fan_in; fan_in is in_features.
    assert abs(std * np.sqrt(n_in) - 1) < 0.05, std
    assert abs(std * np.sqrt(num_heads * n_in) - 1) > 0.5, "fan-in counted heads * in_features"
    assert abs(kernel.mean()) < 0.05 / np.sqrt(n_in)
    # Every head has its own scale 1/sqrt(in), not just the kernel as a whole.
    for head in range(num_heads):
        assert abs(kernel[head].std() * np.sqrt(n_in) - 1) < 0.1, head
    np.testing.assert_array_equal(layer.bias[...], 0)


# ---------------------------------------------------------------- errors

OWNER = "PerHeadLinear(num_heads=4, in_features=8, out_features=2)"


def test_design_example_heads_last_input_names_the_features_axis():
    # DESIGN.md's example: the heads axis last, as a (batch, seq, features, heads) tensor.
    layer = PerHeadLinear(8, 64, 32, **CHEAP, rngs=nnx.Rngs(0))
    expected = (
        "PerHeadLinear(num_heads=8, in_features=64, out_features=32): expected input of shape "
        "(..., heads=8, features=64) with heads on axis -2, got (32, 64, 64, 8); features are taken from "
        "the last axis and axis -1 has 8, not 64; axis -1 has num_heads=8, so the heads look last: put the "
        "heads axis at head_axis and the features last."
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        layer(jnp.ones((32, 64, 64, 8), jnp.float32))


def test_wrong_heads_count():
    expected = (
        f"{OWNER}: expected input of shape (..., heads=4, features=8) with heads on axis -2, got (2, 3, 8); heads are taken "
        "from head_axis=-2, which has 3, not 4; put the heads axis at head_axis."
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        PerHeadLinear(4, 8, 2, **CHEAP, rngs=nnx.Rngs(0))(jnp.ones((2, 3, 8), jnp.float32))


def test_heads_on_the_wrong_axis_get_a_hint():
    expected = (
        f"{OWNER}: expected input of shape (..., heads=4, features=8) with heads on axis -2, got (2, 4, 7, 8); heads are "
        "taken from head_axis=-2, which has 7, not 4; put the heads axis at head_axis "
        "(axis -3 has 4: move it to axis -2 or pass head_axis=-3)."
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        PerHeadLinear(4, 8, 2, **CHEAP, rngs=nnx.Rngs(0))(jnp.ones((2, 4, 7, 8), jnp.float32))


def test_wrong_features_with_a_moved_head_axis():
    expected = (
        f"{OWNER}: expected input of shape (..., features=8) with heads=4 on axis 1, got (2, 4, 7, 5); "
        "features are taken from the last axis and axis -1 has 5, not 8."
    )
    layer = PerHeadLinear(4, 8, 2, head_axis=1, **CHEAP, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=re.escape(expected)):
        layer(jnp.ones((2, 4, 7, 5), jnp.float32))


@pytest.mark.parametrize("bad", [-1, 1.5, None, True])
def test_constructor_head_axis_must_be_an_int_other_than_the_features_axis(bad):
    expected = (
        f"{OWNER}: head_axis must be an integer naming an axis other than the features axis (-1), "
        f"got {bad!r}."
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        PerHeadLinear(4, 8, 2, head_axis=bad, rngs=nnx.Rngs(0))


@pytest.mark.parametrize(
    ("head_axis", "rule"),
    [(2, "is the features axis of a rank-3 input"), (5, "is out of range for a rank-3 input"),
     (-4, "is out of range for a rank-3 input")],
)
def test_head_axis_landing_on_the_features_axis_or_outside_the_input_at_call_time(head_axis, rule):
    expected = (
        f"{OWNER}: expected input of shape (..., features=8) with heads=4 on axis {head_axis}, "
        f"got (2, 4, 8); head_axis={head_axis} {rule}; valid axes are 0..1 or -3..-2."
    )
    layer = PerHeadLinear(4, 8, 2, head_axis=head_axis, **CHEAP, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=re.escape(expected)):
        layer(jnp.ones((2, 4, 8), jnp.float32))


def test_rank_one_input_has_no_heads_axis():
    expected = (
        f"{OWNER}: expected input of shape (..., heads=4, features=8) with heads on axis -2, got (8,); a per-head input "
        "needs a heads axis and a features axis, not rank 1."
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        PerHeadLinear(4, 8, 2, **CHEAP, rngs=nnx.Rngs(0))(jnp.ones((8,), jnp.float32))


def test_bad_impl_lists_the_choices():
    # "bmm" is torch_ref's name for the batched formulation; jaxlin spells it "einsum".
    expected = f"{OWNER}: impl must be one of 'einsum', 'vmap', 'loop', got 'bmm'."
    with pytest.raises(ValueError, match=re.escape(expected)):
        PerHeadLinear(4, 8, 2, impl="bmm", rngs=nnx.Rngs(0))


@pytest.mark.parametrize(
    "sizes, message",
    [
        (
            (0, 8, 4),
            "PerHeadLinear(num_heads=0, in_features=8, out_features=4): "
            "num_heads must be a positive integer, got 0.",
        ),
        ((2, -8, 4), "in_features must be a positive integer, got -8."),
        ((2, 8, 2.5), "out_features must be a positive integer, got 2.5."),
        ((True, 8, 4), "num_heads must be a positive integer, got True."),
    ],
)
def test_non_positive_sizes_are_refused(sizes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        PerHeadLinear(*sizes, rngs=nnx.Rngs(0))


def test_integer_input_is_a_type_error():
    expected = (
        f"{OWNER}: expected a floating-point input, got dtype int32; cast it first, e.g. x.astype(float32)."
    )
    with pytest.raises(TypeError, match=re.escape(expected)):
        PerHeadLinear(4, 8, 2, **CHEAP, rngs=nnx.Rngs(0))(jnp.ones((2, 4, 8), jnp.int32))


def test_errors_are_raised_at_trace_time_under_jit():
    layer = PerHeadLinear(4, 8, 2, impl="vmap", **CHEAP, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"which has 3, not 4"):
        nnx.jit(lambda m, x: m(x))(layer, jnp.ones((2, 3, 8), jnp.float32))


@given(lead=st.sampled_from(((7,), (2, 5), (1, 3, 2))), use_bias=st.booleans(), seed=st.integers(0, 2**16))
def test_heads_first_input_takes_the_copy_free_einsum_and_gives_the_heads_last_bits(lead, use_bias, seed):
    first = PerHeadLinear(3, 6, 4, head_axis=0, use_bias=use_bias, bias_init=numpy_init(seed), **CHEAP,
                          rngs=nnx.Rngs(0))  # fmt: skip
    last = PerHeadLinear(3, 6, 4, use_bias=use_bias, **CHEAP, rngs=nnx.Rngs(0))
    last.kernel[...] = first.kernel[...]
    if use_bias:
        last.bias[...] = first.bias[...]
    x = np.random.default_rng(seed).standard_normal((3, *lead, 6)).astype(np.float32)  # (heads, ..., in)
    y = first(jnp.asarray(x))
    assert y.shape == (3, *lead, 4) and y.dtype == jnp.float32
    expected = jnp.moveaxis(last(jnp.moveaxis(jnp.asarray(x), 0, -2)), -2, 0)
    np.testing.assert_array_equal(y, expected)
