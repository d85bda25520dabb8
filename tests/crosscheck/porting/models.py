"""A small model in both frameworks for the check/locate tests: a block of Linear, LayerNorm, an
activation and Linear, inside a parent that adds a residual — written by hand, not by jaxlin."""

from __future__ import annotations

from functools import partial

import jax
import torch
from flax import nnx

import jaxlin


class TorchBlock(torch.nn.Module):
    def __init__(self, features: int = 16, hidden: int = 32):
        super().__init__()
        self.up, self.norm, self.down = (
            torch.nn.Linear(features, hidden),
            torch.nn.LayerNorm(hidden),
            torch.nn.Linear(hidden, features),
        )
        self.act = torch.nn.GELU()

    def forward(self, x):
        return self.down(self.act(self.norm(self.up(x))))


class TorchModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.block = TorchBlock()
        self.head = torch.nn.Linear(16, 4)

    def forward(self, x):
        return self.head(x + self.block(x))


class JaxBlock(nnx.Module):
    def __init__(self, rngs: nnx.Rngs, *, epsilon: float = 1e-5, approximate: bool = False):
        self.up = jaxlin.Linear(16, 32, rngs=rngs)
        self.norm = nnx.LayerNorm(32, epsilon=epsilon, use_fast_variance=False, rngs=rngs)
        self.down = jaxlin.Linear(32, 16, rngs=rngs)
        self.act = partial(jax.nn.gelu, approximate=approximate)

    def __call__(self, x):
        return self.down(self.act(self.norm(self.up(x))))


class JaxModel(nnx.Module):
    def __init__(self, rngs: nnx.Rngs, **block):
        self.block = JaxBlock(rngs, **block)
        self.head = nnx.Linear(16, 4, rngs=rngs)

    def __call__(self, x):
        return self.head(x + self.block(x))


def build_torch() -> TorchModel:
    torch.manual_seed(0)
    return TorchModel()


def build_jax() -> JaxModel:
    return JaxModel(nnx.Rngs(0))


def build_jax_tanh_gelu() -> JaxModel:
    return JaxModel(nnx.Rngs(0), approximate=True)
