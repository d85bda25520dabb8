"""``Linear`` and ``collapse``: the PyTorch mirror of ``jaxlin.linear``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from layer_rules import Described, messages


def require_input_dtype(owner: str, x: torch.Tensor, weight: torch.Tensor) -> None:
    """Raise TypeError unless ``x`` is floating and has the dtype of ``weight``.

    Shape:
        any ``x``; only its dtype is checked.

    >>> require_input_dtype("Linear(in_features=2, out_features=1)", torch.ones(2), torch.ones(1, 2))
    """
    messages.require_floating(owner, "input", x.dtype, x.is_floating_point(), "torch")
    if x.dtype != weight.dtype:
        raise TypeError(
            f"{owner}: expected input of dtype {weight.dtype}, got {x.dtype}; "
            f"cast the input or the module (module.to({x.dtype}))."
        )


class Linear(Described, nn.Linear):
    """``y = x @ weight.T + bias`` over the last axis, with any number of leading axes.

    A ``torch.nn.Linear`` (same initialization, same ``state_dict`` names ``weight``/``bias``)
    that validates its input with messages naming the module, the expected and the actual shape.

    Raises:
        ValueError: a size or an option out of its range (at construction), an input whose shape
        does not fit (at the call).
        TypeError: an input that is not real floating point or not in the weight's dtype.

    Shape:
        input ``(..., features=in_features)`` -> output ``(..., out_features)``;
        weight ``(out_features, in_features)``, bias ``(out_features,)``.

    >>> layer = Linear(3, 2)
    >>> layer(torch.ones(5, 7, 3)).shape
    torch.Size([5, 7, 2])
    """

    _config = ("in_features", "out_features")

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        owner = messages.describe(type(self).__name__, in_features=in_features, out_features=out_features)
        messages.require_positive(owner, in_features=in_features, out_features=out_features)
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)

    def validate(self, x: torch.Tensor) -> None:
        """Raise ValueError/TypeError unless ``x`` is ``(..., in_features)`` in the weight's dtype."""
        owner = self.describe()
        messages.require_features(owner, x.shape, self.in_features)
        require_input_dtype(owner, x, self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.validate(x)
        return F.linear(x, self.weight, self.bias)


def _described(layer: nn.Linear) -> str:
    """A plain ``nn.Linear`` described as ``torch_ref.Linear`` describes itself."""
    return messages.describe("Linear", in_features=layer.in_features, out_features=layer.out_features)


def collapse(first: nn.Linear, second: nn.Linear) -> Linear:
    """One ``Linear`` computing ``second(first(x))``: ``W = W2 @ W1``, ``b = W2 @ b1 + b2``.

    Two stacked linear layers with nothing in between are one linear layer. The product is
    formed in float64 without autograd and cast back to ``first``'s dtype (and device); the
    result has a bias when either layer had one. Accepts ``torch_ref.Linear`` or ``nn.Linear``.

    Shape:
        first ``(hidden, in)``, second ``(out, hidden)`` (torch layout) -> ``Linear(in, out)``.

    Raises:
        TypeError: either layer is not an ``nn.Linear``.
        ValueError: ``first.out_features != second.in_features``.

    >>> a, b = Linear(4, 8), Linear(8, 2)
    >>> x = torch.ones(3, 4)
    >>> torch.allclose(collapse(a, b)(x), b(a(x)), atol=1e-5)
    True
    """
    for role, layer in (("first", first), ("second", second)):
        if not isinstance(layer, nn.Linear):
            raise TypeError(
                f"collapse: {role} must be a torch_ref.Linear or torch.nn.Linear, got {type(layer).__name__}."
            )
    if first.out_features != second.in_features:
        raise ValueError(
            f"collapse(first={_described(first)}, second={_described(second)}): "
            f"the sizes don't chain; first's out_features={first.out_features} "
            f"must equal second's in_features={second.in_features}."
        )
    has_bias = first.bias is not None or second.bias is not None
    with torch.no_grad():
        w1, w2 = first.weight.to(torch.float64), second.weight.to(torch.float64)
        weight = w2 @ w1
        bias = torch.zeros(second.out_features, dtype=torch.float64, device=weight.device)
        if first.bias is not None:
            bias += w2 @ first.bias.to(torch.float64)
        if second.bias is not None:
            bias += second.bias.to(torch.float64)
        merged = nn.utils.skip_init(
            Linear,
            first.in_features,
            second.out_features,
            bias=has_bias,
            device=first.weight.device,
            dtype=first.weight.dtype,
        )
        merged.weight.copy_(weight)
        if has_bias:
            merged.bias.copy_(bias)
    return merged
