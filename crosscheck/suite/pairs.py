"""``build_pair``: a case's jaxlin and torch_ref modules on one set of weights — the one place pairs are made.

>>> from crosscheck.suite.cases import all_cases
>>> pair = build_pair(all_cases()["linear"], "float32", seed=0)
>>> type(pair.jax).__name__, type(pair.torch).__name__
('Linear', 'Linear')
"""

from __future__ import annotations

import os
from typing import NamedTuple

import jax.numpy as jnp
import torch
from flax import nnx

from crosscheck.suite.cases import Case
from crosscheck.weights import copy_torch_to_jax, expected_specs, load_weights
from crosscheck.weights.files import header


class Pair(NamedTuple):
    """A jaxlin module and its torch_ref twin holding the same weights."""

    jax: nnx.Module
    torch: torch.nn.Module


def build_pair(case: Case, dtype: str, *, seed: int = 0, weights: str | os.PathLike | None = None) -> Pair:
    """Build ``case``'s two modules in ``dtype``: torch_ref draws PyTorch's default init under
    ``torch.manual_seed(seed)`` and its weights are copied into jaxlin, or both load ``weights``
    (a safetensors file in torch_ref's names, converted to ``dtype``)."""
    torch.manual_seed(seed)
    torch_module = case.make_torch(getattr(torch, dtype))
    # shapes only: the copy or the file gives every array (Flax's init would compile a program per shape)
    jax_module = nnx.eval_shape(lambda: case.make_jax(nnx.Rngs(seed), jnp.dtype(dtype)))
    if weights is None:
        copy_torch_to_jax(torch_module, jax_module)
    else:
        load_weights(torch_module, weights, cast=True)
        load_weights(jax_module, weights, cast=True)
    return Pair(jax_module, torch_module)


def misfit(case: Case, weights: str | os.PathLike, *, seed: int = 0) -> str | None:
    """``None`` when a weights file's keys and shapes are those of ``case``'s torch_ref module, else why
    not (dtypes may differ: the run converts them)."""
    torch.manual_seed(seed)
    expected = {key: spec.shape for key, spec in expected_specs(case.make_torch(torch.float32)).items()}
    declared = {key: spec.shape for key, spec in header(weights).items()}
    return (
        None
        if declared == expected
        else f"--weights {weights} does not fit: it holds {declared}, not {expected}"
    )
