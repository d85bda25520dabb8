"""A Vision Transformer in Flax NNX, written as a port author writes one, against Hugging Face's
``transformers.ViTModel`` (no pooler).

The port keeps its own names and layout: images are NHWC; ``embed`` holds the patch projection
``embed.patch`` (an ``nnx.Conv`` with ``kernel = stride = patch``) and, beside it, its own parameters
``embed.cls`` ``(1, 1, D)`` and ``embed.pos`` ``(1, 1 + patches, D)``; the blocks are
``blocks.<i>.{norm1,attn,norm2,mlp.fc1,mlp.fc2}`` with ``attn`` an ``nnx.MultiHeadAttention``
(its children ``query``/``key``/``value`` are ``nnx.LinearGeneral`` with kernels ``(D, H, hd)``, ``out``
``(H, hd, D)``: heads split from features), exact GELU, pre-norm residuals, a final ``norm``.
:data:`RENAME` is the converter's table onto Hugging Face's names.

The embedding holds parameters beside a child layer, which no built-in rule knows: this module
registers its rule (``register_layout``: ``cls`` is ``cls_token``, ``pos`` is
``position_embeddings``; the child convolution keeps the convolution's rule).

Two porting bugs can be planted (``bug=``): ``"tanh-gelu"`` (``jax.nn.gelu``'s default, the tanh
approximation, where ViT's ``"gelu"`` is exact) and ``"cls-token-after-position"`` (the position
table added to the patches before the class token is prepended: every token gets its neighbour's
position and the class token none).

Shape:
    ``pixels (batch, height, width, channels)`` -> ``(batch, 1 + patches, hidden)``, ``patches =
    (height / patch) · (width / patch)``.

>>> config = tiny_config()
>>> port = ViTPort(config, rngs=nnx.Rngs(0))
>>> port(jnp.zeros((2, 16, 16, 3))).shape
(2, 17, 32)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from crosscheck.weights import Layout, ParamRule, register_layout

BUGS = ("tanh-gelu", "cls-token-after-position")
"""The planted bugs ``ViTPort(..., bug=...)`` takes."""

RENAME = [
    (r"^embed\.patch\.", "embeddings.patch_embeddings.projection."),
    (r"^embed\.", "embeddings."),
    (r"^blocks\.(\d+)\.norm1\.", r"layers.\1.layernorm_before."),
    (r"^blocks\.(\d+)\.norm2\.", r"layers.\1.layernorm_after."),
    (r"^blocks\.(\d+)\.attn\.query\.", r"layers.\1.attention.q_proj."),
    (r"^blocks\.(\d+)\.attn\.key\.", r"layers.\1.attention.k_proj."),
    (r"^blocks\.(\d+)\.attn\.value\.", r"layers.\1.attention.v_proj."),
    (r"^blocks\.(\d+)\.attn\.out\.", r"layers.\1.attention.o_proj."),
    (r"^blocks\.(\d+)\.attn\.", r"layers.\1.attention."),
    (r"^blocks\.(\d+)\.", r"layers.\1."),
    (r"^norm\.", "layernorm."),
]
"""The port's module paths onto ``transformers.ViTModel``'s (weights and layers alike)."""


@dataclass(frozen=True)
class Config:
    """The sizes of a ViT, as ``transformers.ViTConfig`` names them."""

    hidden_size: int = 32
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 64
    image_size: int = 16
    patch_size: int = 4
    num_channels: int = 3
    layer_norm_eps: float = 1e-12

    @property
    def patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


def tiny_config() -> Config:
    """Hidden 32, 2 layers, 4 heads, 16x16 images of 4x4 patches (16 patches and a class token)."""
    return Config()


def hf_config(config: Config, attn_implementation: str = "eager"):
    """The ``transformers.ViTConfig`` of ``config`` (exact GELU, biases on q/k/v)."""
    from transformers import ViTConfig

    return ViTConfig(
        **vars(config), hidden_act="gelu", qkv_bias=True, attn_implementation=attn_implementation
    )


class Embedding(nnx.Module):
    """Patches projected by a strided convolution, a class token prepended, positions added."""

    def __init__(self, config: Config, *, rngs: nnx.Rngs, bug: str | None = None):
        p, d = config.patch_size, config.hidden_size
        self.patch = nnx.Conv(config.num_channels, d, (p, p), strides=(p, p), padding="VALID", rngs=rngs)
        self.cls = nnx.Param(jax.random.normal(rngs.params(), (1, 1, d)) * 0.02)
        self.pos = nnx.Param(jax.random.normal(rngs.params(), (1, 1 + config.patches, d)) * 0.02)
        self.bug = bug

    def __call__(self, pixels: jax.Array) -> jax.Array:
        x = self.patch(pixels)  # (batch, h, w, D): rows of patches, as torch's flatten(2) orders them
        x = x.reshape(x.shape[0], -1, x.shape[-1])
        cls = jnp.broadcast_to(self.cls[...], (x.shape[0], 1, x.shape[-1]))
        if self.bug == "cls-token-after-position":
            return jnp.concatenate([cls, x + self.pos[...][:, : x.shape[1]]], axis=1)
        return jnp.concatenate([cls, x], axis=1) + self.pos[...]


register_layout(
    Layout("examples.vit_port.Embedding", (Embedding,),
           (ParamRule("cls", "cls_token"), ParamRule("pos", "position_embeddings")))
)  # fmt: skip


class SelfAttention(nnx.MultiHeadAttention):
    """``nnx.MultiHeadAttention`` as it is; only its weights map otherwise. crosscheck's rule for
    ``nnx.MultiHeadAttention`` owns ``query``/``key``/``value``/``out`` as ``torch.nn.MultiheadAttention``'s
    packed ``in_proj_weight``; Hugging Face's ViT has four ``nn.Linear`` instead. The rule registered
    below claims nothing, so each child maps by the ``nnx.LinearGeneral`` rule (kernel ``(D, H, hd)`` is
    ``weight (H·hd, D)``, ``out`` ``(H, hd, D)`` is ``weight (D, H·hd)``), named through :data:`RENAME`."""


register_layout(Layout("examples.vit_port.SelfAttention (projections one by one)", (SelfAttention,), ()))


class MLP(nnx.Module):
    def __init__(self, config: Config, *, rngs: nnx.Rngs, bug: str | None = None):
        self.fc1 = nnx.Linear(config.hidden_size, config.intermediate_size, rngs=rngs)
        self.fc2 = nnx.Linear(config.intermediate_size, config.hidden_size, rngs=rngs)
        self.activation = partial(jax.nn.gelu, approximate=bug == "tanh-gelu")  # ViT's "gelu" is exact

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.fc2(self.activation(self.fc1(x)))


class Block(nnx.Module):
    """``x + attn(norm1(x))``, then ``+ mlp(norm2(.))``."""

    def __init__(self, config: Config, *, rngs: nnx.Rngs, bug: str | None = None):
        d, eps = config.hidden_size, config.layer_norm_eps
        self.norm1 = nnx.LayerNorm(d, epsilon=eps, rngs=rngs)
        self.attn = SelfAttention(config.num_attention_heads, d, decode=False, deterministic=True,
                                           rngs=rngs)  # fmt: skip
        self.norm2 = nnx.LayerNorm(d, epsilon=eps, rngs=rngs)
        self.mlp = MLP(config, rngs=rngs, bug=bug)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViTPort(nnx.Module):
    """``transformers.ViTModel(config, add_pooling_layer=False)`` in Flax NNX, channels last."""

    def __init__(self, config: Config, *, rngs: nnx.Rngs, bug: str | None = None):
        if bug not in (None, *BUGS):
            raise ValueError(f"bug must be one of {BUGS} or None; got {bug!r}")
        self.embed = Embedding(config, rngs=rngs, bug=bug)
        self.blocks = nnx.List([Block(config, rngs=rngs, bug=bug) for _ in range(config.num_hidden_layers)])
        self.norm = nnx.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps, rngs=rngs)

    def __call__(self, pixels: jax.Array) -> jax.Array:
        x = self.embed(pixels)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


def reference(config: Config, seed: int = 0, *, attn_implementation: str = "eager"):
    """``transformers.ViTModel(add_pooling_layer=False)`` at ``config``, random under
    ``torch.manual_seed(seed)``, in eval mode, float32; the class token and position table drawn at
    unit scale (a trained checkpoint's are far from the 0.02-scale initialization)."""
    import torch
    from transformers import ViTModel

    torch.manual_seed(seed)
    model = ViTModel(hf_config(config, attn_implementation), add_pooling_layer=False).eval()
    with torch.no_grad():
        model.embeddings.cls_token.normal_()
        model.embeddings.position_embeddings.normal_()
    return model


def example_inputs(config: Config, seed: int = 0, *, batch: int = 2):
    """``(pixels NHWC for the port, pixels NCHW for the reference)``: the same random image.

    >>> x, x_torch = example_inputs(tiny_config())
    >>> x.shape, x_torch.shape
    ((2, 16, 16, 3), (2, 3, 16, 16))
    """
    shape = (batch, config.image_size, config.image_size, config.num_channels)
    nhwc = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return nhwc, np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
