"""Layout rules of the recurrent cells both frameworks ship (registered by
:mod:`crosscheck.weights.layouts`): ``nnx.LSTMCell`` ↔ ``nn.LSTMCell``, ``nnx.GRUCell`` ↔
``nn.GRUCell`` and ``nnx.SimpleCell`` ↔ ``nn.RNNCell``. Each rule owns the cell's ``nnx.Linear``
children.

Gate order (torch stacks the gates on the rows of ``weight_ih (G·H, in)`` and ``weight_hh (G·H, H)``):

- LSTM: ``i, f, g, o``. Rows ``0:H`` of ``weight_ih`` are ``ii.kernel.T``, then ``if_``, ``ig``, ``io``;
  ``weight_hh`` likewise from ``hi``, ``hf``, ``hg``, ``ho``.
- GRU: ``r, z, n``: ``weight_ih = dense_i.kernel.T`` and ``weight_hh = dense_h.kernel.T`` (Flax's
  kernels ``(in, 3H)`` hold the gates in that order on their columns).
- RNN: one gate: ``weight_ih = dense_i.kernel.T``, ``weight_hh = dense_h.kernel.T``.

Biases: torch has two per gate (``bias_ih``, ``bias_hh``), Flax one, and only their sum reaches the
function (torch: ``W_ih x + b_ih + W_hh h + b_hh``), except in the GRU's ``n`` gate:

- torch → JAX: the Flax bias is ``bias_ih + bias_hh``, summed in the parameter dtype (one rounding:
  not bit for bit the two separate additions torch makes). LSTM: into ``hi/hf/hg/ho.bias``; GRU and
  RNN: into ``dense_i.bias``.
- JAX → torch: the Flax bias goes to the side Flax keeps it on (LSTM ``bias_hh``, GRU and RNN
  ``bias_ih``) and the other side is zeros: exact. A torch → JAX → torch round trip thus moves the
  bias to one side.
- GRU: torch's ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``; Flax's GRUCell has no ``b_hn``
  (``n = tanh(W_in x + b_in + r * (W_hn h))``), so ``bias_hh[2H:3H]`` must be zero: any other value is a
  :class:`WeightsError` (no Flax GRUCell computes that function).

Gradients: the zero side's gradient is not the Flax bias's (torch gives ``bias_ih`` and ``bias_hh``
the same gradient); ``check`` a cell with that torch bias frozen (``requires_grad_(False)``).
Carries: Flax's LSTM carry is ``(c, h)``, torch's ``hx`` is ``(h, c)``; Flax calls ``cell(carry, x)``,
torch ``cell(x, hx)``.

>>> [rule.torch_name for rule in _gru_params(nnx.GRUCell(3, 4, rngs=nnx.Rngs(0)))]
['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh']
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx

from crosscheck.weights.fit import WeightsError
from crosscheck.weights.rules import Layout, Packed, ParamRule, stacked, swap_last_two, variable_at

LSTM_GATES = ("i", "f", "g", "o")
_LSTM_INPUT, _LSTM_HIDDEN = ("ii", "if_", "ig", "io"), ("hi", "hf", "hg", "ho")
_SIDES = ("bias_ih", "bias_hh")


def describe_cell(module) -> str:
    """``nnx.GRUCell(in_features=3, hidden_features=4)``: a cell as messages name it.

    >>> describe_cell(nnx.GRUCell(3, 4, rngs=nnx.Rngs(0)))
    'nnx.GRUCell(in_features=3, hidden_features=4)'
    """
    sizes = f"in_features={module.in_features}, hidden_features={module.hidden_features}"
    return f"nnx.{type(module).__name__}({sizes})"


def _gates_to_weight(a: np.ndarray) -> np.ndarray:
    """Kernels ``(gates, in, H)`` stacked -> torch ``(gates·H, in)``, gate after gate on the rows."""
    return np.reshape(np.transpose(a, (0, 2, 1)), (a.shape[0] * a.shape[2], a.shape[1]))


def _weight_to_gates(gates: int):
    def from_torch(w: np.ndarray) -> np.ndarray:
        return np.transpose(np.reshape(w, (gates, w.shape[0] // gates, w.shape[1])), (0, 2, 1))

    return from_torch


def _bias_rules(parts: tuple[str, ...], home: str, from_hidden=None) -> tuple[ParamRule, ParamRule]:
    """``bias_ih`` and ``bias_hh``: two torch biases summed into the one Flax bias at ``parts`` (flat,
    in torch's gate order); ``home`` is the torch side that gets it back, the other reads zeros."""

    def proxy_for(side: str):
        def proxy(module, shared: dict):
            found = [variable_at(module, part) for part in parts]
            if any(v is None for v in found):
                return None
            total = found[0] if len(found) == 1 else stacked(found)
            written = shared.setdefault("biases", {})

            def value(which: str):
                if which in written:
                    return written[which]
                flat = jnp.reshape(total[...], (-1,))
                return flat if which == home else jnp.zeros_like(flat)

            def write(new):
                new = jnp.reshape(jnp.asarray(new), (-1,))
                other = value(next(s for s in _SIDES if s != side))  # before this side is recorded
                written[side] = new
                total[...] = jnp.reshape(new + other, jnp.shape(total[...]))

            return Packed(lambda: value(side), write)

        return proxy

    name = "+".join(parts) if len(parts) == 1 else "{" + ",".join(p.split(".")[0] for p in parts) + "}.bias"
    return tuple(
        ParamRule(name, side, parts=parts, proxy=proxy_for(side),
                  from_torch=from_hidden if (side == "bias_hh" and from_hidden) else (lambda b: b))
        for side in _SIDES
    )  # fmt: skip


def _lstm_params(module) -> tuple[ParamRule, ...]:
    return (
        ParamRule("{ii,if_,ig,io}.kernel", "weight_ih", _gates_to_weight, _weight_to_gates(4),
                  parts=tuple(f"{n}.kernel" for n in _LSTM_INPUT)),
        ParamRule("{hi,hf,hg,ho}.kernel", "weight_hh", _gates_to_weight, _weight_to_gates(4),
                  parts=tuple(f"{n}.kernel" for n in _LSTM_HIDDEN)),
        *_bias_rules(tuple(f"{n}.bias" for n in _LSTM_HIDDEN), home="bias_hh"),
    )  # fmt: skip


def _no_hidden_n_bias(module):
    """``from_torch`` of a GRU's ``bias_hh``: WeightsError unless its ``n`` rows are zero."""
    hidden = module.hidden_features

    def from_torch(b: np.ndarray) -> np.ndarray:
        n = np.asarray(b)[2 * hidden :]
        if np.any(n != 0):
            raise WeightsError(
                f"{describe_cell(module)}: expected bias_hh[{2 * hidden}:{3 * hidden}] (b_hn, the n gate's "
                f"hidden bias) to be zero, got values up to {float(np.max(np.abs(n))):.3g}; torch computes "
                "n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) and Flax's GRUCell has no b_hn, so this "
                "GRU has no Flax twin"
            )
        return b

    return from_torch


def _gru_params(module) -> tuple[ParamRule, ...]:
    return (
        ParamRule("dense_i.kernel", "weight_ih", swap_last_two, swap_last_two, parts=("dense_i.kernel",)),
        ParamRule("dense_h.kernel", "weight_hh", swap_last_two, swap_last_two, parts=("dense_h.kernel",)),
        *_bias_rules(("dense_i.bias",), home="bias_ih", from_hidden=_no_hidden_n_bias(module)),
    )


def _simple_params(module) -> tuple[ParamRule, ...]:
    return (
        ParamRule("dense_i.kernel", "weight_ih", swap_last_two, swap_last_two, parts=("dense_i.kernel",)),
        ParamRule("dense_h.kernel", "weight_hh", swap_last_two, swap_last_two, parts=("dense_h.kernel",)),
        *_bias_rules(("dense_i.bias",), home="bias_ih"),
    )


def _named(function) -> str:
    for name in ("sigmoid", "tanh", "relu"):
        if function is getattr(nnx, name):
            return name
    return getattr(function, "__name__", repr(function))


def _gate_notes(ours, theirs) -> list[str]:
    notes = []
    if _named(ours.gate_fn) != "sigmoid":
        notes.append(f"Flax gates with {_named(ours.gate_fn)} (gate_fn); PyTorch with sigmoid")
    if _named(ours.activation_fn) != "tanh":
        notes.append(f"Flax activates with {_named(ours.activation_fn)} (activation_fn); PyTorch with tanh")
    return notes


def _simple_notes(ours, theirs) -> list[str]:
    notes = []
    torch_activation = getattr(theirs, "nonlinearity", "tanh")
    flax_activation = _named(ours.activation_fn)
    if flax_activation != torch_activation:
        notes.append(
            f"activation_fn {flax_activation} in Flax vs nonlinearity {torch_activation!r} in PyTorch"
        )
    if ours.residual:
        notes.append("Flax adds the carry before the activation (residual=True); PyTorch's RNNCell does not")
    return notes


LSTM_CELL = Layout(
    "nnx.LSTMCell", (nnx.LSTMCell,), (), ("LSTMCell",), notes=_gate_notes, params_of=_lstm_params
)
GRU_CELL = Layout("nnx.GRUCell", (nnx.GRUCell,), (), ("GRUCell",), notes=_gate_notes, params_of=_gru_params)
SIMPLE_CELL = Layout(
    "nnx.SimpleCell", (nnx.SimpleCell,), (), ("RNNCell",), notes=_simple_notes, params_of=_simple_params
)
RECURRENT_LAYOUTS = (LSTM_CELL, GRU_CELL, SIMPLE_CELL)
