"""``nnx.MultiHeadAttention`` ↔ ``nn.MultiheadAttention``: one rule owns the layer's four
``LinearGeneral`` children and packs q, k, v into torch's ``in_proj_weight``. Tested both ways (copies
bit for bit, a safetensors file each way), by running both layers on the same input after a copy, and
by ``check`` through a torch subclass whose ``forward(x)`` is self-attention (torch's layer takes
``(query, key, value)`` and returns a tuple; the subclass keeps its ``state_dict`` keys)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from flax.nnx.nn.attention import dot_product_attention_weights

from crosscheck import check
from crosscheck.porting.checking import require_same_weights
from crosscheck.weights import WeightsError, copy_jax_to_torch, copy_torch_to_jax, torch_state_of_jax
from tests.crosscheck.weights._round_trips import round_trips, sample


class SelfAttention(torch.nn.MultiheadAttention):
    """``nn.MultiheadAttention`` called as ``layer(x)``, returning the attention output alone."""

    def forward(self, x):
        return super().forward(x, x, x, need_weights=False)[0]


def exact_attention(query, key, value, **_):
    """Flax's attention through its weights, in the inputs' dtype (``jax.nn.dot_product_attention``,
    the default path, computes its softmax in float32 even for float64 inputs)."""
    weights = dot_product_attention_weights(query, key)
    return jnp.einsum("...hqk,...khd->...qhd", weights, value)


def _torch_attention(x, layer):
    with torch.no_grad():
        tensors = [torch.from_numpy(a) for a in x]
        return layer(*tensors, need_weights=False)[0].numpy()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kv", [None, 6])
def test_multi_head_attention_maps_both_ways_and_computes_the_same(bias, kv, tmp_path):
    def make_torch():
        return torch.nn.MultiheadAttention(8, 2, batch_first=True, bias=bias, kdim=kv, vdim=kv)

    def make_jax(seed=1):
        return nnx.MultiHeadAttention(2, 8, in_kv_features=kv, use_bias=bias, decode=False,
                                      rngs=nnx.Rngs(seed))  # fmt: skip

    theirs, ours = make_torch(), make_jax(0)
    round_trips(theirs, ours, make_torch, make_jax, tmp_path)
    assert require_same_weights(ours, theirs).notes == []
    q, k = sample(3, 5, 8), sample(3, 7, kv or 8, seed=1)
    expected = _torch_attention((q, k, k), theirs)
    actual = np.asarray(ours(jnp.asarray(q), jnp.asarray(k)))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=2e-5 * np.abs(expected).max())


def test_the_packed_rows_are_q_k_v_and_each_head_its_rows():
    ours = nnx.MultiHeadAttention(2, 8, decode=False, rngs=nnx.Rngs(0))  # heads of 4 features
    state = torch_state_of_jax(ours)
    packed = state["in_proj_weight"]
    for third, name in enumerate(("query", "key", "value")):
        kernel = np.asarray(getattr(ours, name).kernel[...])  # (in=8, heads=2, head_dim=4)
        for head in range(2):
            rows = packed[third * 8 + head * 4 : third * 8 + (head + 1) * 4]
            np.testing.assert_array_equal(rows, kernel[:, head, :].T)
    np.testing.assert_array_equal(state["out_proj.weight"], np.asarray(ours.out.kernel[...]).reshape(8, 8).T)


def test_check_passes_an_honest_pair_through_a_self_attention_subclass():
    ours = nnx.MultiHeadAttention(2, 8, decode=False, attention_fn=exact_attention, rngs=nnx.Rngs(0))
    theirs = SelfAttention(8, 2, batch_first=True)
    copy_jax_to_torch(ours, theirs)
    result = check(ours, theirs, sample(3, 5, 8))
    assert result.passed, result
    assert result.notes == [
        "(root): Flax computes attention with exact_attention, not nnx.dot_product_attention "
        "(softmax(q·kᵀ/√head_dim)·v, as PyTorch)"
    ]


def test_settings_the_weights_cannot_show_are_noted():
    ours = nnx.MultiHeadAttention(4, 8, decode=False, dropout_rate=0.1, rngs=nnx.Rngs(0))
    theirs = torch.nn.MultiheadAttention(8, 2, add_zero_attn=True)  # batch_first=False, dropout 0
    copy_torch_to_jax(theirs, ours)  # the same arrays: the heads split them otherwise
    assert require_same_weights(ours, theirs).notes == [
        "(root): num_heads 4 in Flax vs num_heads 2 in PyTorch: the same arrays, split into heads of 2 vs 4 "
        "features",
        "(root): PyTorch takes (seq, batch, features) (batch_first=False); Flax takes (batch..., seq, features)",
        "(root): dropout_rate 0.1 in Flax vs dropout 0 in PyTorch; only training runs read it",
        "(root): PyTorch appends a zero key and value (add_zero_attn=True); Flax does not",
    ]


def test_query_key_normalization_and_grouped_heads_have_no_torch_twin():
    normalized = nnx.MultiHeadAttention(2, 8, decode=False, normalize_qk=True, rngs=nnx.Rngs(0))
    with pytest.raises(
        WeightsError,
        match=r"nnx.MultiHeadAttention\(num_heads=2, in_features=8.*"
        r"normalize_qk=True\): normalize_qk=True adds a LayerNorm.*expected normalize_qk=False",
    ):
        copy_torch_to_jax(torch.nn.MultiheadAttention(8, 2, batch_first=True), normalized)
    grouped = nnx.MultiHeadAttention(4, 8, num_kv_heads=2, decode=False, rngs=nnx.Rngs(0))
    with pytest.raises(
        WeightsError, match=r"num_kv_heads=2 shares key/value heads.*num_kv_heads=num_heads=4"
    ):
        torch_state_of_jax(grouped)


def test_a_bias_on_one_side_only_names_the_keys():
    ours = nnx.MultiHeadAttention(2, 8, use_bias=False, decode=False, rngs=nnx.Rngs(0))
    with pytest.raises(WeightsError, match=r"unexpected keys? .*'in_proj_bias'"):
        copy_torch_to_jax(torch.nn.MultiheadAttention(8, 2, batch_first=True), ours)


def test_an_attention_layer_inside_a_model_owns_its_children():
    class Block(nnx.Module):
        def __init__(self):
            self.attn = nnx.MultiHeadAttention(2, 8, decode=False, rngs=nnx.Rngs(0))
            self.norm = nnx.LayerNorm(8, rngs=nnx.Rngs(0))

    class TorchBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = torch.nn.MultiheadAttention(8, 2, batch_first=True)
            self.norm = torch.nn.LayerNorm(8)

    ours, theirs = Block(), TorchBlock()
    assert list(torch_state_of_jax(ours)) == list(theirs.state_dict())
    copy_torch_to_jax(theirs, ours)
    np.testing.assert_array_equal(
        np.asarray(ours.attn.out.bias[...]), theirs.attn.out_proj.bias.detach().numpy()
    )


def test_key_and_value_widths_that_do_not_fit_name_the_keys():
    ours = nnx.MultiHeadAttention(2, 8, in_kv_features=6, decode=False, rngs=nnx.Rngs(0))
    theirs = torch.nn.MultiheadAttention(8, 2, batch_first=True, kdim=6, vdim=5)  # Flax: one kv width
    with pytest.raises(WeightsError, match=r"key 'v_proj_weight' has shape \(8, 5\), expected \(8, 6\)"):
        copy_torch_to_jax(theirs, ours)
    packed = nnx.MultiHeadAttention(2, 8, decode=False, rngs=nnx.Rngs(0))  # torch's separate weights
    with pytest.raises(
        WeightsError, match=r"missing key 'in_proj_weight'.*unexpected keys? .*'k_proj_weight'"
    ):
        copy_torch_to_jax(torch.nn.MultiheadAttention(8, 2, batch_first=True, kdim=6, vdim=6), packed)


def test_the_default_flax_attention_passes_because_the_truth_promotes_its_float32_softmax():
    """``nnx.dot_product_attention`` runs its softmax in float32 even for float64 inputs; the truth run
    promotes that cast, so the honest pair passes the same-function tier and says why."""
    ours = nnx.MultiHeadAttention(2, 8, decode=False, rngs=nnx.Rngs(0))
    theirs = SelfAttention(8, 2, batch_first=True)
    copy_jax_to_torch(ours, theirs)
    result = check(ours, theirs, sample(3, 5, 8))
    assert result.passed, result
    assert any(note.startswith("JAX: ") and "float32 cast" in note for note in result.truth_notes)


class SeparateProjections(torch.nn.Module):
    """Attention as transformers writes it: a Linear per projection, heads split in forward."""

    def __init__(self, width=8, heads=2):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (torch.nn.Linear(width, width) for _ in range(4))

    def forward(self, x):
        batch, length, width = x.shape
        split = [p(x).view(batch, length, self.heads, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj,
                                                                                self.v_proj)]  # fmt: skip
        y = torch.nn.functional.scaled_dot_product_attention(*split)
        return self.o_proj(y.transpose(1, 2).reshape(batch, length, width))


PROJECTIONS = [
    (r"^query\.", "q_proj."),
    (r"^key\.", "k_proj."),
    (r"^value\.", "v_proj."),
    (r"^out\.", "o_proj."),
]


def test_a_twin_with_one_linear_per_projection_maps_them_one_by_one():
    """The packing rule applies where the torch twin holds packed keys; a twin holding q/k/v/o Linears
    gets each projection by the LinearGeneral rule (no subclass, no rule of one's own)."""
    ours = nnx.MultiHeadAttention(2, 8, decode=False, rngs=nnx.Rngs(0))
    theirs = SeparateProjections()
    copied = copy_torch_to_jax(theirs, ours, rename=PROJECTIONS)
    assert copied.missing == [] and copied.ignored == []
    np.testing.assert_array_equal(
        np.asarray(ours.query.kernel[...]).reshape(8, 8), theirs.q_proj.weight.detach().numpy().T
    )
    result = check(ours, theirs, sample(3, 5, 8), rename=PROJECTIONS)
    assert result.passed, result
    back = SeparateProjections()
    copy_jax_to_torch(ours, back, rename=PROJECTIONS)
    assert torch.equal(back.o_proj.weight, theirs.o_proj.weight)
