"""What the torch_ref tests share: float64, tolerances for float64 comparisons, gradients of a fixed loss."""

from __future__ import annotations

import torch
from hypothesis import settings

F64 = torch.float64
QUICK = settings(deadline=None)  # max_examples comes from the profile in conftest.py


def close64(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def grads(module: torch.nn.Module, y: torch.Tensor, *inputs: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of ``(y * g).sum()`` (fixed random ``g``) wrt the module's parameters and ``inputs``."""
    g = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(1))
    return list(torch.autograd.grad((y * g).sum(), [*module.parameters(), *inputs]))
