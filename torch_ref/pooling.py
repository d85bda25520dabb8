"""``PooledHead``: mean over a sequence axis before, between or after two linear layers."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from layer_rules import STAGES, Described, Stage, compute_stage, messages
from torch_ref.linear import Linear, require_input_dtype


def masked_mean(h: torch.Tensor, mask: torch.Tensor | None, axis: int) -> torch.Tensor:
    """Mean of ``h`` over ``axis`` counting only positions where ``mask`` is True.

    A row with no real position pools to exactly zeros (the sum is divided by ``max(count, 1)``),
    and masked positions get zero gradient, never NaN. Half precision is summed in float32.

    Shape:
        h ``(..., features)``, mask ``h.shape[:-1]`` or None -> ``h`` without ``axis``.

    >>> h = torch.tensor([[[1.0], [3.0]], [[5.0], [7.0]]])
    >>> masked_mean(h, torch.tensor([[True, False], [False, False]]), axis=1)
    tensor([[1.],
            [0.]])
    """
    if mask is None:
        return h.mean(dim=axis)
    accumulate = torch.promote_types(h.dtype, torch.float32)
    keep = mask[..., None]
    total = torch.where(keep, h, 0).sum(dim=axis, dtype=accumulate)
    count = keep.sum(dim=axis, dtype=accumulate).clamp(min=1)
    return (total / count).to(h.dtype)


class PooledHead(Described, nn.Module):
    """``classifier(activation(projector(x)))`` with a (masked) mean over ``axis`` at one stage.

    ``pool_at`` says where the mean sits: ``"input"`` (pool -> projector -> activation ->
    classifier), ``"hidden"`` (projector -> activation -> pool -> classifier) or ``"output"``
    (projector -> activation -> classifier -> pool). The submodule names ``projector`` and
    ``classifier`` follow the Whisper classification head.

    A mean commutes with an affine layer, so with ``reorder=True`` the mean is moved to the earliest
    stage where the function is unchanged (:attr:`compute_stage`): ``"input"`` without an activation,
    else ``"input"``/``"hidden"``. That is cheaper: the layers then run on one position per row instead
    of ``seq``. ``reorder=False`` computes literally at ``pool_at``. A ``mask`` is boolean (True = a real
    position) or integer (nonzero = a real position, like Hugging Face's ``attention_mask``). With a
    ``mask``, a row with no real
    position pools to zeros at the literal stage; when pooling earlier, such rows are reset to zeros
    right after the layer where the literal pool would have been (after the activation for
    ``"hidden"``, after the classifier for ``"output"``), so ``reorder=True`` computes exactly the same
    function as ``reorder=False``, empty rows included.

    Raises:
        ValueError: a size or an option out of its range (at construction), an input whose shape
        does not fit or a mask of the wrong shape (at the call).
        TypeError: an input that is not real floating point or not in the weight's dtype, a mask
        that is neither boolean nor integer, an activation that is not callable.

    Shape:
        input ``(..., seq, ..., features=in_features)`` with seq on ``axis``, mask ``x.shape[:-1]``
        (True = a real position) -> output: the input's shape without ``axis``, last axis
        ``out_features``.

    >>> head = PooledHead(8, 16, 3, pool_at="hidden", activation=torch.relu)
    >>> head(torch.ones(2, 10, 8)).shape
    torch.Size([2, 3])
    >>> head.compute_stage, PooledHead(8, 16, 3, pool_at="output").compute_stage
    ('hidden', 'input')
    """

    _config = ("in_features", "hidden_features", "out_features", "pool_at")

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        out_features: int,
        *,
        pool_at: Stage = "input",
        activation: Callable[[torch.Tensor], torch.Tensor] | None = None,
        axis: int = -2,
        reorder: bool = True,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        owner = messages.describe(
            type(self).__name__,
            in_features=in_features,
            hidden_features=hidden_features,
            out_features=out_features,
            pool_at=pool_at,
        )
        sizes = {"in_features": in_features, "hidden_features": hidden_features, "out_features": out_features}
        messages.require_positive(owner, **sizes)
        messages.require_choice(owner, "pool_at", pool_at, STAGES)
        messages.require_callable(owner, "activation", activation)
        messages.require_axis_arg(owner, "axis", axis)
        self.in_features = in_features
        self.hidden_features = hidden_features
        self.out_features = out_features
        self.pool_at = pool_at
        self.activation = activation
        self.axis = axis
        self.reorder = reorder
        self.projector = Linear(in_features, hidden_features, bias=bias, device=device, dtype=dtype)
        self.classifier = Linear(hidden_features, out_features, bias=bias, device=device, dtype=dtype)

    @property
    def compute_stage(self) -> str:
        """The stage where the mean is actually computed (``pool_at`` unless ``reorder`` moves it)."""
        return compute_stage(self.pool_at, self.activation is not None, self.reorder)

    def extra_repr(self) -> str:
        return f"pool_at={self.pool_at!r}, axis={self.axis}, reorder={self.reorder}"

    def validate(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[int, torch.Tensor | None]:
        """Raise ValueError/TypeError unless ``x`` and ``mask`` fit; return ``axis`` as an index >= 0 and
        the mask as booleans (nonzero = True)."""
        owner = self.describe()
        axis = messages.require_pool_axis(owner, x.shape, self.in_features, self.axis)
        require_input_dtype(owner, x, self.projector.weight)
        if mask is None:
            return axis, None
        is_integer = not mask.is_floating_point() and not mask.is_complex() and mask.dtype != torch.bool
        kind = "bool" if mask.dtype == torch.bool else "integer" if is_integer else "other"
        messages.require_mask(owner, x.shape, mask.shape, mask.dtype, kind, "torch")
        return axis, mask if kind == "bool" else mask != 0

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        axis, mask = self.validate(x, mask)
        stage = self.compute_stage
        # Only a masked mean that moved earlier needs its empty rows reset where it was asked for.
        nonempty = mask.any(dim=axis)[..., None] if mask is not None and stage != self.pool_at else None

        def pool_or_reset(h: torch.Tensor, here: str) -> torch.Tensor:
            if stage == here:
                return masked_mean(h, mask, axis)
            if nonempty is not None and self.pool_at == here:
                return torch.where(nonempty, h, 0)
            return h

        h = pool_or_reset(x, "input")
        h = self.projector(h)
        if self.activation is not None:
            h = self.activation(h)
        h = pool_or_reset(h, "hidden")
        return pool_or_reset(self.classifier(h), "output")
