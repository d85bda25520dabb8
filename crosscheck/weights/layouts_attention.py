"""Layout rule of ``nnx.MultiHeadAttention`` ↔ ``nn.MultiheadAttention`` (registered by
:mod:`crosscheck.weights.layouts`): one rule that owns the layer's children (``query``, ``key``,
``value``, ``out``, each an ``nnx.LinearGeneral``), so they are never mapped on their own.

With ``E = qkv_features = heads · head_dim`` (torch's ``embed_dim``; ``head_dim = E / heads``):

- ``in_proj_weight (3E, in)`` is q; k; v stacked on rows: rows ``0:E`` are ``query.kernel (in, heads,
  head_dim)`` reshaped to ``(in, E)`` and transposed, rows ``E:2E`` the key's, ``2E:3E`` the value's.
  Head ``h`` is rows ``h·head_dim:(h+1)·head_dim`` of each of q, k, v: torch views a projection
  ``(..., E)`` as ``(..., heads, head_dim)``, row-major, as Flax's kernel is laid out.
- ``in_proj_bias (3E,)`` is ``query.bias``, ``key.bias``, ``value.bias`` (each ``(heads, head_dim)``)
  flattened and concatenated.
- ``out_proj.weight (out, E)`` is ``out.kernel (heads, head_dim, out)`` reshaped to ``(E, out)`` and
  transposed; ``out_proj.bias`` is ``out.bias``.
- Key and value inputs of another width (Flax ``in_kv_features``, torch ``kdim = vdim``) are torch's
  separate ``q_proj_weight (E, in)``, ``k_proj_weight (E, kv)``, ``v_proj_weight (E, kv)`` beside the
  packed ``in_proj_bias``, exactly when torch uses them (a width other than ``embed_dim``).
- ``use_bias=False`` is ``bias=False`` (no ``in_proj_bias``, no ``out_proj.bias``).

Refused with :class:`WeightsError`: ``normalize_qk=True`` (a LayerNorm on q and k that torch's layer
lacks) and ``num_kv_heads != num_heads`` (grouped key/value heads). Noted, as the weights cannot show
them: a different number of heads (the same arrays, split otherwise), ``batch_first=False``, the
dropout rates, torch's ``add_zero_attn``, Flax's ``decode`` and a custom ``attention_fn``.

>>> attention = nnx.MultiHeadAttention(2, 8, decode=False, rngs=nnx.Rngs(0))
>>> [rule.torch_name for rule in _attention_params(attention)]
['in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias']
"""

from __future__ import annotations

import numpy as np
from flax import nnx

from crosscheck.weights.fit import WeightsError
from crosscheck.weights.rules import Layout, ParamRule, differs


def describe_attention(module) -> str:
    """``nnx.MultiHeadAttention(num_heads=2, in_features=8, ...)``: the layer as messages name it.

    >>> describe_attention(nnx.MultiHeadAttention(2, 8, decode=False, rngs=nnx.Rngs(0)))[:55]
    'nnx.MultiHeadAttention(num_heads=2, in_features=8, qkv_'
    """
    return (
        f"nnx.MultiHeadAttention(num_heads={module.num_heads}, in_features={module.in_features}, "
        f"qkv_features={module.qkv_features}, out_features={module.out_features}, "
        f"in_kv_features={module.in_kv_features}, num_kv_heads={module.num_kv_heads}, "
        f"normalize_qk={module.normalize_qk})"
    )


def _stacked_projections(inputs: int, heads: int, head_dim: int):
    """``(to_torch, from_torch)``: kernels ``(n, in, heads, head_dim)`` stacked <-> ``(n·E, in)``."""
    width = heads * head_dim

    def to_torch(a: np.ndarray) -> np.ndarray:
        count = a.shape[0]
        rows = np.transpose(np.reshape(a, (count, inputs, width)), (0, 2, 1))
        return np.reshape(rows, (count * width, inputs))

    def from_torch(w: np.ndarray) -> np.ndarray:
        count = w.shape[0] // width
        return np.reshape(np.transpose(np.reshape(w, (count, width, inputs)), (0, 2, 1)),
                          (count, inputs, heads, head_dim))  # fmt: skip

    return to_torch, from_torch


def _one_projection(inputs: int, heads: int, head_dim: int):
    """``(to_torch, from_torch)``: one kernel ``(in, heads, head_dim)`` <-> ``(E, in)``."""
    stacked_to, stacked_from = _stacked_projections(inputs, heads, head_dim)
    return (lambda a: stacked_to(a[None])), (lambda w: stacked_from(w)[0])


def _attention_params(module) -> tuple[ParamRule, ...]:
    heads, head_dim = module.num_heads, module.head_dim
    width, inputs, outputs = heads * head_dim, module.in_features, module.out_features
    if module.normalize_qk or module.num_kv_heads != heads:
        what = (
            "normalize_qk=True adds a LayerNorm on the queries and keys (query_ln, key_ln)"
            if module.normalize_qk
            else f"num_kv_heads={module.num_kv_heads} shares key/value heads between query heads"
        )
        raise WeightsError(
            f"{describe_attention(module)}: {what}, which torch.nn.MultiheadAttention has no place for; "
            f"expected normalize_qk=False and num_kv_heads=num_heads={heads}"
        )
    if module.in_kv_features == inputs:
        rules = [ParamRule("{query,key,value}.kernel", "in_proj_weight",
                           *_stacked_projections(inputs, heads, head_dim),
                           parts=("query.kernel", "key.kernel", "value.kernel"))]  # fmt: skip
    else:
        sizes = {"q": inputs, "k": module.in_kv_features, "v": module.in_kv_features}
        rules = [
            ParamRule(f"{name}.kernel", f"{name[0]}_proj_weight",
                      *_one_projection(sizes[name[0]], heads, head_dim), parts=(f"{name}.kernel",))
            for name in ("query", "key", "value")
        ]  # fmt: skip
    rules += [
        ParamRule("{query,key,value}.bias", "in_proj_bias", lambda a: np.reshape(a, (3 * width,)),
                  lambda b: np.reshape(b, (3, heads, head_dim)),
                  parts=("query.bias", "key.bias", "value.bias")),
        ParamRule("out.kernel", "out_proj.weight", lambda a: np.reshape(a, (width, outputs)).T,
                  lambda w: np.reshape(w.T, (heads, head_dim, outputs)), parts=("out.kernel",)),
        ParamRule("out.bias", "out_proj.bias", parts=("out.bias",)),
    ]  # fmt: skip
    return tuple(rules)


def _attention_notes(ours, theirs) -> list[str]:
    notes = []
    heads = getattr(theirs, "num_heads", None)
    if heads is not None and heads != ours.num_heads:
        notes.append(
            f"num_heads {ours.num_heads} in Flax vs num_heads {heads} in PyTorch: the same arrays, split "
            f"into heads of {ours.head_dim} vs {theirs.head_dim} features"
        )
    if getattr(theirs, "batch_first", True) is False:
        notes.append(
            "PyTorch takes (seq, batch, features) (batch_first=False); Flax takes (batch..., seq, features)"
        )
    dropout = getattr(theirs, "dropout", None)
    if dropout is not None and differs(ours.dropout_rate, dropout) and (ours.dropout_rate or dropout):
        notes.append(
            f"dropout_rate {ours.dropout_rate:g} in Flax vs dropout {dropout:g} in PyTorch; only training "
            "runs read it"
        )
    if getattr(theirs, "add_zero_attn", False):
        notes.append("PyTorch appends a zero key and value (add_zero_attn=True); Flax does not")
    if ours.decode:
        notes.append("Flax decodes from its cache, one position a call (decode=True); PyTorch attends to all")
    if ours.attention_fn is not nnx.dot_product_attention:
        notes.append(
            f"Flax computes attention with {getattr(ours.attention_fn, '__name__', ours.attention_fn)!s}, "
            "not nnx.dot_product_attention (softmax(q·kᵀ/√head_dim)·v, as PyTorch)"
        )
    return notes


MULTI_HEAD_ATTENTION = Layout(
    "nnx.MultiHeadAttention",
    (nnx.MultiHeadAttention,),
    (),
    ("MultiheadAttention",),
    notes=_attention_notes,
    params_of=_attention_params,
)
ATTENTION_LAYOUTS = (MULTI_HEAD_ATTENTION,)
