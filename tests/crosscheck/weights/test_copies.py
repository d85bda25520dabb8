"""copy_torch_to_jax / copy_jax_to_torch: exact, independent copies; exact shapes (nothing broadcasts);
a failed copy leaves the target untouched; the same checks and words as load_weights."""

from __future__ import annotations

import re

import chex
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import jaxlin
import torch_ref
from crosscheck.weights import WeightsError, copy_jax_to_torch, copy_torch_to_jax, numpy_of_torch
from tests._helpers import params_of


def _torch_state(module) -> dict[str, np.ndarray]:
    return {key: numpy_of_torch(t) for key, t in module.state_dict().items()}


@pytest.mark.parametrize(
    "make_torch, make_jax",
    [
        (lambda: torch.nn.Linear(8, 4), lambda: jaxlin.Linear(8, 4, rngs=nnx.Rngs(0))),
        (lambda: torch_ref.PerHeadLinear(3, 8, 4), lambda: jaxlin.PerHeadLinear(3, 8, 4, rngs=nnx.Rngs(0))),
    ],
)
def test_the_jax_copy_owns_its_memory_an_optimizer_step_on_torch_does_not_reach_it(make_torch, make_jax):
    theirs, ours = make_torch(), make_jax()
    copy_torch_to_jax(theirs, ours)
    before = params_of(ours)
    optimizer = torch.optim.SGD(theirs.parameters(), lr=0.5)
    theirs(torch.randn(2, *([3] if isinstance(theirs, torch_ref.PerHeadLinear) else []), 8)).sum().backward()
    optimizer.step()
    with torch.no_grad():
        for tensor in theirs.parameters():
            tensor.add_(1.0)  # and an in-place update of every tensor, biases included
    chex.assert_trees_all_equal(params_of(ours), before)


def test_the_torch_copy_owns_its_memory_too():
    ours, theirs = jaxlin.Linear(3, 2, rngs=nnx.Rngs(0)), torch.nn.Linear(3, 2)
    copy_jax_to_torch(ours, theirs)
    before = _torch_state(theirs)
    ours.kernel[...] = ours.kernel[...] + 1
    chex.assert_trees_all_equal(_torch_state(theirs), before)


@pytest.mark.parametrize(
    "source, target, key, got, expected",
    [
        (
            lambda: torch.nn.Linear(8, 1),
            lambda: jaxlin.Linear(8, 4, rngs=nnx.Rngs(0)),
            "weight",
            (1, 8),
            (4, 8),
        ),
        (
            lambda: torch_ref.PerHeadLinear(1, 8, 4),
            lambda: jaxlin.PerHeadLinear(4, 8, 4, rngs=nnx.Rngs(0)),
            "weight",
            (1, 4, 8),
            (4, 4, 8),
        ),
        (
            lambda: torch.nn.Conv1d(8, 4, 1),
            lambda: jaxlin.PointwiseConv(8, 1, rngs=nnx.Rngs(0)),
            "weight",
            (4, 8, 1),
            (1, 8, 1),
        ),
    ],
)
def test_torch_to_jax_never_broadcasts(source, target, key, got, expected):
    theirs, ours = source(), target()
    before = params_of(ours)
    with pytest.raises(WeightsError, match=re.escape(f"key {key!r} has shape {got}, expected {expected}")):
        copy_torch_to_jax(theirs, ours)
    chex.assert_trees_all_equal(params_of(ours), before)


def test_jax_to_torch_never_broadcasts_and_names_the_module_the_parameter_and_both_shapes():
    ours, theirs = jaxlin.Linear(1, 4, rngs=nnx.Rngs(0)), torch.nn.Linear(8, 4)
    before = _torch_state(theirs)
    message = (
        "copy_jax_to_torch from jaxlin.Linear(in_features=1, out_features=4): key 'weight' has shape (4, 1), "
        "expected (4, 8) for torch.Linear(in_features=8, out_features=4, bias=True)"
    )
    with pytest.raises(WeightsError, match=re.escape(message)):
        copy_jax_to_torch(ours, theirs)
    chex.assert_trees_all_equal(_torch_state(theirs), before)


def test_a_failed_copy_leaves_the_target_untouched_a_missing_bias_writes_no_kernel():
    theirs, ours = torch.nn.Linear(8, 4, bias=False), jaxlin.Linear(8, 4, rngs=nnx.Rngs(0))
    before = params_of(ours)
    message = (
        "copy_torch_to_jax from torch.Linear(in_features=8, out_features=4, bias=False): missing key 'bias'; "
        "expected exactly the keys 'weight', 'bias' for jaxlin.Linear(in_features=8, out_features=4)"
    )
    with pytest.raises(WeightsError, match=re.escape(message)):
        copy_torch_to_jax(theirs, ours)
    chex.assert_trees_all_equal(params_of(ours), before)
    back = torch.nn.Linear(8, 4, bias=False)
    state = _torch_state(back)
    with pytest.raises(WeightsError, match="unexpected key 'bias'"):
        copy_jax_to_torch(ours, back)
    chex.assert_trees_all_equal(_torch_state(back), state)


def test_a_value_that_overflows_the_target_dtype_is_refused_before_anything_changes():
    theirs = torch.nn.Linear(2, 2, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight[0, 0] = 1e300
    ours = jaxlin.Linear(2, 2, rngs=nnx.Rngs(0))
    before = params_of(ours)
    with pytest.raises(
        WeightsError, match=r"key 'weight' has 1 finite values \(up to 1e\+300\) that become inf in float32"
    ):
        copy_torch_to_jax(theirs, ours)
    chex.assert_trees_all_equal(params_of(ours), before)


def test_copies_convert_to_the_targets_dtype_and_round_trip_bit_exactly_in_it():
    theirs = torch.nn.Linear(4, 3, dtype=torch.bfloat16)
    ours = jaxlin.Linear(4, 3, param_dtype=jnp.float32, rngs=nnx.Rngs(0))
    copy_torch_to_jax(theirs, ours)
    assert ours.kernel[...].dtype == jnp.float32
    back = torch.nn.Linear(4, 3, dtype=torch.bfloat16)
    copy_jax_to_torch(ours, back)
    chex.assert_trees_all_equal(_torch_state(back), _torch_state(theirs))
