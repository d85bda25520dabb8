"""align with containers that hold weights beside their children: by a rule of their own (a ViT
embedding's class token and position embeddings, registered), or without one (paired by shape)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import jaxlin
from crosscheck import align, check, copy_torch_to_jax
from crosscheck.weights import Layout, ParamRule, layouts, register_layout


class Patches(nnx.Module):
    def __init__(self, rngs, name: str = "cls_token"):
        self.proj = jaxlin.Linear(8, 16, rngs=rngs)
        setattr(self, name, nnx.Param(jax.numpy.zeros((1, 1, 16), np.float32)))
        self.name = name

    def __call__(self, x):
        cls = jax.numpy.broadcast_to(getattr(self, self.name)[...], (x.shape[0], 1, 16))
        return jax.numpy.concatenate([cls, self.proj(x)], axis=1)


class TorchPatches(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.cls_token = torch.nn.Parameter(torch.zeros(1, 1, 16))
        self.projection = torch.nn.Linear(8, 16)

    def forward(self, x):
        return torch.cat([self.cls_token.expand(x.shape[0], 1, 16), self.projection(x)], dim=1)


def test_weights_a_container_holds_beside_its_children_pair_by_shape():
    x = np.ones((2, 3, 8), np.float32)
    found = align(Patches(nnx.Rngs(0)), TorchPatches(), x)
    assert found.rows[0].how == "inferred from children; own weights by shape" and not found.ambiguous
    other = align(Patches(nnx.Rngs(0), name="cls"), TorchPatches(), x)
    assert (
        other.rows[0].ambiguous and "cls (1, 1, 16): torch has cls_token of that shape" in other.rows[0].how
    )


class Embeddings(nnx.Module):
    def __init__(self, rngs):
        self.cls_token = nnx.Param(jnp.zeros((1, 1, 6), jnp.float32))
        self.position_embeddings = nnx.Param(jnp.zeros((1, 5, 6), jnp.float32))
        self.proj = nnx.Conv(3, 6, (4, 4), strides=(4, 4), padding="VALID", rngs=rngs)

    def __call__(self, x):  # (batch, 8, 8, 3)
        patches = self.proj(x).reshape(x.shape[0], -1, 6)
        cls = jnp.broadcast_to(self.cls_token[...], (x.shape[0], 1, 6))
        return jnp.concatenate([cls, patches], axis=1) + self.position_embeddings[...]


class Vit(nnx.Module):
    def __init__(self, rngs):
        self.embed, self.head = Embeddings(rngs), jaxlin.Linear(6, 3, rngs=rngs)

    def __call__(self, x):
        return self.head(self.embed(x)[:, 0])


class TorchEmbeddings(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.cls_token = torch.nn.Parameter(torch.randn(1, 1, 6))
        self.position_embeddings = torch.nn.Parameter(torch.randn(1, 5, 6))
        self.projection = torch.nn.Conv2d(3, 6, 4, stride=4)

    def forward(self, x):  # (batch, 3, 8, 8)
        patches = self.projection(x).flatten(2).transpose(1, 2)
        return (
            torch.cat([self.cls_token.expand(x.shape[0], -1, -1), patches], dim=1) + self.position_embeddings
        )


class TorchVit(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embeddings, self.classifier = TorchEmbeddings(), torch.nn.Linear(6, 3)

    def forward(self, x):
        return self.classifier(self.embeddings(x)[:, 0])


@pytest.fixture
def embeddings_layout(monkeypatch):
    """The container's rule claims its own two parameters only (registered for one test)."""
    monkeypatch.setattr(layouts, "_REGISTRY", list(layouts._REGISTRY))
    own = (ParamRule("cls_token", "cls_token"), ParamRule("position_embeddings", "position_embeddings"))
    register_layout(Layout("test.Embeddings", (Embeddings,), own, ("TorchEmbeddings",)))


@pytest.mark.usefixtures("embeddings_layout")
def test_a_container_with_its_own_rule_pairs_as_a_layer_and_its_child_by_its_rule():
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype(np.float32)
    port, ref, nchw = Vit(nnx.Rngs(0)), TorchVit(), np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    found = align(port, ref, x, torch_inputs=(nchw,))
    assert found.mapping == {"": "", "embed": "embeddings", "embed.proj": "embeddings.projection",
                             "head": "classifier"}  # fmt: skip
    assert {row.jax_path: row.how for row in found.rows}["embed"] == "order+kind+shape"
    copy_torch_to_jax(ref, port, rename=found.rename)
    assert check(port, ref, x, torch_inputs=(nchw,), rename=found.rename).passed


class Attend(nnx.Module):
    def __init__(self, rngs):
        self.attn = nnx.MultiHeadAttention(4, 16, decode=False, rngs=rngs)
        self.head = nnx.Linear(16, 3, rngs=rngs)

    def __call__(self, x):
        return self.head(self.attn(x))


class TorchAttend(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.mha, self.out = torch.nn.MultiheadAttention(16, 4, batch_first=True), torch.nn.Linear(16, 3)

    def forward(self, x):
        return self.out(self.mha(x, x, x, need_weights=False)[0])


def test_a_packed_attention_pairs_whole_and_its_never_called_out_proj_goes_with_it():
    x = np.random.default_rng(0).standard_normal((2, 5, 16)).astype(np.float32)
    port, ref = Attend(nnx.Rngs(0)), TorchAttend()
    found = align(port, ref, x)
    assert found.mapping == {"": "", "attn": "mha", "head": "out"} and not found.unmatched.torch
    copy_torch_to_jax(ref, port, rename=found.rename)
    assert check(port, ref, x, rename=found.rename).passed
