"""jaxlin.initializers: PyTorch's U(±1/√fan_in) on every layer, per-head fan-in, plain Flax initializers.

The checks are statistical on fixed seeds with enough samples that the tolerances are many
standard errors wide: within the bound always, the maximum near the bound, std ≈ bound/√3, mean ≈ 0.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import torch_ref
from jaxlin import Linear, PerHeadLinear, PointwiseConv, PooledHead
from jaxlin.initializers import (
    TORCH_DEFAULT,
    FanInInitializer,
    FanInUniform,
    per_head_kernel_init,
    torch_uniform,
)


def assert_uniform(values, bound, what):
    """``values`` look like U(-bound, bound): inside it, max near it, std ≈ bound/√3, mean ≈ 0."""
    values = np.asarray(values, np.float64).ravel()
    n = values.size
    sigma = bound / math.sqrt(3)
    assert np.abs(values).max() <= bound, f"{what}: a value outside ±{bound}"
    # P(max|w| < bound·(1 - 8/n)) = (1 - 8/n)^n ≈ e^-8.
    assert np.abs(values).max() >= bound * (1 - 8 / n), (
        f"{what}: max {np.abs(values).max()} far below {bound}"
    )
    # The sample std of a uniform has relative standard error √(0.2/n); allow 5 of them, at least 2%.
    tolerance = max(0.02, 5 * math.sqrt(0.2 / n))
    assert abs(values.std() / sigma - 1) < tolerance, f"{what}: std {values.std()} vs {sigma}"
    assert abs(values.mean()) < 5 * sigma / math.sqrt(n), f"{what}: mean {values.mean()}"


def test_torch_uniform_is_fan_in_uniform_with_scale_one():
    assert isinstance(torch_uniform, FanInInitializer) and isinstance(torch_uniform, FanInUniform)
    assert torch_uniform.scale == 1.0 and repr(torch_uniform) == "FanInUniform(scale=1.0)"
    assert TORCH_DEFAULT == {"kernel_init": torch_uniform, "bias_init": torch_uniform}
    values = torch_uniform(jax.random.key(0), (256, 64), jnp.float32, fan_in=256)
    assert values.shape == (256, 64) and values.dtype == jnp.float32
    assert_uniform(values, 1 / 16, "torch_uniform")


def test_fan_in_uniform_scale_two_doubles_the_bound():
    key = jax.random.key(0)
    one = torch_uniform(key, (256, 64), jnp.float32, fan_in=256)
    two = FanInUniform(scale=2)(key, (256, 64), jnp.float32, fan_in=256)
    assert_uniform(two, 2 / 16, "FanInUniform(scale=2)")
    # Same key: the same uniform draws, stretched by 2 (up to the float32 rounding of the affine map).
    np.testing.assert_allclose(two, 2 * one, rtol=1e-6, atol=1e-7)


def test_fan_in_initializer_base_class_is_abstract():
    with pytest.raises(NotImplementedError):
        FanInInitializer()(jax.random.key(0), (2, 2), fan_in=2)


def test_torch_uniform_keeps_the_requested_dtype():
    values = torch_uniform(jax.random.key(0), (256, 64), jnp.float64, fan_in=256)
    assert values.dtype == jnp.float64
    assert_uniform(values, 1 / 16, "float64")


def test_linear_with_torch_default_draws_kernel_and_bias_from_the_in_features_bound():
    layer = Linear(256, 2048, **TORCH_DEFAULT, rngs=nnx.Rngs(0))
    assert_uniform(layer.kernel[...], 1 / 16, "kernel")
    # The bias bound uses fan_in = in_features (256), not its own size (2048).
    assert_uniform(layer.bias[...], 1 / 16, "bias")


def test_pointwise_conv_with_torch_default_uses_in_features_as_fan_in():
    layer = PointwiseConv(256, 2048, impl="conv", **TORCH_DEFAULT, rngs=nnx.Rngs(0))
    assert layer.kernel.shape == (1, 256, 2048)
    assert_uniform(layer.kernel[...], 1 / 16, "kernel")
    assert_uniform(layer.bias[...], 1 / 16, "bias")


def test_per_head_linear_with_torch_default_uses_the_per_head_fan_in():
    layer = PerHeadLinear(4, 256, 512, **TORCH_DEFAULT, rngs=nnx.Rngs(0))
    kernel = np.asarray(layer.kernel[...])
    # fan_in = in_features = 256 per head, not heads * in_features = 1024 (bound 1/32).
    assert_uniform(kernel, 1 / 16, "kernel")
    assert_uniform(layer.bias[...], 1 / 16, "bias")
    for head in range(4):
        assert_uniform(kernel[head], 1 / 16, f"kernel[{head}]")


def test_pooled_head_with_torch_default_uses_each_layers_own_fan_in():
    head = PooledHead(256, 512, 1024, **TORCH_DEFAULT, rngs=nnx.Rngs(0))
    assert_uniform(head.projector.kernel[...], 1 / math.sqrt(256), "projector.kernel")
    assert_uniform(head.projector.bias[...], 1 / math.sqrt(256), "projector.bias")
    assert_uniform(head.classifier.kernel[...], 1 / math.sqrt(512), "classifier.kernel")
    assert_uniform(head.classifier.bias[...], 1 / math.sqrt(512), "classifier.bias")


def test_torch_ref_linear_weight_has_the_same_distribution():
    torch.manual_seed(0)
    reference = torch_ref.Linear(256, 2048)
    weight = reference.weight.detach().numpy()
    bias = reference.bias.detach().numpy()
    assert_uniform(weight, 1 / 16, "torch weight")
    assert_uniform(bias, 1 / 16, "torch bias")
    ours = np.asarray(Linear(256, 2048, **TORCH_DEFAULT, rngs=nnx.Rngs(0)).kernel[...])
    assert np.abs(ours).max() <= 1 / 16 and np.abs(weight).max() <= 1 / 16
    assert abs(ours.std() / weight.std() - 1) < 0.02


def test_per_head_kernel_init_is_sqrt_heads_wider_than_plain_lecun_normal():
    heads, n_in, n_out = 8, 64, 32
    key = jax.random.key(0)
    per_head = np.asarray(per_head_kernel_init(key, (heads, n_in, n_out), jnp.float32))
    plain = np.asarray(nnx.initializers.lecun_normal()(key, (heads, n_in, n_out), jnp.float32))
    # Plain lecun_normal counts heads * in as the fan-in (what nnx.Einsum effectively does).
    assert abs(per_head.std() * math.sqrt(n_in) - 1) < 0.03
    assert abs(plain.std() * math.sqrt(heads * n_in) - 1) < 0.03
    assert abs(per_head.std() / plain.std() / math.sqrt(heads) - 1) < 0.03


def test_per_head_kernel_init_matches_lecun_normal_on_one_head_in_distribution():
    # The expected std: lecun_normal on an (in, out) kernel with the same number of values.
    heads, n_in, n_out = 8, 64, 32
    per_head = np.asarray(per_head_kernel_init(jax.random.key(1), (heads, n_in, n_out), jnp.float32))
    single = np.asarray(
        nnx.initializers.lecun_normal()(jax.random.key(1), (n_in, heads * n_out), jnp.float32)
    )
    assert abs(per_head.std() / single.std() - 1) < 0.03
    assert np.abs(per_head).max() <= 2 / math.sqrt(n_in) / 0.8796256610342398 + 1e-6  # truncated at 2σ


@pytest.mark.parametrize(
    "make, x",
    [
        (lambda init: Linear(3, 2, kernel_init=init, bias_init=init, rngs=nnx.Rngs(0)), (4, 3)),
        (lambda init: PointwiseConv(3, 2, kernel_init=init, bias_init=init, rngs=nnx.Rngs(0)), (4, 5, 3)),
        (lambda init: PerHeadLinear(2, 3, 2, kernel_init=init, bias_init=init, rngs=nnx.Rngs(0)), (4, 2, 3)),
    ],
    ids=["Linear", "PointwiseConv", "PerHeadLinear"],
)
def test_a_plain_flax_initializer_still_works(make, x):
    layer = make(nnx.initializers.ones)
    np.testing.assert_array_equal(layer.kernel[...], 1)
    np.testing.assert_array_equal(layer.bias[...], 1)
    # Every output is sum(x) + 1 with all-ones parameters.
    x = jnp.arange(math.prod(x), dtype=jnp.float32).reshape(x)
    np.testing.assert_allclose(layer(x), jnp.broadcast_to(x.sum(-1, keepdims=True) + 1, layer(x).shape))


def test_a_plain_flax_initializer_still_works_in_pooled_head():
    head = PooledHead(
        3, 4, 2, kernel_init=nnx.initializers.ones, bias_init=nnx.initializers.zeros, rngs=nnx.Rngs(0)
    )
    for layer in (head.projector, head.classifier):
        np.testing.assert_array_equal(layer.kernel[...], 1)
        np.testing.assert_array_equal(layer.bias[...], 0)
    x = jnp.ones((2, 5, 3), jnp.float32)
    np.testing.assert_array_equal(head(x), jnp.full((2, 2), 12.0))  # 3 inputs -> 4 hidden of 3 -> 12


def test_default_initialization_is_flax_lecun_normal_and_zero_bias():
    layer = Linear(64, 32, rngs=nnx.Rngs(0))
    reference = nnx.Linear(64, 32, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(layer.kernel[...], reference.kernel[...])
    np.testing.assert_array_equal(layer.bias[...], 0)
