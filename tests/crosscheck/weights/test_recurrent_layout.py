"""Recurrent cells: ``nnx.LSTMCell`` ↔ ``nn.LSTMCell``, ``nnx.GRUCell`` ↔ ``nn.GRUCell``,
``nnx.SimpleCell`` ↔ ``nn.RNNCell``. Gates stacked on torch's rows in torch's order (LSTM i, f, g, o;
GRU r, z, n); torch's two biases per gate summed into Flax's one (JAX → torch: the bias on Flax's side,
zeros on the other). Tested by copies and files both ways, one step of both cells on the same input
and state, and ``check`` through small wrappers that call each cell as ``step(x, h[, c])``."""

from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from crosscheck import check
from crosscheck.porting.checking import require_same_weights
from crosscheck.weights import (
    WeightsError,
    copy_jax_to_torch,
    copy_torch_to_jax,
    load_weights,
    save_weights,
    torch_state_of_jax,
)
from tests.crosscheck.weights._round_trips import sample, torch_state

CELLS = {  # name: (torch cell, Flax cell, the torch bias Flax's bias comes back to)
    "lstm": (torch.nn.LSTMCell, nnx.LSTMCell, "bias_hh"),
    "gru": (torch.nn.GRUCell, nnx.GRUCell, "bias_ih"),
    "rnn": (torch.nn.RNNCell, nnx.SimpleCell, "bias_ih"),
}


def _torch_cell(name: str, seed: int = 0):
    torch.manual_seed(seed)
    cell = CELLS[name][0](3, 4)
    if name == "gru":
        with torch.no_grad():
            cell.bias_hh[8:] = 0  # b_hn: Flax's GRUCell has none
    return cell


def _jax_cell(name: str, seed: int = 1):
    return CELLS[name][1](3, 4, rngs=nnx.Rngs(seed))


def _one_step(name, theirs, ours, x, h, c):
    tensors = [torch.from_numpy(a) for a in (x, h, c)]
    with torch.no_grad():
        if name == "lstm":
            expected = [t.numpy() for t in theirs(tensors[0], (tensors[1], tensors[2]))]  # (h', c')
            (new_c, new_h), _ = ours((jnp.asarray(c), jnp.asarray(h)), jnp.asarray(x))  # carry (c, h)
            return expected, [np.asarray(new_h), np.asarray(new_c)]
        expected = [theirs(tensors[0], tensors[1]).numpy()]
        return expected, [np.asarray(ours(jnp.asarray(h), jnp.asarray(x))[0])]


@pytest.mark.parametrize("name", list(CELLS))
def test_a_copied_cell_computes_the_same_step(name):
    theirs, ours = _torch_cell(name), _jax_cell(name)
    copy_torch_to_jax(theirs, ours)
    x, h, c = sample(2, 3), sample(2, 4, seed=1), sample(2, 4, seed=2)
    expected, actual = _one_step(name, theirs, ours, x, h, c)
    for e, a in zip(expected, actual, strict=True):
        np.testing.assert_allclose(a, e, rtol=0, atol=4 * np.finfo(np.float32).eps * max(1, np.abs(e).max()))


@pytest.mark.parametrize("name", list(CELLS))
def test_biases_sum_one_way_and_sit_on_flaxs_side_the_other(name, tmp_path):
    theirs, ours = _torch_cell(name), _jax_cell(name)
    copy_torch_to_jax(theirs, ours)
    home = CELLS[name][2]
    other = "bias_ih" if home == "bias_hh" else "bias_hh"
    summed = theirs.bias_ih.detach() + theirs.bias_hh.detach()  # float32, as the copy sums them
    state = torch_state_of_jax(ours)
    np.testing.assert_array_equal(state[home], summed.numpy())
    np.testing.assert_array_equal(state[other], np.zeros(state[other].shape, np.float32))
    for key in ("weight_ih", "weight_hh"):  # weights: bit for bit
        np.testing.assert_array_equal(state[key], theirs.state_dict()[key].numpy())
    back = _torch_cell(name, seed=5)
    copy_jax_to_torch(ours, back)
    chex.assert_trees_all_equal(torch_state(back), state)
    again = _jax_cell(name, seed=7)  # JAX -> torch -> JAX: exact (the bias plus zeros)
    copy_torch_to_jax(back, again)
    chex.assert_trees_all_equal(torch_state_of_jax(again), state)
    save_weights(ours, tmp_path / "jax.safetensors")
    from_file = _torch_cell(name, seed=9)
    load_weights(from_file, tmp_path / "jax.safetensors")
    chex.assert_trees_all_equal(torch_state(from_file), state)
    save_weights(theirs, tmp_path / "torch.safetensors")
    fresh = _jax_cell(name, seed=11)
    load_weights(fresh, tmp_path / "torch.safetensors")
    chex.assert_trees_all_equal(torch_state_of_jax(fresh), state)


def test_gate_order_is_torchs_on_the_rows():
    lstm = nnx.LSTMCell(3, 4, rngs=nnx.Rngs(0))
    state = torch_state_of_jax(lstm)
    for gate, (i, h) in enumerate(zip(("ii", "if_", "ig", "io"), ("hi", "hf", "hg", "ho"), strict=True)):
        rows = slice(4 * gate, 4 * gate + 4)  # i, f, g, o
        np.testing.assert_array_equal(state["weight_ih"][rows], np.asarray(getattr(lstm, i).kernel[...]).T)
        np.testing.assert_array_equal(state["weight_hh"][rows], np.asarray(getattr(lstm, h).kernel[...]).T)
        np.testing.assert_array_equal(state["bias_hh"][rows], np.asarray(getattr(lstm, h).bias[...]))
    gru = nnx.GRUCell(3, 4, rngs=nnx.Rngs(0))  # r, z, n: the columns of dense_i, as Flax splits them
    np.testing.assert_array_equal(torch_state_of_jax(gru)["weight_ih"], np.asarray(gru.dense_i.kernel[...]).T)


def test_a_gru_with_a_hidden_n_bias_has_no_flax_twin():
    theirs, ours = torch.nn.GRUCell(3, 4), _jax_cell("gru")
    before = torch_state_of_jax(ours)
    with pytest.raises(
        WeightsError,
        match=r"nnx.GRUCell\(in_features=3, hidden_features=4\): expected "
        r"bias_hh\[8:12\] \(b_hn, the n gate's hidden bias\) to be zero, got values up to",
    ):
        copy_torch_to_jax(theirs, ours)
    chex.assert_trees_all_equal(torch_state_of_jax(ours), before)  # nothing written


def test_a_torch_cell_without_biases_names_the_keys():
    with pytest.raises(WeightsError, match=r"bias_ih"):
        copy_torch_to_jax(torch.nn.LSTMCell(3, 4, bias=False), _jax_cell("lstm"))


def test_activations_and_the_residual_are_noted():
    ours = nnx.SimpleCell(3, 4, residual=True, activation_fn=nnx.relu, rngs=nnx.Rngs(0))
    assert require_same_weights(ours, torch.nn.RNNCell(3, 4)).notes == [
        "(root): activation_fn relu in Flax vs nonlinearity 'tanh' in PyTorch",
        "(root): Flax adds the carry before the activation (residual=True); PyTorch's RNNCell does not",
    ]
    relu = nnx.SimpleCell(3, 4, activation_fn=nnx.relu, rngs=nnx.Rngs(0))
    assert require_same_weights(relu, torch.nn.RNNCell(3, 4, nonlinearity="relu")).notes == []
    lstm = nnx.LSTMCell(3, 4, gate_fn=nnx.relu, rngs=nnx.Rngs(0))
    assert require_same_weights(lstm, torch.nn.LSTMCell(3, 4)).notes == [
        "(root): Flax gates with relu (gate_fn); PyTorch with sigmoid"
    ]


class JaxStep(nnx.Module):
    """One step of a Flax cell called as torch's: ``step(x, h)`` or ``step(x, h, c)`` -> ``h'`` or
    ``(h', c')``."""

    def __init__(self, cell):
        self.cell = cell

    def __call__(self, x, h, c=None):
        if c is None:
            return self.cell(h, x)[0]
        (new_c, new_h), _ = self.cell((c, h), x)
        return new_h, new_c


class TorchStep(torch.nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x, h, c=None):
        return self.cell(x, h) if c is None else self.cell(x, (h, c))


@pytest.mark.parametrize("name", list(CELLS))
def test_check_passes_one_step_with_the_zero_bias_frozen(name):
    ours, theirs = JaxStep(_jax_cell(name)), TorchStep(_torch_cell(name))
    copy_jax_to_torch(ours, theirs)
    home = CELLS[name][2]
    getattr(theirs.cell, "bias_ih" if home == "bias_hh" else "bias_hh").requires_grad_(False)
    inputs = [sample(2, 3), sample(2, 4, seed=1)] + ([sample(2, 4, seed=2)] if name == "lstm" else [])
    result = check(ours, theirs, *inputs)
    assert result.passed, result
    assert result.frozen == ["cell.bias_ih" if home == "bias_hh" else "cell.bias_hh"]
