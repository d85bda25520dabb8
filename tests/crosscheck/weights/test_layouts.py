"""The two frameworks' layouts agree: weights copied by hand give the same function in float64,
and crosscheck.weights maps exactly as the hand copy does."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import jaxlin
import torch_ref
from crosscheck.suite.cases import all_cases
from crosscheck.weights import copy_jax_to_torch, copy_torch_to_jax, torch_state_of_jax
from tests._helpers import params_of, set_params

F64 = {"param_dtype": jnp.float64}


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _agree(y_jax, y_torch, scale: float = 1.0) -> None:
    np.testing.assert_allclose(np.asarray(y_jax), y_torch, rtol=0, atol=1e-13 * scale)


def test_linear_weight_is_the_transposed_kernel():
    theirs = torch_ref.Linear(6, 4, dtype=torch.float64)
    ours = jaxlin.Linear(6, 4, rngs=nnx.Rngs(0), **F64)
    set_params(ours, {"kernel": _np(theirs.weight).T, "bias": _np(theirs.bias)})
    x = np.random.default_rng(0).standard_normal((3, 5, 6))
    _agree(ours(jnp.asarray(x)), _np(theirs(_t(x))))


def test_pointwise_conv_weight_out_in_1_is_kernel_1_in_out_and_channels_swap():
    theirs = torch_ref.PointwiseConv(6, 4, impl="conv", dtype=torch.float64)
    ours = jaxlin.PointwiseConv(6, 4, impl="conv", rngs=nnx.Rngs(0), **F64)
    set_params(ours, {"kernel": np.transpose(_np(theirs.weight), (2, 1, 0)), "bias": _np(theirs.bias)})
    x = np.random.default_rng(1).standard_normal((3, 7, 6))  # (batch, length, features)
    y_torch = _np(theirs(_t(np.swapaxes(x, 1, 2))))  # torch: (batch, features, length)
    _agree(ours(jnp.asarray(x)), np.swapaxes(y_torch, 1, 2))


@pytest.mark.parametrize("jax_impl", ["einsum", "vmap", "loop"])
@pytest.mark.parametrize("torch_impl", ["bmm", "vmap", "loop"])
def test_per_head_weight_heads_out_in_is_kernel_heads_in_out(jax_impl, torch_impl):
    theirs = torch_ref.PerHeadLinear(3, 6, 4, impl=torch_impl, dtype=torch.float64)
    ours = jaxlin.PerHeadLinear(3, 6, 4, impl=jax_impl, rngs=nnx.Rngs(0), **F64)
    set_params(ours, {"kernel": np.swapaxes(_np(theirs.weight), 1, 2), "bias": _np(theirs.bias)})
    x = np.random.default_rng(2).standard_normal((2, 5, 3, 6))
    _agree(ours(jnp.asarray(x)), _np(theirs(_t(x))))


@pytest.mark.parametrize("pool_at", ["input", "hidden", "output"])
def test_pooled_head_is_its_two_linears(pool_at):
    theirs = torch_ref.PooledHead(6, 5, 2, pool_at=pool_at, activation=torch.relu, dtype=torch.float64)
    ours = jaxlin.PooledHead(6, 5, 2, pool_at=pool_at, activation=jax.nn.relu, rngs=nnx.Rngs(0), **F64)
    hand = {
        f"{layer}.{name}": _np(getattr(theirs, layer).weight).T
        if name == "kernel"
        else _np(getattr(theirs, layer).bias)
        for layer in ("projector", "classifier")
        for name in ("kernel", "bias")
    }
    set_params(ours, hand)
    x = np.random.default_rng(3).standard_normal((4, 9, 6))
    mask = np.arange(9)[None, :] < np.array([[9], [4], [0], [1]])
    _agree(ours(jnp.asarray(x), jnp.asarray(mask)), _np(theirs(_t(x), _t(mask))))


@pytest.mark.parametrize("name", sorted(all_cases()))
def test_weights_module_maps_like_the_hand_copy_for_every_case(name):
    case = all_cases()[name]
    torch.manual_seed(0)
    theirs = case.make_torch(torch.float64)
    ours = case.make_jax(nnx.Rngs(0), jnp.float64)
    copy_torch_to_jax(theirs, ours)
    exported = torch_state_of_jax(ours)
    assert list(exported) == list(theirs.state_dict())
    for key, tensor in theirs.state_dict().items():
        np.testing.assert_array_equal(exported[key], _np(tensor))
    inputs = case.make_inputs(np.random.default_rng(0))
    y_jax = np.asarray(ours(*map(jnp.asarray, inputs)))
    y_torch = _np(theirs(*map(_t, case.torch_inputs(inputs))))
    _agree(y_jax, np.swapaxes(y_torch, -1, -2) if case.channels_first else y_torch, scale=10)


def test_jax_to_torch_copy_is_the_inverse():
    ours = jaxlin.PerHeadLinear(3, 6, 4, rngs=nnx.Rngs(5), bias_init=nnx.initializers.normal(1.0))
    theirs = torch_ref.PerHeadLinear(3, 6, 4)
    copy_jax_to_torch(ours, theirs)
    back = jaxlin.PerHeadLinear(3, 6, 4, rngs=nnx.Rngs(6))
    copy_torch_to_jax(theirs, back)
    for key, value in params_of(ours).items():
        np.testing.assert_array_equal(params_of(back)[key], value)
