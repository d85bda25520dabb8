"""A Flax NNX port of Hugging Face's BERT encoder, built from jaxlin layers — the model the docs port.

The attribute paths mirror ``transformers.BertModel``'s, so the weights map by path, except one
name Python reserves for itself: the self-attention block is ``attention.self_attention`` here and
``attention.self`` in PyTorch, which :data:`RENAME` maps. Embeddings are ``nnx.Embed``, layer norms
``nnx.LayerNorm`` (two-pass variance, as PyTorch computes it), every dense layer ``jaxlin.Linear``.
Dropout is left out: the port is for inference and for checking.

Shape:
    ``input_ids (batch, seq)`` int, ``attention_mask (batch, seq)`` 0/1 -> ``(batch, seq, hidden)``.

>>> config = tiny_config()
>>> port = BertEncoderPort(config, rngs=nnx.Rngs(0))
>>> port(jnp.zeros((2, 8), jnp.int32), jnp.ones((2, 8), jnp.int32)).shape
(2, 8, 64)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx

import jaxlin

RENAME = {"self_attention.": "self."}
"""The port's names onto ``transformers.BertModel``'s (as weights and as module paths)."""


@dataclass(frozen=True)
class Config:
    """The sizes of a BERT encoder, as ``transformers.BertConfig`` names them."""

    vocab_size: int = 100
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 128
    max_position_embeddings: int = 32
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0

    @classmethod
    def of(cls, hf_config) -> Config:
        """The sizes of a ``transformers.BertConfig``."""
        return cls(**{name: getattr(hf_config, name) for name in cls.__dataclass_fields__})


def tiny_config() -> Config:
    """A random-config BERT small enough to check in seconds: 2 layers, 64 hidden, 4 heads."""
    return Config()


def hf_config(config: Config):
    """The ``transformers.BertConfig`` of ``config``, with eager attention (the reference path)."""
    from transformers import BertConfig  # the hf extra: only the Hugging Face side needs it

    return BertConfig(**vars(config), hidden_act="gelu", attn_implementation="eager")


def _norm(config: Config, rngs: nnx.Rngs) -> nnx.LayerNorm:
    return nnx.LayerNorm(
        config.hidden_size, epsilon=config.layer_norm_eps, use_fast_variance=False, rngs=rngs
    )


class Embeddings(nnx.Module):
    """Word, position and token-type embeddings summed, then a layer norm.

    The padding token's word embedding gets no gradient, as ``nn.Embedding(padding_idx=...)`` gives it
    none (``nnx.Embed`` has no padding index; the gradient check found this difference).
    """

    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        self.pad_token_id = config.pad_token_id
        self.word_embeddings = nnx.Embed(config.vocab_size, config.hidden_size, rngs=rngs)
        self.position_embeddings = nnx.Embed(config.max_position_embeddings, config.hidden_size, rngs=rngs)
        self.token_type_embeddings = nnx.Embed(config.type_vocab_size, config.hidden_size, rngs=rngs)
        self.LayerNorm = _norm(config, rngs)  # noqa: N815 (the PyTorch name)

    def __call__(self, input_ids: jax.Array) -> jax.Array:
        positions = jnp.arange(input_ids.shape[-1])[None]
        words = self.word_embeddings(input_ids)
        words = jnp.where((input_ids == self.pad_token_id)[..., None], jax.lax.stop_gradient(words), words)
        summed = words + self.token_type_embeddings(jnp.zeros_like(input_ids))
        return self.LayerNorm(summed + self.position_embeddings(positions))


class SelfAttention(nnx.Module):
    """Multi-head scaled dot-product attention over the sequence; masked keys get no weight."""

    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        size = config.hidden_size
        self.heads = config.num_attention_heads
        self.query, self.key, self.value = (jaxlin.Linear(size, size, rngs=rngs) for _ in range(3))

    def __call__(self, hidden: jax.Array, mask: jax.Array) -> jax.Array:
        batch, seq, size = hidden.shape
        split = lambda h: h.reshape(batch, seq, self.heads, size // self.heads).transpose(0, 2, 1, 3)  # noqa: E731
        query, key, value = split(self.query(hidden)), split(self.key(hidden)), split(self.value(hidden))
        scores = query @ key.transpose(0, 1, 3, 2) * (size // self.heads) ** -0.5
        scores = jnp.where(mask[:, None, None, :], scores, jnp.finfo(scores.dtype).min)
        context = jax.nn.softmax(scores, axis=-1) @ value
        return context.transpose(0, 2, 1, 3).reshape(batch, seq, size)


class Residual(nnx.Module):
    """``LayerNorm(dense(h) + residual)``: BERT's attention output and feed-forward output."""

    def __init__(self, in_features: int, config: Config, *, rngs: nnx.Rngs):
        self.dense = jaxlin.Linear(in_features, config.hidden_size, rngs=rngs)
        self.LayerNorm = _norm(config, rngs)  # noqa: N815 (the PyTorch name)

    def __call__(self, hidden: jax.Array, residual: jax.Array) -> jax.Array:
        return self.LayerNorm(self.dense(hidden) + residual)


class Attention(nnx.Module):
    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        self.self_attention = SelfAttention(config, rngs=rngs)
        self.output = Residual(config.hidden_size, config, rngs=rngs)

    def __call__(self, hidden: jax.Array, mask: jax.Array) -> jax.Array:
        return self.output(self.self_attention(hidden, mask), hidden)


class Intermediate(nnx.Module):
    """``activation(dense(h))``; the activation is a function here, a module in PyTorch."""

    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        self.dense = jaxlin.Linear(config.hidden_size, config.intermediate_size, rngs=rngs)
        self.activation = partial(jax.nn.gelu, approximate=False)  # BERT's "gelu" is the exact one

    def __call__(self, hidden: jax.Array) -> jax.Array:
        return self.activation(self.dense(hidden))


class Layer(nnx.Module):
    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        self.attention = Attention(config, rngs=rngs)
        self.intermediate = Intermediate(config, rngs=rngs)
        self.output = Residual(config.intermediate_size, config, rngs=rngs)

    def __call__(self, hidden: jax.Array, mask: jax.Array) -> jax.Array:
        attended = self.attention(hidden, mask)
        return self.output(self.intermediate(attended), attended)


class Encoder(nnx.Module):
    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        self.layer = nnx.List([Layer(config, rngs=rngs) for _ in range(config.num_hidden_layers)])

    def __call__(self, hidden: jax.Array, mask: jax.Array) -> jax.Array:
        for layer in self.layer:
            hidden = layer(hidden, mask)
        return hidden


class BertEncoderPort(nnx.Module):
    """``transformers.BertModel(config, add_pooling_layer=False)`` in Flax NNX: the last hidden state."""

    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        self.embeddings = Embeddings(config, rngs=rngs)
        self.encoder = Encoder(config, rngs=rngs)

    def __call__(self, input_ids: jax.Array, attention_mask: jax.Array) -> jax.Array:
        return self.encoder(self.embeddings(input_ids), attention_mask != 0)


def reference(config: Config, seed: int = 0):
    """The Hugging Face model the port mirrors, randomly initialized under ``torch.manual_seed(seed)``,
    in eval mode (dropout off)."""
    import torch  # the reference side
    from transformers import BertModel

    torch.manual_seed(seed)
    return BertModel(hf_config(config), add_pooling_layer=False).eval()
