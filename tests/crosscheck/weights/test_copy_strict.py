"""copy_torch_to_jax / copy_jax_to_torch with prefix= (the torch model is the whole, the JAX module the
part), strict=False and ignore=: what has no counterpart is listed in the returned Copied, and a
failure leaves the target as it was."""

import re

import numpy as np
import pytest
import torch
from flax import nnx

import jaxlin
from crosscheck import WeightsError, copy_jax_to_torch, copy_torch_to_jax
from crosscheck.weights.transfer import Copied


def _whole():
    torch.manual_seed(0)
    whole = torch.nn.Sequential()
    whole.add_module("encoder", torch.nn.Linear(3, 2))
    whole.add_module("head", torch.nn.Linear(2, 1))
    return whole


def _state(module) -> dict:
    return {key: t.detach().clone() for key, t in module.state_dict().items()}


def test_the_copies_return_what_they_left_out():
    theirs, ours = torch.nn.Linear(3, 2), jaxlin.Linear(3, 2, rngs=nnx.Rngs(0))
    assert copy_torch_to_jax(theirs, ours) == Copied([], [])
    assert copy_jax_to_torch(ours, theirs) == Copied([], [])


def test_prefix_takes_a_submodules_weights_out_of_a_whole_torch_model():
    whole, part = _whole(), jaxlin.Linear(3, 2, rngs=nnx.Rngs(0))
    assert copy_torch_to_jax(whole, part, prefix="encoder") == Copied([], [])  # whole pieces: "encoder."
    np.testing.assert_array_equal(np.asarray(part.kernel[...]), whole.encoder.weight.detach().numpy().T)


def test_copy_jax_to_torch_writes_the_part_into_the_whole_and_nothing_else():
    whole, part = _whole(), jaxlin.Linear(3, 2, rngs=nnx.Rngs(1))
    head = _state(whole.head)
    copy_jax_to_torch(part, whole, prefix="encoder.")
    np.testing.assert_array_equal(whole.encoder.bias.detach().numpy(), np.asarray(part.bias[...]))
    for key, value in _state(whole.head).items():
        assert torch.equal(value, head[key])


def test_prefix_is_whole_path_pieces():
    whole = torch.nn.Sequential(*[torch.nn.Linear(3, 3) for _ in range(11)])
    part = jaxlin.Linear(3, 3, rngs=nnx.Rngs(0))
    copy_torch_to_jax(whole, part, prefix="1")
    np.testing.assert_array_equal(np.asarray(part.bias[...]), whole[1].bias.detach().numpy())
    with pytest.raises(WeightsError, match=r"copy_torch_to_jax: prefix '12\.': .* no submodule '12'"):
        copy_torch_to_jax(whole, part, prefix="12.")


def test_strict_false_lists_both_sides_and_leaves_the_rest_as_it_was():
    torch.manual_seed(0)
    theirs, ours = torch.nn.Linear(3, 2, bias=False), jaxlin.Linear(3, 2, rngs=nnx.Rngs(0))
    bias = np.asarray(ours.bias[...]).copy()
    assert copy_torch_to_jax(theirs, ours, strict=False) == Copied([], ["bias"])
    np.testing.assert_array_equal(np.asarray(ours.bias[...]), bias)  # kept its value
    np.testing.assert_array_equal(np.asarray(ours.kernel[...]), theirs.weight.detach().numpy().T)
    flax_layer = nnx.Linear(3, 2, use_bias=False, rngs=nnx.Rngs(0))
    full = torch.nn.Linear(3, 2)
    before = full.bias.detach().clone()
    assert copy_jax_to_torch(flax_layer, full, strict=False) == Copied(["bias"], [])
    assert torch.equal(full.bias.detach(), before)


def test_strict_true_says_what_to_pass_and_changes_nothing():
    whole, part = _whole(), jaxlin.Linear(3, 2, rngs=nnx.Rngs(0))
    before = np.asarray(part.kernel[...]).copy()
    with pytest.raises(WeightsError) as raised:
        copy_torch_to_jax(whole, part)
    assert str(raised.value).endswith(
        "; strict=False lists keys with no counterpart; ignore=[regex, ...] leaves keys out; "
        "prefix='encoder.' takes the torch model's submodule 'encoder'"
    )
    np.testing.assert_array_equal(np.asarray(part.kernel[...]), before)
    state = _state(whole)
    with pytest.raises(WeightsError, match=r"copy_jax_to_torch from jaxlin.Linear.*unexpected keys"):
        copy_jax_to_torch(part, whole)
    assert all(torch.equal(value, state[key]) for key, value in _state(whole).items())


def test_ignore_leaves_out_keys_of_either_side_named_with_the_prefix():
    whole, part = _whole(), jaxlin.Linear(3, 2, rngs=nnx.Rngs(0))
    bias = np.asarray(part.bias[...]).copy()
    copied = copy_torch_to_jax(whole, part, prefix="encoder.", ignore=[r"^encoder\.bias$"])
    assert copied == Copied(["encoder.bias"], [])
    np.testing.assert_array_equal(np.asarray(part.bias[...]), bias)
    np.testing.assert_array_equal(np.asarray(part.kernel[...]), whole.encoder.weight.detach().numpy().T)


def test_num_batches_tracked_is_listed_and_may_be_named():
    theirs, ours = torch.nn.BatchNorm1d(4), nnx.BatchNorm(4, rngs=nnx.Rngs(0))
    assert copy_torch_to_jax(theirs, ours).ignored == ["num_batches_tracked"]
    copied = copy_jax_to_torch(ours, theirs, ignore=r"num_batches_tracked$|running_var")
    assert copied.ignored == ["running_var", "num_batches_tracked"]


def test_an_ignore_pattern_that_finds_nothing_is_an_error_and_writes_nothing():
    whole, part = _whole(), jaxlin.Linear(3, 2, rngs=nnx.Rngs(1))
    state = _state(whole)
    message = "copy_jax_to_torch: ignore pattern 'encoder\\\\.weigth' found no key of either model"
    with pytest.raises(WeightsError, match=re.escape(message)):
        copy_jax_to_torch(part, whole, prefix="encoder.", ignore=[r"encoder\.weigth"])
    assert all(torch.equal(value, state[key]) for key, value in _state(whole).items())
