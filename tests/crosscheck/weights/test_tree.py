"""Module trees by attribute path: a user's model of nested modules and lists maps onto a torch model
key for key; rename (path pieces or a callable) where names differ; every unmapped or doubly mapped
parameter in one error; load_weights takes a submodule out of a whole checkpoint (prefix, strict)."""

from __future__ import annotations

import re

import chex
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import jaxlin
from crosscheck.weights import (
    WeightsError,
    copy_jax_to_torch,
    copy_torch_to_jax,
    load_weights,
    numpy_of_torch,
    plan,
    save_weights,
    torch_state_of_jax,
)
from tests._helpers import params_of


class JaxBlock(nnx.Module):
    def __init__(self, rngs: nnx.Rngs, *, names=("proj", "norm")):
        setattr(self, names[0], jaxlin.Linear(6, 6, rngs=rngs))
        setattr(self, names[1], nnx.LayerNorm(6, rngs=rngs))


class JaxModel(nnx.Module):
    def __init__(self, rngs: nnx.Rngs, **names):
        self.embed = nnx.Embed(11, 6, rngs=rngs)
        self.blocks = nnx.List([JaxBlock(rngs, **names) for _ in range(2)])
        self.head = nnx.Linear(6, 3, rngs=rngs)


class TorchBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj, self.norm = torch.nn.Linear(6, 6), torch.nn.LayerNorm(6)


class TorchModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(11, 6)
        self.blocks = torch.nn.ModuleList([TorchBlock() for _ in range(2)])
        self.head = torch.nn.Linear(6, 3)


def _torch_bits(module) -> dict:
    return {key: numpy_of_torch(t) for key, t in module.state_dict().items()}


def test_a_tree_maps_by_attribute_path_in_state_dict_order():
    keys = [entry.key for entry in plan(JaxModel(nnx.Rngs(0)))]
    assert keys == list(TorchModel().state_dict())
    assert keys[:4] == ["embed.weight", "blocks.0.proj.weight", "blocks.0.proj.bias", "blocks.0.norm.weight"]


def test_trees_copy_both_ways_and_round_trip_through_a_file(tmp_path):
    theirs, ours = TorchModel(), JaxModel(nnx.Rngs(0))
    copy_torch_to_jax(theirs, ours)
    chex.assert_trees_all_equal(torch_state_of_jax(ours), _torch_bits(theirs))
    save_weights(ours, tmp_path / "model.safetensors")
    back = TorchModel()
    load_weights(back, tmp_path / "model.safetensors")
    chex.assert_trees_all_equal(_torch_bits(back), _torch_bits(theirs))
    again = TorchModel()
    copy_jax_to_torch(ours, again)
    chex.assert_trees_all_equal(_torch_bits(again), _torch_bits(theirs))


@pytest.mark.parametrize(
    "rename",
    [{"dense.": "proj.", "ln.": "norm."}, lambda key: key.replace("dense", "proj").replace(".ln.", ".norm.")],
)
def test_rename_maps_differing_names_as_path_pieces_or_with_a_callable(rename):
    ours = JaxModel(nnx.Rngs(0), names=("dense", "ln"))
    theirs = TorchModel()
    copy_torch_to_jax(theirs, ours, rename=rename)
    assert np.array_equal(
        np.asarray(ours.blocks[1].dense.kernel[...]), numpy_of_torch(theirs.blocks[1].proj.weight).T
    )


class Unmapped(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.a, self.b = jaxlin.Linear(2, 2, rngs=rngs), jaxlin.Linear(2, 2, rngs=rngs)
        self.gain, self.offset = nnx.Param(jnp.ones(2)), nnx.Param(jnp.zeros(2))


def test_every_unmapped_and_doubly_mapped_parameter_is_listed_in_one_error_before_anything_is_written():
    module = Unmapped(nnx.Rngs(0))
    before = params_of(module)
    message = re.escape(
        "Unmapped: no layout rule maps 'gain', 'offset'; two or more parameters map to 'x.bias', 'x.weight'"
    )
    with pytest.raises(WeightsError, match=message):
        copy_torch_to_jax(torch.nn.Linear(2, 2), module, rename={"a.": "x.", "b.": "x."})
    chex.assert_trees_all_equal(params_of(module), before)


def test_prefix_takes_a_submodule_out_of_a_whole_checkpoint_and_strict_false_lists_the_rest(tmp_path):
    theirs = TorchModel()
    save_weights(theirs, tmp_path / "whole.safetensors")
    head = nnx.Linear(6, 3, rngs=nnx.Rngs(1))
    loaded = load_weights(head, tmp_path / "whole.safetensors", prefix="head.", strict=False)
    assert np.array_equal(np.asarray(head.kernel[...]), numpy_of_torch(theirs.head.weight).T)
    assert loaded.ignored == sorted(
        key for key in theirs.state_dict() if not key.startswith("head.")
    )  # file order
    block = JaxBlock(nnx.Rngs(2))
    load_weights(block, tmp_path / "whole.safetensors", prefix="blocks.1.", strict=False)
    assert np.array_equal(np.asarray(block.norm.scale[...]), numpy_of_torch(theirs.blocks[1].norm.weight))


def test_strict_prefix_loading_names_the_other_keys_and_suggests_strict_false(tmp_path):
    save_weights(TorchModel(), tmp_path / "whole.safetensors")
    head = nnx.Linear(6, 3, rngs=nnx.Rngs(1))
    before = params_of(head)
    with pytest.raises(
        WeightsError,
        match=r"unexpected keys 'blocks.0.norm.bias', .*'embed.weight'; expected the keys starting with 'head.' to be exactly 'head.weight', 'head.bias' for flax.Linear; pass strict=False to ignore the others",
    ):
        load_weights(head, tmp_path / "whole.safetensors", prefix="head.")
    with pytest.raises(WeightsError, match=r"missing keys 'tail.weight', 'tail.bias'"):
        load_weights(head, tmp_path / "whole.safetensors", prefix="tail.", strict=False)
    chex.assert_trees_all_equal(params_of(head), before)
