"""The layout rules of the standard layers, both ways: nnx.Linear ↔ nn.Linear, nnx.Conv (1-D, any
kernel size) ↔ nn.Conv1d, nnx.LayerNorm ↔ nn.LayerNorm, nnx.Embed ↔ nn.Embedding, and jaxlin's
layers ↔ the plain PyTorch layers they mirror — copied weights give the same function in float64."""

from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import jaxlin
from crosscheck.porting.checking import require_same_weights
from crosscheck.weights import copy_jax_to_torch, copy_torch_to_jax, numpy_of_torch, torch_state_of_jax

F64 = {"param_dtype": jnp.float64}


def _same(y_jax, y_torch, atol=1e-12):
    np.testing.assert_allclose(np.asarray(y_jax), numpy_of_torch(y_torch), rtol=0, atol=atol)


def _both_ways(theirs: torch.nn.Module, ours: nnx.Module, make_torch) -> None:
    """torch -> jax -> a fresh torch module: the same tensors, bit for bit."""
    copy_torch_to_jax(theirs, ours)
    back = make_torch()
    copy_jax_to_torch(ours, back)
    chex.assert_trees_all_equal(
        {k: numpy_of_torch(t) for k, t in back.state_dict().items()},
        {k: numpy_of_torch(t) for k, t in theirs.state_dict().items()},
    )
    assert list(torch_state_of_jax(ours)) == list(theirs.state_dict())


def test_nnx_linear_is_nn_linear_transposed():
    theirs = torch.nn.Linear(6, 4, dtype=torch.float64)
    ours = nnx.Linear(6, 4, rngs=nnx.Rngs(0), **F64)
    _both_ways(theirs, ours, lambda: torch.nn.Linear(6, 4, dtype=torch.float64))
    x = np.random.default_rng(0).standard_normal((3, 6))
    _same(ours(jnp.asarray(x)), theirs(torch.from_numpy(x)))


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize("bias", [True, False])
def test_nnx_conv_1d_is_nn_conv1d_for_any_kernel_size(kernel_size, bias):
    theirs = torch.nn.Conv1d(4, 6, kernel_size, bias=bias, dtype=torch.float64)
    ours = nnx.eval_shape(  # arrays: the copy's
        lambda: nnx.Conv(4, 6, (kernel_size,), padding="VALID", use_bias=bias, rngs=nnx.Rngs(0), **F64)
    )
    _both_ways(theirs, ours, lambda: torch.nn.Conv1d(4, 6, kernel_size, bias=bias, dtype=torch.float64))
    x = np.random.default_rng(1).standard_normal((2, 11, 4))  # (batch, length, channels), Flax's layout
    y_torch = theirs(torch.from_numpy(np.ascontiguousarray(np.swapaxes(x, 1, 2))))
    _same(ours(jnp.asarray(x)), y_torch.transpose(1, 2))


def test_a_conv_padding_that_differs_is_noted():
    theirs, ours = (
        torch.nn.Conv1d(4, 6, 3),
        nnx.Conv(4, 6, (3,), rngs=nnx.Rngs(0)),
    )  # Flax pads SAME by default
    copy_torch_to_jax(theirs, ours)
    assert require_same_weights(ours, theirs).notes == ["(root): padding 'SAME' in Flax vs (0,) in PyTorch"]


@pytest.mark.parametrize("bias", [True, False])
def test_nnx_layer_norm_scale_is_nn_layer_norm_weight(bias):
    theirs = torch.nn.LayerNorm(8, eps=1e-6, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
    ours = nnx.LayerNorm(8, epsilon=1e-6, use_bias=bias, use_fast_variance=False, rngs=nnx.Rngs(0), **F64)
    _both_ways(theirs, ours, lambda: torch.nn.LayerNorm(8, eps=1e-6, bias=bias, dtype=torch.float64))
    x = np.random.default_rng(2).standard_normal((3, 5, 8)) + 3.0
    _same(ours(jnp.asarray(x)), theirs(torch.from_numpy(x)))


def test_layer_norm_epsilon_and_fast_variance_are_noted():
    theirs, ours = torch.nn.LayerNorm(8), nnx.LayerNorm(8, rngs=nnx.Rngs(0))  # 1e-5 vs 1e-6, fast variance
    copy_torch_to_jax(theirs, ours)
    notes = require_same_weights(ours, theirs).notes
    assert notes[0] == "(root): epsilon 1e-06 in Flax vs eps 1e-05 in PyTorch"
    assert "use_fast_variance=True" in notes[1]


def test_nnx_embed_is_nn_embedding_and_a_padding_index_is_noted():
    theirs = torch.nn.Embedding(10, 4, padding_idx=0, dtype=torch.float64)
    ours = nnx.Embed(10, 4, rngs=nnx.Rngs(0), **F64)
    _both_ways(theirs, ours, lambda: torch.nn.Embedding(10, 4, padding_idx=0, dtype=torch.float64))
    ids = np.array([[0, 3, 9], [1, 1, 2]])
    _same(ours(jnp.asarray(ids)), theirs(torch.from_numpy(ids)), atol=0)
    assert "padding_idx=0 in PyTorch" in require_same_weights(ours, theirs).notes[0]


def test_jaxlin_linear_is_a_plain_nn_linear_and_pointwise_conv_a_plain_conv1d():
    theirs = torch.nn.Linear(5, 3, dtype=torch.float64)
    ours = jaxlin.Linear(5, 3, rngs=nnx.Rngs(0), **F64)
    _both_ways(theirs, ours, lambda: torch.nn.Linear(5, 3, dtype=torch.float64))
    conv = torch.nn.Conv1d(5, 3, 1, dtype=torch.float64)
    pointwise = jaxlin.PointwiseConv(5, 3, rngs=nnx.Rngs(0), **F64)
    _both_ways(conv, pointwise, lambda: torch.nn.Conv1d(5, 3, 1, dtype=torch.float64))
    x = np.random.default_rng(3).standard_normal((2, 7, 5))
    _same(
        pointwise(jnp.asarray(x)),
        conv(torch.from_numpy(np.ascontiguousarray(np.swapaxes(x, 1, 2)))).transpose(1, 2),
    )
