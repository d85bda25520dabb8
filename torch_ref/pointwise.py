"""``PointwiseConv``: a 1x1 ``Conv1d``, computed as a convolution or as one matmul."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from layer_rules import Described, PointwiseImpl, messages, pointwise_impl
from torch_ref.linear import require_input_dtype


class PointwiseConv(Described, nn.Module):
    """A kernel-size-1 ``nn.Conv1d``: the same linear map applied at every position of a sequence.

    Parameters, their names, shapes and initialization are exactly ``nn.Conv1d(in, out, 1)``'s
    (``kaiming_uniform_(a=√5)``, i.e. ``U(±1/√in_features)``, and a bias ``U(±1/√in_features)``),
    so a ``Conv1d`` ``state_dict`` loads as is.

    ``impl="conv"`` calls ``F.conv1d``. ``impl="matmul"`` (the default) calls ``F.linear`` on the
    channels-last view ``x.transpose(-1, -2)`` with ``weight[..., 0]`` and transposes back: the same
    function, but faster, as it is one GEMM with no im2col and no convolution-kernel dispatch.
    That output is a transposed (non-contiguous) view with the same shape. ``"linear"`` (this path's
    former name) and ``"dot"`` (jaxlin's) are accepted for ``"matmul"``. A zero-length sequence
    gives an empty output on both paths (``F.conv1d`` itself refuses it).

    Raises:
        ValueError: a size or an option out of its range (at construction), an input whose shape
        does not fit (at the call).
        TypeError: an input that is not real floating point or not in the weight's dtype.

    Shape:
        input ``(batch, features=in_features, length)`` or ``(in_features, length)`` (channels first)
        -> output ``(batch, out_features, length)`` or ``(out_features, length)``;
        weight ``(out_features, in_features, 1)``, bias ``(out_features,)``.

    >>> conv = PointwiseConv(3, 2)
    >>> conv(torch.ones(5, 3, 7)).shape
    torch.Size([5, 2, 7])
    """

    _config = ("in_features", "out_features")

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        impl: PointwiseImpl = "matmul",
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        owner = messages.describe(type(self).__name__, in_features=in_features, out_features=out_features)
        messages.require_positive(owner, in_features=in_features, out_features=out_features)
        self.impl = pointwise_impl(owner, impl)
        self.in_features = in_features
        self.out_features = out_features
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_features, in_features, 1, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialize as ``nn.Conv1d`` does (same draws in the same order)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"impl={self.impl!r}, bias={self.bias is not None}"
        )

    def validate(self, x: torch.Tensor) -> None:
        """Raise ValueError/TypeError unless ``x`` is a channels-first input of the weight's dtype."""
        owner = self.describe()
        messages.require_channels(owner, x.shape, self.in_features, channels_first=True)
        require_input_dtype(owner, x, self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.validate(x)
        if self.impl == "conv" and x.shape[-1] > 0:
            return F.conv1d(x, self.weight, self.bias)
        return F.linear(x.transpose(-1, -2), self.weight[..., 0], self.bias).transpose(-1, -2)
