"""Bit-for-bit snapshots of every parameter AND buffer of a module of either framework, for tests that
a failed write leaves the target exactly as it was."""

from __future__ import annotations

import numpy as np
import torch
from flax import nnx

from crosscheck.weights import numpy_of_torch


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, order="C")
    return a.view(f"u{a.dtype.itemsize}").copy() if a.dtype.kind != "b" else a.copy()


def snapshot(module) -> dict[str, tuple]:
    """``{name: (shape, dtype, bits)}`` of every parameter and buffer (torch) or every variable (JAX)."""
    if isinstance(module, torch.nn.Module):
        tensors = dict(module.named_parameters()) | dict(module.named_buffers())
        return {
            k: (tuple(t.shape), str(t.dtype), _bits(numpy_of_torch(t)).tobytes()) for k, t in tensors.items()
        }
    return {
        ".".join(map(str, path)): (
            leaf[...].shape,
            str(leaf[...].dtype),
            _bits(np.asarray(leaf[...])).tobytes(),
        )
        for path, leaf in nnx.to_flat_state(nnx.state(module))
        if hasattr(leaf, "shape") or hasattr(leaf[...], "shape")
    }
