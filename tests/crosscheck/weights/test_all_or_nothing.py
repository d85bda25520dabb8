"""Writes into torch modules are all or nothing: everything is checked and converted before the first
tensor changes, so a failed load or copy leaves every parameter AND buffer bit for bit as it was. A
meta-device module is an error either way (nothing to write into, nothing to read)."""

from __future__ import annotations

import re

import pytest
import safetensors.torch
import torch
from flax import nnx
from hypothesis import given
from hypothesis import strategies as st

import jaxlin
from crosscheck.weights import WeightsError, copy_jax_to_torch, copy_torch_to_jax, load_weights, save_weights
from tests.crosscheck.weights._snapshots import snapshot


def _trained_batch_norm(seed: int) -> torch.nn.BatchNorm1d:
    torch.manual_seed(seed)
    bn = torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    bn(torch.randn(16, 3) * 2 + 1)  # running statistics and num_batches_tracked = 1
    return bn


def test_a_batch_norm_file_written_by_safetensors_torch_loads_every_tensor(tmp_path):
    source = _trained_batch_norm(0)
    safetensors.torch.save_file(source.state_dict(), tmp_path / "bn.safetensors")
    target = torch.nn.BatchNorm1d(3)
    load_weights(target, tmp_path / "bn.safetensors")
    assert snapshot(target) == snapshot(source)
    assert target.num_batches_tracked.shape == () and target.num_batches_tracked.item() == 1


def _expanded(module: torch.nn.Module, name: str) -> None:
    """Replace a parameter or buffer by a stride-0 expansion of its first element."""
    tensor = getattr(module, name)
    expanded = tensor.detach()[:1].clone().expand(tensor.shape)
    if isinstance(tensor, torch.nn.Parameter):
        setattr(module, name, torch.nn.Parameter(expanded))
    else:
        setattr(module, name, expanded)


def test_a_load_into_a_batch_norm_with_an_expanded_buffer_writes_nothing(tmp_path):
    safetensors.torch.save_file(_trained_batch_norm(0).state_dict(), tmp_path / "bn.safetensors")
    target = _trained_batch_norm(1)
    _expanded(target, "running_var")  # after weight, bias and running_mean in the state_dict
    before = snapshot(target)
    with pytest.raises(
        WeightsError,
        match=re.escape("key 'running_var' is expanded (stride 0: several elements at one memory location)")
        + ".*; nothing was written",
    ):
        load_weights(target, tmp_path / "bn.safetensors")
    assert snapshot(target) == before


def test_a_copy_into_a_linear_with_an_expanded_bias_writes_no_weight():
    ours, theirs = jaxlin.Linear(3, 2, rngs=nnx.Rngs(0)), torch.nn.Linear(3, 2)
    _expanded(theirs, "bias")
    before = snapshot(theirs)
    message = (
        "copy_jax_to_torch from jaxlin.Linear(in_features=3, out_features=2): torch.Linear(in_features=3, "
        "out_features=2, bias=True) cannot be written: key 'bias' is expanded"
    )
    with pytest.raises(WeightsError, match=re.escape(message)):
        copy_jax_to_torch(ours, theirs)
    assert snapshot(theirs) == before


def test_a_module_of_inference_tensors_is_refused_before_anything_changes(tmp_path):
    save_weights(torch.nn.Linear(3, 2), tmp_path / "w.safetensors")
    with torch.inference_mode():
        target = torch.nn.Linear(3, 2)
    before = snapshot(target)
    with pytest.raises(
        WeightsError, match=r"keys 'weight', 'bias' are inference tensors \(made under torch.inference_mode\)"
    ):
        load_weights(target, tmp_path / "w.safetensors")
    assert snapshot(target) == before


class Stack(torch.nn.Module):
    """Parameters and buffers of several dtypes, integer counters included."""

    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.first = torch.nn.Linear(4, 3)
        self.norm = torch.nn.BatchNorm1d(3)
        self.last = torch.nn.Linear(3, 2, dtype=torch.float64)
        self.norm(torch.randn(8, 3))


KEYS = list(Stack(0).state_dict())


@given(broken=st.sampled_from(KEYS), how=st.sampled_from(["expanded", "shape", "dtype"]))
def test_any_failed_load_leaves_every_parameter_and_buffer_bitwise_unchanged(tmp_path_factory, broken, how):
    path = tmp_path_factory.mktemp("w") / "w.safetensors"
    state = {key: t.clone() for key, t in Stack(0).state_dict().items()}
    target = Stack(1)
    if how == "expanded" and target.state_dict()[broken].numel() == 1:
        how = "shape"  # a 0-d counter cannot be expanded
    if how == "expanded":
        owner, _, name = broken.rpartition(".")
        _expanded(target.get_submodule(owner), name)
    elif how == "shape":
        state[broken] = torch.zeros(7, dtype=state[broken].dtype)
    else:
        state[broken] = state[broken].to(torch.float16)
    safetensors.torch.save_file(state, path)
    before = snapshot(target)
    with pytest.raises(WeightsError, match=re.escape(repr(broken))):
        load_weights(target, path)
    assert snapshot(target) == before


# ---------------------------------------------------------------- the meta device


def _meta_linear() -> torch.nn.Linear:
    with torch.device("meta"):
        return torch.nn.Linear(3, 2)


def test_a_copy_into_a_meta_module_is_an_error_not_a_silent_no_op():
    with pytest.raises(
        WeightsError,
        match=re.escape(
            "keys 'weight', 'bias' are on the meta device (a shape without data), so there is nowhere to write "
            "the values (module.to_empty(device='cpu') gives the module memory); nothing was written"
        ),
    ):
        copy_jax_to_torch(jaxlin.Linear(3, 2, rngs=nnx.Rngs(0)), _meta_linear())


def test_a_load_into_a_meta_module_is_an_error(tmp_path):
    save_weights(torch.nn.Linear(3, 2), tmp_path / "w.safetensors")
    with pytest.raises(
        WeightsError, match=re.escape(f"{tmp_path / 'w.safetensors'}: torch.Linear(") + ".*meta device"
    ):
        load_weights(_meta_linear(), tmp_path / "w.safetensors")


def test_a_copy_from_a_meta_module_is_a_weights_error_and_changes_nothing():
    ours = jaxlin.Linear(3, 2, rngs=nnx.Rngs(0))
    before = snapshot(ours)
    message = (
        "copy_torch_to_jax from torch.Linear(in_features=3, out_features=2, bias=True): keys 'weight', 'bias' of "
        "torch.Linear(in_features=3, out_features=2, bias=True) are on the meta device (a shape without data), "
        "so there are no values to copy"
    )
    with pytest.raises(WeightsError, match=re.escape(message)):
        copy_torch_to_jax(_meta_linear(), ours)
    assert snapshot(ours) == before


def test_saving_a_meta_module_is_a_weights_error_and_writes_no_file(tmp_path):
    with pytest.raises(WeightsError, match="so there are no values to save"):
        save_weights(_meta_linear(), tmp_path / "w.safetensors")
    assert not (tmp_path / "w.safetensors").exists()
