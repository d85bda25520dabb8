"""``BatchInvariantLinear``: the PyTorch mirror of ``jaxlin.invariant``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from layer_rules import DEFAULT_TILE_ROWS, messages
from torch_ref.linear import Linear


def tiled_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, tile_rows: int):
    """``F.linear`` computed as a loop of matmuls of exactly ``(tile_rows, in) @ (in, out)``.

    Rows are flattened and zero-padded to whole tiles; each tile is one ``F.linear`` call of a
    fixed shape, so the BLAS kernel, its blocking and its thread split never depend on the number
    of rows. Autograd differentiates the loop tile by tile, so input-gradient rows are fixed-shape
    matmuls too. Without autograd, each tile's ``addmm`` writes straight into the output.

    Shape:
        x ``(..., in)``, weight ``(out, in)``, bias ``(out,)`` or None -> ``(..., out)``.

    >>> tiled_linear(torch.ones(3, 2), torch.ones(4, 2), None, tile_rows=8)[2]
    tensor([2., 2., 2., 2.])
    """
    *leading, in_features = x.shape
    flat = x.reshape(-1, in_features)
    rows, pad = flat.shape[0], -flat.shape[0] % tile_rows
    padded = F.pad(flat, (0, 0, 0, pad)) if pad else flat
    tracked = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias))
    if tracked:  # autograd differentiates each tile's F.linear: input-gradient tiles are fixed-shape too
        tiles = [F.linear(tile, weight, bias) for tile in padded.split(tile_rows)]
        y = torch.cat(tiles) if tiles else padded.new_empty(0, weight.shape[0])
    else:  # the same addmm per tile (what F.linear calls), written in place: no concatenation
        y = padded.new_empty(padded.shape[0], weight.shape[0])
        for tile, into in zip(padded.split(tile_rows), y.split(tile_rows), strict=True):
            if bias is None:
                torch.mm(tile, weight.t(), out=into)
            else:
                torch.addmm(bias, tile, weight.t(), out=into)
    return y[:rows].reshape(*leading, weight.shape[0])


class BatchInvariantLinear(Linear):
    """``Linear`` whose every output row is bitwise the same whatever batch it is computed in.

    A plain ``nn.Linear`` lets the BLAS pick a kernel, a blocking and a thread split from the
    number of rows, so row 0 rounds differently at batch 1 and batch 16 (docs/batch-invariance.md).
    Here the rows are cut into zero-padded tiles of ``tile_rows`` and each tile is one matmul of a
    fixed shape: one kernel and one reduction order whatever the batch size.

    Guarantees: output rows and input-gradient rows are bitwise identical to the row computed
    alone, at any batch size and position (tested on CPU in float32 and bfloat16; unverified on
    GPU). The gradient of ``weight``/``bias`` sums over rows and is not batch invariant.
    Cost: a single row does ``tile_rows`` rows' work; large batches pay a Python loop over tiles
    (and, under autograd, a concatenation); see docs/batch-invariance.md for the measured ratios.

    Same constructor, ``weight`` ``(out, in)``/``bias`` and ``state_dict`` as ``Linear``, plus the
    keyword ``tile_rows``.

    Raises:
        ValueError: a size or an option out of its range (at construction), an input whose shape
        does not fit (at the call).
        TypeError: an input that is not real floating point or not in the weight's dtype.

    Shape:
        input ``(..., features=in_features)`` -> output ``(..., out_features)``.

    >>> layer = BatchInvariantLinear(768, 768)
    >>> x = torch.linspace(-1, 1, 5 * 768).reshape(5, 768)
    >>> bool((layer(x)[3] == layer(x[3:4])[0]).all())
    True
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        tile_rows: int = DEFAULT_TILE_ROWS,
    ):
        owner = messages.describe(type(self).__name__, in_features=in_features, out_features=out_features)
        messages.require_positive(owner, tile_rows=tile_rows)
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.tile_rows = tile_rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.validate(x)
        return tiled_linear(x, self.weight, self.bias, self.tile_rows)
