"""``PerHeadLinear``: ``num_heads`` independent linear layers applied in one pass."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from layer_rules import PER_HEAD_IMPLS, Described, TorchPerHeadImpl, messages
from torch_ref.linear import require_input_dtype

IMPLS = PER_HEAD_IMPLS["torch"]


def _loop(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """One ``F.linear`` per head, stacked: ``(..., heads, in)`` -> ``(..., heads, out)``."""
    outs = [
        F.linear(x[..., h, :], weight[h], None if bias is None else bias[h]) for h in range(weight.shape[0])
    ]
    return torch.stack(outs, dim=-2)


def _bmm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """One batched matmul over heads: rows ``(heads, rows, in) @ (heads, in, out)``."""
    *lead, heads, in_features = x.shape
    rows = x.reshape(math.prod(lead), heads, in_features).transpose(0, 1)
    if bias is None:
        y = torch.bmm(rows, weight.transpose(1, 2))
    else:
        y = torch.baddbmm(bias[:, None, :], rows, weight.transpose(1, 2))
    return y.transpose(0, 1).reshape(*lead, heads, weight.shape[1])


def _vmap(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``torch.func.vmap`` of ``F.linear`` over the heads axis (-2 of ``x``, 0 of the parameters)."""
    in_dims = (-2, 0, None if bias is None else 0)
    return torch.func.vmap(F.linear, in_dims=in_dims, out_dims=-2)(x, weight, bias)


_KERNELS = {"loop": _loop, "bmm": _bmm, "vmap": _vmap}


class PerHeadLinear(Described, nn.Module):
    """``num_heads`` independent linear layers: head ``h`` computes ``x[..., h, :] @ weight[h].T + bias[h]``.

    ``impl`` picks how: ``"loop"`` (one ``F.linear`` per head, then ``torch.stack``), ``"bmm"`` (the
    default: one ``torch.baddbmm`` over all heads) or ``"vmap"`` (``torch.func.vmap`` of
    ``F.linear``). All three compute the same function. Each head is initialized like its own
    ``nn.Linear(in_features, out_features)``: weight and bias ``U(±1/√in_features)`` (per-head fan-in).
    Heads may sit on any axis but the last (``head_axis``); the output keeps them on that axis.

    Raises:
        ValueError: a size or an option out of its range (at construction), an input whose shape
        does not fit (at the call).
        TypeError: an input that is not real floating point or not in the weight's dtype.

    Shape:
        input ``(..., heads=num_heads, features=in_features)`` (heads on ``head_axis``)
        -> output ``(..., heads=num_heads, out_features)``;
        weight ``(num_heads, out_features, in_features)``, bias ``(num_heads, out_features)``.

    >>> layer = PerHeadLinear(4, 8, 2)
    >>> layer(torch.ones(5, 7, 4, 8)).shape
    torch.Size([5, 7, 4, 2])
    >>> PerHeadLinear(4, 8, 2, head_axis=1)(torch.ones(5, 4, 7, 8)).shape
    torch.Size([5, 4, 7, 2])
    """

    _config = ("num_heads", "in_features", "out_features")

    def __init__(
        self,
        num_heads: int,
        in_features: int,
        out_features: int,
        *,
        impl: TorchPerHeadImpl = "bmm",
        head_axis: int = -2,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        owner = messages.describe(
            type(self).__name__, num_heads=num_heads, in_features=in_features, out_features=out_features
        )
        messages.require_positive(
            owner, num_heads=num_heads, in_features=in_features, out_features=out_features
        )
        messages.require_choice(owner, "impl", impl, IMPLS)
        messages.require_axis_arg(owner, "head_axis", head_axis)
        self.num_heads = num_heads
        self.in_features = in_features
        self.out_features = out_features
        self.impl = impl
        self.head_axis = head_axis
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(num_heads, out_features, in_features, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(num_heads, out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``U(±1/√in_features)`` for weight and bias, as ``nn.Linear`` does for each head."""
        bound = 1 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        return (
            f"num_heads={self.num_heads}, in_features={self.in_features}, out_features={self.out_features}, "
            f"impl={self.impl!r}, head_axis={self.head_axis}, bias={self.bias is not None}"
        )

    def validate(self, x: torch.Tensor) -> int:
        """Raise ValueError/TypeError unless ``x`` fits; return ``head_axis`` as a non-negative index."""
        owner = self.describe()
        axis = messages.require_heads(owner, x.shape, self.num_heads, self.in_features, self.head_axis)
        require_input_dtype(owner, x, self.weight)
        return axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        axis = self.validate(x)
        moved = axis != x.ndim - 2
        if moved:
            x = x.movedim(axis, -2)
        y = _KERNELS[self.impl](x, self.weight, self.bias)
        return y.movedim(-2, axis) if moved else y
