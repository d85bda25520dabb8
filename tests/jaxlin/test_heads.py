"""jaxlin.PerHeadLinear: einsum = vmap = loop = jaxlin.Linear head by head, head_axis, init, errors.

Sizes are drawn from small fixed sets: eager JAX compiles every new shape, so a few shapes that
recur keep the suite fast while still covering no/one/several leading axes and a single head.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxlin.heads
from crosscheck.numerics import dot_bound
from jaxlin import PerHeadLinear
from jaxlin.auto import fastest_per_head
from tests._helpers import CHEAP, apply, jax_grads, linear_holding, loss_weights, numpy_init

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


@pytest.mark.slow  # deselect with -m "not slow" (README)
@settings(deadline=None)
@given(
    dtype=st.sampled_from((jnp.float32, jnp.float64)),
    lead=leading_shapes,
    sizes=head_sizes,
    use_bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_impls_agree_with_each_other_and_with_linear_head_by_head(
    variant, dtype, lead, sizes, use_bias, seed
):
    num_heads, n_in, n_out = sizes
    layers = {impl: make(impl, sizes, dtype, use_bias, seed) for impl in IMPLS}
    x = jnp.asarray(np.random.default_rng(seed).standard_normal(lead + (num_heads, n_in)), dtype)
    expected = linear_head_by_head(layers["loop"], x)
    assert expected.shape == lead + (num_heads, n_out) and expected.dtype == np.dtype(dtype)
    outputs = {impl: np.asarray(apply(layer, x, transform=variant)) for impl, layer in layers.items()}
    # "loop" runs Linear's own dot_general on kernel[h]: bitwise Linear head by head.
    np.testing.assert_array_equal(outputs["loop"], expected)
    # Each side is within the bound of the exact result, so within twice the bound of each other.
    bound = reference_bounds(layers["loop"], x)["output"]
    for impl in ("einsum", "vmap"):
        assert outputs[impl].shape == expected.shape and outputs[impl].dtype == expected.dtype, impl
        assert_within(outputs[impl], expected, 2 * bound, impl)


# Gradients cost a compile per shape and impl: a few fixed configurations, the shapes above.
@pytest.mark.slow  # deselect with -m "not slow" (README)
@pytest.mark.parametrize(
    "dtype, lead, use_bias",
    [(jnp.float64, (2, 2, 3), True), (jnp.float32, (2, 2, 3), True), (jnp.float32, (), False)],
    ids=["float64", "float32", "float32-unbatched-no-bias"],
)
def test_gradients_agree_across_impls(variant, dtype, lead, use_bias):
    sizes = (4, 8, 5)
    layers = {impl: make(impl, sizes, dtype, use_bias, seed=11) for impl in IMPLS}
    x = jnp.asarray(np.random.default_rng(12).standard_normal(lead + sizes[:2]), dtype)
    results = {impl: jax_grads(layer, x, transform=variant) for impl, layer in layers.items()}
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
    assert layer.impl == "auto" and layer.head_axis == -2


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


# ---------------------------------------------------------------- impl="auto"


@pytest.mark.parametrize("picked", IMPLS)
def test_auto_runs_the_formulation_the_rule_picks_bitwise(monkeypatch, variant, picked):
    monkeypatch.setattr(jaxlin.heads, "fastest_per_head", lambda *sizes, **options: picked)
    auto, explicit = (
        make("auto", (4, 8, 5), jnp.float32, seed=5),
        make(picked, (4, 8, 5), jnp.float32, seed=5),
    )
    x = jnp.asarray(np.random.default_rng(6).standard_normal((2, 3, 4, 8)), jnp.float32)
    assert auto.formulation(x.shape) == picked
    chex.assert_trees_all_equal(
        jax_grads(auto, x, transform=variant), jax_grads(explicit, x, transform=variant)
    )


@pytest.mark.parametrize(
    "heads, rows, size, backend, picked",
    [
        (16, 2048, 64, "cpu", "einsum"),
        (4, 2048, 512, "cpu", "loop"),
        (1, 64, 32, "cpu", "loop"),
        (4, 2048, 512, "gpu", "einsum"),
        (4, 2048, 512, "tpu", "einsum"),
    ],
)
def test_the_rule_follows_the_studys_table(heads, rows, size, backend, picked):
    assert fastest_per_head(heads, rows, size, size, backend) == picked


BF16_NO_AMX = {"flags": frozenset({"avx512_bf16"}), "xla_flags": ""}


@pytest.mark.parametrize(
    "heads, size, dtype, heads_first, cpu, picked",
    [
        (16, 128, jnp.bfloat16, False, BF16_NO_AMX, "loop"),  # measured: loop 0.68-0.77x the einsum
        (16, 128, jnp.bfloat16, True, BF16_NO_AMX, "loop"),
        (8, 64, jnp.bfloat16, False, BF16_NO_AMX, "loop"),
        (16, 128, jnp.float32, False, BF16_NO_AMX, "einsum"),  # float32: the shape rule
        (16, 128, jnp.float32, True, BF16_NO_AMX, "einsum"),
        (32, 128, jnp.bfloat16, False, BF16_NO_AMX, "einsum"),  # beyond the measured heads
        (8, 8, jnp.bfloat16, False, BF16_NO_AMX, "einsum"),  # too little work per head
        (16, 128, jnp.bfloat16, False, {"flags": frozenset({"amx_bf16"}), "xla_flags": ""}, "einsum"),
        (
            16,
            128,
            jnp.bfloat16,
            False,
            {"flags": frozenset(), "xla_flags": "--xla_cpu_experimental_ynn_fusion_type=dot"},
            "einsum",
        ),
    ],
)
def test_the_bfloat16_rule_keys_on_dtype_cpu_features_and_xla_flags(
    monkeypatch, heads, size, dtype, heads_first, cpu, picked
):
    monkeypatch.setattr(jaxlin.auto, "cpu_flags", lambda: cpu["flags"])
    monkeypatch.setenv("XLA_FLAGS", cpu["xla_flags"])
    assert fastest_per_head(heads, 2048, size, size, "cpu", dtype, heads_first=heads_first) == picked
    assert fastest_per_head(heads, 2048, size, size, "gpu", dtype, heads_first=heads_first) == "einsum"


def test_a_bfloat16_layer_on_heads_first_input_runs_the_loop_where_the_rule_says(monkeypatch):
    monkeypatch.setattr(jaxlin.auto, "cpu_flags", lambda: frozenset())
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    layer = make("auto", (8, 64, 64), jnp.bfloat16, head_axis=0)
    loop = make("loop", (8, 64, 64), jnp.bfloat16, head_axis=0)
    assert layer.formulation((8, 2048, 64), jnp.bfloat16, heads_first=True) == "loop"
    x = jnp.asarray(np.random.default_rng(9).standard_normal((8, 2048, 64)), jnp.bfloat16)
    if jax.default_backend() == "cpu":
        np.testing.assert_array_equal(jax.jit(layer)(x), jax.jit(loop)(x))


def test_auto_counts_rows_over_every_leading_axis():
    layer = make("auto", (4, 8, 5), jnp.float32)
    assert layer.formulation((2, 3, 4, 8)) == fastest_per_head(4, 6, 8, 5)


def test_auto_on_heads_first_input_takes_the_copy_free_einsum():
    first = make("auto", (3, 6, 4), jnp.float32, head_axis=0)
    einsum = make("einsum", (3, 6, 4), jnp.float32, head_axis=0)
    x = jnp.asarray(np.random.default_rng(8).standard_normal((3, 5, 6)), jnp.float32)
    np.testing.assert_array_equal(first(x), einsum(x))


# ---------------------------------------------------------------- errors

OWNER = "PerHeadLinear(num_heads=4, in_features=8, out_features=2)"


def test_errors_are_raised_at_trace_time_under_jit():
    layer = PerHeadLinear(4, 8, 2, impl="vmap", **CHEAP, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"which has 3, not 4"):
        nnx.jit(lambda m, x: m(x))(layer, jnp.ones((2, 3, 8), jnp.float32))


@given(lead=st.sampled_from(((7,), (2, 5), (1, 3, 2))), use_bias=st.booleans(), seed=st.integers(0, 2**16))
def test_heads_first_input_takes_the_copy_free_einsum_and_gives_the_heads_last_bits(
    variant, lead, use_bias, seed
):
    first = PerHeadLinear(
        3, 6, 4, head_axis=0, use_bias=use_bias, bias_init=numpy_init(seed), **CHEAP, rngs=nnx.Rngs(0)
    )
    last = PerHeadLinear(3, 6, 4, use_bias=use_bias, **CHEAP, rngs=nnx.Rngs(0))
    last.kernel[...] = first.kernel[...]
    if use_bias:
        last.bias[...] = first.bias[...]
    x = np.random.default_rng(seed).standard_normal((3, *lead, 6)).astype(np.float32)  # (heads, ..., in)
    y = apply(first, jnp.asarray(x), transform=variant)
    chex.assert_shape(y, (3, *lead, 4))
    chex.assert_type(y, jnp.float32)
    expected = jnp.moveaxis(apply(last, jnp.moveaxis(jnp.asarray(x), 0, -2), transform=variant), -2, 0)
    np.testing.assert_array_equal(y, expected)
