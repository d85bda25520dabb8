"""Round trips shared by the layout-rule tests: copies both ways and a safetensors file each way,
bit for bit."""

from __future__ import annotations

import chex
import numpy as np
import torch

from crosscheck.weights import (
    copy_jax_to_torch,
    copy_torch_to_jax,
    load_weights,
    numpy_of_torch,
    save_weights,
    torch_state_of_jax,
)


def torch_state(module) -> dict[str, np.ndarray]:
    return {k: numpy_of_torch(t) for k, t in module.state_dict().items()}


def _randomized(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every floating parameter drawn anew (norm scales away from 1, biases away from 0)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(0.5 + torch.rand(parameter.shape, generator=generator, dtype=parameter.dtype))
    return module


def round_trips(theirs, ours, make_torch, make_jax, tmp_path) -> None:
    """torch -> jax -> a fresh torch module, and a file each way: the same tensors, bit for bit."""
    _randomized(theirs)
    copy_torch_to_jax(theirs, ours)
    back = make_torch()
    copy_jax_to_torch(ours, back)
    chex.assert_trees_all_equal(torch_state(back), torch_state(theirs))
    assert list(torch_state_of_jax(ours)) == list(theirs.state_dict())
    save_weights(ours, tmp_path / "jax.safetensors")
    from_file = make_torch()
    load_weights(from_file, tmp_path / "jax.safetensors")
    chex.assert_trees_all_equal(torch_state(from_file), torch_state(theirs))
    save_weights(theirs, tmp_path / "torch.safetensors")
    fresh = make_jax()
    load_weights(fresh, tmp_path / "torch.safetensors")
    chex.assert_trees_all_equal(torch_state_of_jax(fresh), torch_state_of_jax(ours))


def sample(*shape, seed: int = 0) -> np.ndarray:
    """A float32 input off zero (normal plus 0.5), in the JAX layer's layout."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32) + 0.5
