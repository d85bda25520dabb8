"""A Llama-style decoder in Flax NNX, written as a port author writes one, against Hugging Face's
``transformers.LlamaModel``.

The port keeps its own names and layout: ``embed``, ``layers.<i>.{attn_norm,attn,mlp_norm,mlp}``,
``final_norm``; attention heads stay split from features (``q_proj`` is
``nnx.Einsum("btd,dhk->bthk", (D, H, hd))``, the output projection ``"bthk,hkd->btd"``), with
grouped-query attention (``num_key_value_heads < num_attention_heads``: each key/value head serves
``H / KV`` consecutive query heads), rotary position embeddings over the two halves of each head
(Llama's ``rotate_half``), a SwiGLU feed-forward (``down(silu(gate(x)) * up(x))``, each an
``nnx.Einsum``) and :class:`RMSNorm`, an ``nnx.RMSNorm`` that computes in float32 whatever its input
(as ``LlamaRMSNorm`` does). :data:`RENAME` is the converter's table onto Hugging Face's names.

Four porting bugs can be planted (``bug=``): ``"rotary-half-swap"`` (GPT-J's interleaved rotation of
pairs ``(x0, x1), (x2, x3), ...`` where Llama rotates the halves ``(x_i, x_{i+hd/2})``),
``"gqa-repeat-order"`` (key/value heads tiled ``0, 1, 0, 1`` across the query heads where Llama
repeats them ``0, 0, 1, 1``), ``"rmsnorm-one-plus"`` (every RMSNorm scaling by ``1 + w``, Gemma's
convention, where Llama scales by ``w``) and ``"softmax-scale-over-d"`` (attention scores divided by
``head_dim`` instead of ``sqrt(head_dim)``). All leave every shape and every weight as it is.

Shape:
    ``input_ids (batch, seq)`` int -> ``(batch, seq, hidden)`` (the last hidden state, causal).

>>> config = tiny_config()
>>> port = DecoderPort(config, rngs=nnx.Rngs(0))
>>> port(jnp.zeros((2, 8), jnp.int32)).shape
(2, 8, 32)
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

BUGS = ("rotary-half-swap", "gqa-repeat-order", "rmsnorm-one-plus", "softmax-scale-over-d")
"""The planted bugs ``DecoderPort(..., bug=...)`` takes."""

RENAME = [
    (r"^embed\.", "embed_tokens."),
    (r"^layers\.(\d+)\.attn_norm\.", r"layers.\1.input_layernorm."),
    (r"^layers\.(\d+)\.mlp_norm\.", r"layers.\1.post_attention_layernorm."),
    (r"^layers\.(\d+)\.attn\.", r"layers.\1.self_attn."),
    (r"^layers\.(\d+)\.mlp\.gate\.", r"layers.\1.mlp.gate_proj."),
    (r"^layers\.(\d+)\.mlp\.up\.", r"layers.\1.mlp.up_proj."),
    (r"^layers\.(\d+)\.mlp\.down\.", r"layers.\1.mlp.down_proj."),
    (r"^final_norm\.", "norm."),
]
"""The port's module paths onto ``transformers.LlamaModel``'s (weights and layers alike)."""


@dataclass(frozen=True)
class Config:
    """The sizes of a Llama decoder, as ``transformers.LlamaConfig`` names them."""

    vocab_size: int = 100
    hidden_size: int = 32
    intermediate_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    max_position_embeddings: int = 64

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


def tiny_config() -> Config:
    """Hidden 32, 2 layers, 4 query heads sharing 2 key/value heads, SwiGLU 64, vocabulary 100."""
    return Config()


def llama_3_2_1b_config() -> Config:
    """Llama-3.2-1B's shape: 16 layers, hidden 2048, 32 query / 8 key-value heads (head_dim 64), SwiGLU
    8192, vocabulary 128256, RMSNorm epsilon 1e-5, rotary theta 500000 (1.24 B parameters, 4.9 GB in
    float32). Not its rotary scaling (``rope_type="llama3"``): the port rotates by the default table.
    Its tied embeddings do not arise: the port and ``LlamaModel`` end at the last hidden state, with no
    language-model head.

    >>> config = llama_3_2_1b_config()
    >>> config.head_dim, config.num_attention_heads // config.num_key_value_heads
    (64, 4)
    """
    return Config(
        vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
        num_attention_heads=32, num_key_value_heads=8, rms_norm_eps=1e-5, rope_theta=500000.0,
        max_position_embeddings=131072,
    )  # fmt: skip


def hf_config(config: Config, attn_implementation: str = "eager"):
    """The ``transformers.LlamaConfig`` of ``config`` (no cache: the output is the hidden state alone)."""
    from transformers import LlamaConfig

    fields = {name: getattr(config, name) for name in Config.__dataclass_fields__ if name != "rope_theta"}
    hf = LlamaConfig(**fields, hidden_act="silu", attention_bias=False, mlp_bias=False, use_cache=False,
                     rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
                     attn_implementation=attn_implementation)  # fmt: skip
    return hf


class RMSNorm(nnx.RMSNorm):
    """``nnx.RMSNorm`` computed in float32 and cast back to the input's dtype, as ``LlamaRMSNorm``
    (``x.to(float32)``, normalize, cast back, then the scale). ``bug="rmsnorm-one-plus"`` plants Gemma's
    ``x · (1 + w)`` for Llama's ``x · w``."""

    def __init__(self, *args, bug: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.bug = bug

    def __call__(self, x: jax.Array, mask=None) -> jax.Array:
        normed = super().__call__(x.astype(jnp.float32), mask)
        if self.bug == "rmsnorm-one-plus":  # the planted bug: x·(1 + w) = x·w + x (normalized)
            x32 = x.astype(jnp.float32)
            normed = normed + x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.epsilon)
        return normed.astype(x.dtype)


def rotary(x: jax.Array, positions: jax.Array, theta: float, *, interleaved: bool = False) -> jax.Array:
    """Rotary position embedding of ``x (batch, seq, heads, head_dim)`` at ``positions (seq,)``: pairs
    ``(x_i, x_{i + hd/2})`` rotated by ``position · theta^(-2i/hd)`` (``interleaved``: the pairs
    ``(x_{2i}, x_{2i+1})``, GPT-J's convention)."""
    head_dim = x.shape[-1]
    inv_freq = 1.0 / theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim)
    angles = positions[:, None].astype(jnp.float32) * inv_freq[None, :]  # (seq, hd/2)
    cos, sin = (f(angles).astype(x.dtype)[None, :, None, :] for f in (jnp.cos, jnp.sin))
    if interleaved:
        even, odd = x[..., 0::2], x[..., 1::2]
        return jnp.stack([even * cos - odd * sin, even * sin + odd * cos], axis=-1).reshape(x.shape)
    first, second = x[..., : head_dim // 2], x[..., head_dim // 2 :]
    return jnp.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)


class Attention(nnx.Module):
    """Causal grouped-query attention with rotary embeddings; heads split from features throughout."""

    def __init__(self, config: Config, *, rngs: nnx.Rngs, bug: str | None = None):
        d, h, kv, hd = (
            config.hidden_size,
            config.num_attention_heads,
            config.num_key_value_heads,
            config.head_dim,
        )
        self.q_proj = nnx.Einsum("btd,dhk->bthk", (d, h, hd), rngs=rngs)
        self.k_proj = nnx.Einsum("btd,dhk->bthk", (d, kv, hd), rngs=rngs)
        self.v_proj = nnx.Einsum("btd,dhk->bthk", (d, kv, hd), rngs=rngs)
        self.o_proj = nnx.Einsum("bthk,hkd->btd", (h, hd, d), rngs=rngs)
        self.groups, self.theta, self.bug = h // kv, config.rope_theta, bug

    def _shared(self, kv: jax.Array) -> jax.Array:
        if self.bug == "gqa-repeat-order":
            return jnp.tile(kv, (1, 1, self.groups, 1))  # heads 0, 1, 0, 1: the planted bug
        return jnp.repeat(kv, self.groups, axis=2)  # heads 0, 0, 1, 1: query head j reads kv head j // groups

    def __call__(self, x: jax.Array, positions: jax.Array) -> jax.Array:
        interleaved = self.bug == "rotary-half-swap"
        q = rotary(self.q_proj(x), positions, self.theta, interleaved=interleaved)
        k = rotary(self.k_proj(x), positions, self.theta, interleaved=interleaved)
        k, v = self._shared(k), self._shared(self.v_proj(x))
        scale = q.shape[-1] ** (-1.0 if self.bug == "softmax-scale-over-d" else -0.5)  # 1/d: the planted bug
        scores = jnp.einsum("bqhk,bshk->bhqs", q, k) * scale
        causal = positions[:, None] >= positions[None, :]
        scores = jnp.where(causal, scores, jnp.finfo(scores.dtype).min)
        return self.o_proj(jnp.einsum("bhqs,bshk->bqhk", jax.nn.softmax(scores, axis=-1), v))


class SwiGLU(nnx.Module):
    """``down(silu(gate(x)) * up(x))``."""

    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        d, f = config.hidden_size, config.intermediate_size
        self.gate = nnx.Einsum("btd,df->btf", (d, f), rngs=rngs)
        self.up = nnx.Einsum("btd,df->btf", (d, f), rngs=rngs)
        self.down = nnx.Einsum("btf,fd->btd", (f, d), rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.down(jax.nn.silu(self.gate(x)) * self.up(x))


class Block(nnx.Module):
    """Pre-norm residual block: ``x + attn(attn_norm(x))``, then ``+ mlp(mlp_norm(.))``."""

    def __init__(self, config: Config, *, rngs: nnx.Rngs, bug: str | None = None):
        self.attn_norm = RMSNorm(config.hidden_size, epsilon=config.rms_norm_eps, rngs=rngs, bug=bug)
        self.attn = Attention(config, rngs=rngs, bug=bug)
        self.mlp_norm = RMSNorm(config.hidden_size, epsilon=config.rms_norm_eps, rngs=rngs, bug=bug)
        self.mlp = SwiGLU(config, rngs=rngs)

    def __call__(self, x: jax.Array, positions: jax.Array) -> jax.Array:
        x = x + self.attn(self.attn_norm(x), positions)
        return x + self.mlp(self.mlp_norm(x))


class DecoderPort(nnx.Module):
    """``transformers.LlamaModel`` in Flax NNX: token ids to the last hidden state (causal, no cache)."""

    def __init__(self, config: Config, *, rngs: nnx.Rngs, bug: str | None = None):
        if bug not in (None, *BUGS):
            raise ValueError(f"bug must be one of {BUGS} or None; got {bug!r}")
        self.embed = nnx.Embed(config.vocab_size, config.hidden_size, rngs=rngs)
        self.layers = nnx.List([Block(config, rngs=rngs, bug=bug) for _ in range(config.num_hidden_layers)])
        self.final_norm = RMSNorm(config.hidden_size, epsilon=config.rms_norm_eps, rngs=rngs, bug=bug)

    def __call__(self, input_ids: jax.Array) -> jax.Array:
        positions = jnp.arange(input_ids.shape[-1])
        x = self.embed(input_ids)
        for layer in self.layers:
            x = layer(x, positions)
        return self.final_norm(x)


def reference(config: Config, seed: int = 0, *, attn_implementation: str = "eager"):
    """``transformers.LlamaModel`` at ``config``, random under ``torch.manual_seed(seed)``, in eval mode,
    float32; every RMSNorm weight drawn around 1 (fresh ones are all ones, which would hide a
    misplaced scale)."""
    import torch
    from transformers import LlamaModel

    torch.manual_seed(seed)
    model = LlamaModel(hf_config(config, attn_implementation)).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.uniform_(0.5, 1.5)
    return model


def example_inputs(config: Config, seed: int = 0, *, batch: int = 2, seq: int = 16):
    """``(token ids for the port, the same ids for the reference)``, int32 and int64.

    >>> ids, torch_ids = example_inputs(tiny_config())
    >>> ids.shape, ids.dtype, torch_ids.dtype
    ((2, 16), dtype('int32'), dtype('int64'))
    """
    ids = np.random.default_rng(seed).integers(0, config.vocab_size, (batch, seq))
    return ids.astype(np.int32), ids.astype(np.int64)
