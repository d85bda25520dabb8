"""0-d tensors stay 0-d (a BatchNorm's ``num_batches_tracked``, a scalar parameter), a prefix is whole
path pieces, and ``rename=`` applies to a torch module's own keys."""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.torch
import torch
from flax import nnx

from crosscheck.weights import (
    Layout,
    ParamRule,
    WeightsError,
    copy_jax_to_torch,
    copy_torch_to_jax,
    layouts,
    load_weights,
    numpy_of_torch,
    register_layout,
    save_weights,
    torch_of_numpy,
)
from crosscheck.weights.files import header, write
from tests.crosscheck.weights._snapshots import snapshot


def test_torch_of_numpy_keeps_a_0d_array_0d():
    assert torch_of_numpy(np.float32(2.5)).shape == () and torch_of_numpy(np.array(3)).item() == 3


def test_a_batch_norm_saved_by_crosscheck_loads_back_with_its_0d_counter(tmp_path):
    source = torch.nn.BatchNorm1d(3)
    source(torch.randn(8, 3))  # running statistics and num_batches_tracked = 1
    save_weights(source, tmp_path / "bn.safetensors")
    assert header(tmp_path / "bn.safetensors")["num_batches_tracked"].shape == ()
    target = torch.nn.BatchNorm1d(3)
    load_weights(target, tmp_path / "bn.safetensors")
    assert snapshot(target) == snapshot(source)


def test_a_0d_array_is_written_0d():
    import os
    import tempfile

    path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    write(path, {"step": np.array(7, np.int64)}, {})
    assert header(path)["step"].shape == ()


class Gain(nnx.Module):
    """A user's layer with a scalar parameter; its torch twin holds ``gain`` as a 0-d tensor."""

    def __init__(self, value: float = 1.0):
        self.gain = nnx.Param(jnp.asarray(value, jnp.float32))


class TorchGain(torch.nn.Module):
    def __init__(self, value: float = 1.0):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(value))


@pytest.fixture
def gain_layout(monkeypatch):
    """The rule of ``Gain``, registered for one test only (the registry is global)."""
    monkeypatch.setattr(layouts, "_REGISTRY", list(layouts._REGISTRY))
    register_layout(Layout("test.Gain", (Gain,), (ParamRule("gain", "gain"),), ("TorchGain",)))


@pytest.mark.usefixtures("gain_layout")
def test_copies_carry_a_scalar_parameter_both_ways():
    theirs, ours = TorchGain(3.5), Gain()
    copy_torch_to_jax(theirs, ours)
    assert ours.gain[...].shape == () and float(ours.gain[...]) == 3.5
    back = TorchGain()
    copy_jax_to_torch(ours, back)
    assert back.gain.shape == () and back.gain.item() == 3.5


@pytest.mark.usefixtures("gain_layout")
def test_a_scalar_parameter_round_trips_through_a_file(tmp_path):
    save_weights(Gain(2.25), tmp_path / "g.safetensors")
    theirs = TorchGain()
    load_weights(theirs, tmp_path / "g.safetensors")
    assert theirs.gain.item() == 2.25


# ---------------------------------------------------------------- prefixes are whole path pieces


class Blocks(torch.nn.Module):
    def __init__(self, count: int = 11):
        super().__init__()
        self.blocks = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(count)])


@pytest.mark.parametrize("prefix", ["blocks.1", "blocks.1."])
def test_a_prefix_without_its_dot_is_the_same_prefix(tmp_path, prefix):
    source = Blocks()
    save_weights(source, tmp_path / "w.safetensors")
    target = torch.nn.Linear(2, 2)
    load_weights(target, tmp_path / "w.safetensors", prefix=prefix, strict=False)
    assert np.array_equal(numpy_of_torch(target.weight), numpy_of_torch(source.blocks[1].weight))


def test_prefix_blocks_1_never_loads_blocks_10(tmp_path):
    # A Sequential's keys are "0.weight", "0.bias": "blocks.1" + "0.weight" would be block 10's.
    safetensors.torch.save_file(Blocks().state_dict(), tmp_path / "w.safetensors")
    target = torch.nn.Sequential(torch.nn.Linear(2, 2))
    before = snapshot(target)
    with pytest.raises(
        WeightsError,
        match=re.escape(
            "missing keys 'blocks.1.0.weight', 'blocks.1.0.bias'; expected the keys starting with 'blocks.1.'"
        ),
    ):
        load_weights(target, tmp_path / "w.safetensors", prefix="blocks.1", strict=False)
    assert snapshot(target) == before


# ---------------------------------------------------------------- rename= for a torch module


@pytest.mark.parametrize("rename", [{"blocks.": "layers."}, lambda key: key.replace("blocks.", "layers.")])
def test_rename_maps_a_torch_modules_own_keys_in_save_and_load(tmp_path, rename):
    source = Blocks(2)
    save_weights(source, tmp_path / "w.safetensors", rename=rename)
    assert sorted(header(tmp_path / "w.safetensors")) == [
        f"layers.{i}.{n}" for i in (0, 1) for n in ("bias", "weight")
    ]
    target = Blocks(2)
    with pytest.raises(WeightsError, match="missing keys 'blocks.0.weight'"):
        load_weights(target, tmp_path / "w.safetensors")
    loaded = load_weights(target, tmp_path / "w.safetensors", rename=rename)
    assert snapshot(target) == snapshot(source) and sorted(loaded.arrays) == sorted(
        header(tmp_path / "w.safetensors")
    )


def test_a_rename_that_maps_two_torch_keys_to_one_is_refused(tmp_path):
    with pytest.raises(
        WeightsError,
        match=re.escape(
            "tests.Blocks: rename maps two or more keys to 'x.bias', 'x.weight'; each key needs a name"
        ),
    ):
        save_weights(Blocks(2), tmp_path / "w.safetensors", rename=lambda key: "x." + key.rpartition(".")[2])
    assert not (tmp_path / "w.safetensors").exists()
