"""align with each side's own call (keywords, bfloat16) and what it says of torch layers the port leaves
out (a head tied to the embedding); both models left in their modes."""

import jax
import numpy as np
import torch
from flax import nnx

import jaxlin
from crosscheck import align
from tests.crosscheck.porting.test_align import Mlp, X, _sequential


class Keyed(nnx.Module):
    def __init__(self, rngs):
        self.dense, self.drop = jaxlin.Linear(8, 4, rngs=rngs), nnx.Dropout(0.5, rngs=rngs)

    def __call__(self, x, *, scale):
        return self.drop(self.dense(x)) * scale


class TorchKeyed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj, self.drop = torch.nn.Linear(8, 4), torch.nn.Dropout(0.5)

    def forward(self, x, factor):
        return self.drop(self.proj(x)) * factor


def test_each_side_its_own_keywords_and_both_models_left_in_their_modes():
    port, ref = Keyed(nnx.Rngs(0)), TorchKeyed().train()
    found = align(port, ref, X, jax_kwargs={"scale": 2.0}, torch_kwargs={"factor": 2.0})
    assert found.mapping == {"": "", "dense": "proj"}
    assert ref.training and ref.drop.training and port.drop.deterministic is False


def test_bfloat16_models_align():
    port = Mlp(nnx.Rngs(0))
    port.fc_in = nnx.Linear(8, 16, param_dtype=jax.numpy.bfloat16, dtype=jax.numpy.bfloat16, rngs=nnx.Rngs(0))
    assert align(port, _sequential().to(torch.bfloat16), X).mapping == {"": "", "fc_in": "0", "fc_out": "2"}


class TorchTied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.lm_head = torch.nn.Embedding(10, 8), torch.nn.Linear(8, 10, bias=False)
        self.lm_head.weight = self.embed.weight

    def forward(self, ids):
        return self.lm_head(self.embed(ids))


class Tied(nnx.Module):
    def __init__(self, rngs):
        self.embed = nnx.Embed(10, 8, rngs=rngs)

    def __call__(self, ids):
        return self.embed.attend(self.embed(ids))


def test_a_tied_head_the_port_computes_with_attend_is_unmatched_and_said_tied():
    found = align(Tied(nnx.Rngs(0)), TorchTied(), np.arange(6).reshape(2, 3))
    assert found.mapping == {"": "", "embed": "embed"} and found.unmatched.torch == ["lm_head"]
    assert found.unmatched.reasons["torch:lm_head"].endswith("; its weights are embed's (tied)")


def test_a_rename_pair_that_does_not_fit_is_said_and_not_taken():
    found = align(Mlp(nnx.Rngs(0)), _sequential(), X, rename={"fc_in.": "2."})
    row = next(row for row in found.rows if row.jax_path == "fc_in")
    assert row.torch_path == "0" and row.how.startswith("order+kind+shape; rename= names 2 (Linear")
    assert row.how.endswith("which does not fit")
