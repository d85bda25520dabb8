"""Tied weights take one value or none: a torch tensor under two ``state_dict`` keys, an ``nnx.Variable``
at two paths, or a module reachable from two paths, given two different values is a WeightsError naming
the tied keys (in load_weights and both copies); equal values load."""

from __future__ import annotations

import re

import numpy as np
import pytest
import safetensors.torch
import torch
from flax import nnx
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

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
from crosscheck.weights.files import header
from tests.crosscheck.weights._snapshots import snapshot


class TorchTied(torch.nn.Module):
    """A language model's tied input and output embeddings: ``out.weight is emb.weight``."""

    def __init__(self, tied: bool = True):
        super().__init__()
        self.emb, self.out = torch.nn.Embedding(4, 3), torch.nn.Linear(3, 4, bias=False)
        if tied:
            self.out.weight = self.emb.weight


class JaxPair(nnx.Module):
    """Its JAX port: ``embed`` (4, 3) and ``out`` with kernel (3, 4), untied."""

    def __init__(self, seed: int = 0):
        self.emb = nnx.Embed(4, 3, rngs=nnx.Rngs(seed))
        self.out = nnx.Linear(3, 4, use_bias=False, rngs=nnx.Rngs(seed + 1))


def _save(path, emb: np.ndarray, out: np.ndarray) -> None:
    safetensors.torch.save_file(
        {"emb.weight": torch.from_numpy(emb), "out.weight": torch.from_numpy(out)}, path
    )


TIED_MESSAGE = "keys 'emb.weight', 'out.weight' are one tensor in tests.TorchTied (tied weights) but get different values"


def test_loading_two_different_values_into_a_tied_torch_tensor_is_an_error(tmp_path):
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((4, 3)).astype(np.float32)
    _save(tmp_path / "w.safetensors", emb, emb + 1)
    target = TorchTied()
    before = snapshot(target)
    with pytest.raises(
        WeightsError,
        match=re.escape(TIED_MESSAGE) + r".*12 of 12 elements differ, the first at index \(0, 0\)",
    ):
        load_weights(target, tmp_path / "w.safetensors")
    assert snapshot(target) == before


def test_loading_equal_values_into_a_tied_torch_tensor_keeps_the_tie(tmp_path):
    emb = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    _save(tmp_path / "w.safetensors", emb, emb.copy())
    target = TorchTied()
    load_weights(target, tmp_path / "w.safetensors")
    assert target.out.weight is target.emb.weight and np.array_equal(numpy_of_torch(target.emb.weight), emb)


@given(
    emb=hnp.arrays(np.float32, (4, 3), elements=st.floats(-4, 4, width=32)),
    out=hnp.arrays(np.float32, (4, 3), elements=st.floats(-4, 4, width=32)),
)
def test_a_tied_tensor_gets_the_one_value_it_was_given_or_nothing_changes(tmp_path_factory, emb, out):
    path = tmp_path_factory.mktemp("w") / "w.safetensors"
    _save(path, emb, out)
    target = TorchTied()
    before = snapshot(target)
    if emb.view(np.uint32).tolist() == out.view(np.uint32).tolist():
        load_weights(target, path)
        assert numpy_of_torch(target.out.weight).view(np.uint32).tolist() == emb.view(np.uint32).tolist()
    else:
        with pytest.raises(WeightsError, match=re.escape(TIED_MESSAGE)):
            load_weights(target, path)
        assert snapshot(target) == before


def test_copying_an_untied_jax_model_into_a_tied_torch_one_is_an_error():
    ours, theirs = JaxPair(), TorchTied()
    before = snapshot(theirs)
    with pytest.raises(
        WeightsError, match="copy_jax_to_torch from tests.JaxPair: " + re.escape(TIED_MESSAGE)
    ):
        copy_jax_to_torch(ours, theirs)
    assert snapshot(theirs) == before
    ours.out.kernel[...] = ours.emb.embedding[...].T  # tie the values: the copy goes through
    copy_jax_to_torch(ours, theirs)
    assert theirs.out.weight is theirs.emb.weight
    assert np.array_equal(numpy_of_torch(theirs.emb.weight), np.asarray(ours.emb.embedding[...]))


class JaxShared(nnx.Module):
    """Two JAX ties: one variable at two paths (``b.kernel is a.kernel``), one module at two paths."""

    def __init__(self, seed: int = 0):
        self.a = nnx.Linear(2, 2, use_bias=False, rngs=nnx.Rngs(seed))
        self.b = nnx.Linear(2, 2, use_bias=False, rngs=nnx.Rngs(seed + 1))
        self.b.kernel = self.a.kernel
        self.enc = nnx.Linear(2, 2, rngs=nnx.Rngs(seed + 2))
        self.dec = self.enc


class TorchShared(torch.nn.Module):
    def __init__(self, tied: bool = True):
        super().__init__()
        self.a, self.b = torch.nn.Linear(2, 2, bias=False), torch.nn.Linear(2, 2, bias=False)
        self.enc = torch.nn.Linear(2, 2)
        self.dec = self.enc if tied else torch.nn.Linear(2, 2)
        if tied:
            self.b.weight = self.a.weight


def test_a_jax_module_at_two_paths_is_listed_at_both_as_a_state_dict_lists_it():
    keys = [entry.key for entry in plan(JaxShared())]
    assert (
        keys
        == list(TorchShared().state_dict())
        == ["a.weight", "b.weight", "enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    )


@pytest.mark.parametrize(
    "pattern",
    [
        "keys 'a.weight', 'b.weight' are one variable in tests.JaxShared (tied weights)",
        "keys 'enc.weight', 'dec.weight' are one variable in tests.JaxShared (tied weights)",
    ],
)
def test_loading_two_different_values_into_a_tied_jax_variable_is_an_error(tmp_path, pattern):
    state = {key: t.clone() for key, t in TorchShared().state_dict().items()}
    if "'a.weight'" in pattern:
        state["b.weight"] = state["b.weight"] + 1
    else:
        state["dec.weight"] = state["dec.weight"] + 1
    safetensors.torch.save_file(state, tmp_path / "w.safetensors")
    target = JaxShared()
    before = snapshot(target)
    with pytest.raises(WeightsError, match=re.escape(pattern)):
        load_weights(target, tmp_path / "w.safetensors")
    assert snapshot(target) == before


def test_copying_an_untied_torch_model_into_a_tied_jax_one_is_an_error_and_a_tied_one_copies():
    target = JaxShared()
    before = snapshot(target)
    with pytest.raises(
        WeightsError,
        match=re.escape(
            "copy_torch_to_jax from tests.TorchShared: keys 'a.weight', 'b.weight' are one variable"
        ),
    ):
        copy_torch_to_jax(TorchShared(tied=False), target)
    assert snapshot(target) == before
    theirs = TorchShared()
    copy_torch_to_jax(theirs, target)
    assert target.b.kernel is target.a.kernel and target.dec is target.enc
    assert np.array_equal(np.asarray(target.a.kernel[...]), numpy_of_torch(theirs.a.weight).T)


def test_a_tied_model_round_trips_between_frameworks_through_a_file(tmp_path):
    ours = JaxShared(seed=3)
    save_weights(ours, tmp_path / "w.safetensors")
    assert sorted(header(tmp_path / "w.safetensors")) == sorted(TorchShared().state_dict())
    theirs = TorchShared()
    load_weights(theirs, tmp_path / "w.safetensors")
    again = JaxShared(seed=5)
    copy_torch_to_jax(theirs, again)
    assert (
        snapshot(again) == snapshot(ours) and torch_state_of_jax(again).keys() == theirs.state_dict().keys()
    )


def test_two_keys_that_are_different_views_of_one_memory_are_refused(tmp_path):
    target = TorchTied(tied=False)
    target.out.weight = torch.nn.Parameter(target.emb.weight.detach()[:, :2].T)  # (2, 4): a slice, transposed
    target.out.in_features = 2
    state = {key: t.contiguous() for key, t in target.state_dict().items()}
    safetensors.torch.save_file(state, tmp_path / "w.safetensors")
    before = snapshot(target)
    with pytest.raises(
        WeightsError,
        match=re.escape(
            "keys 'emb.weight' and 'out.weight' are different views of the same memory in tests.TorchTied"
        ),
    ):
        load_weights(target, tmp_path / "w.safetensors")
    assert snapshot(target) == before
