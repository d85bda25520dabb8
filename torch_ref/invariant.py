"""``BatchInvariantLinear``: the PyTorch mirror of ``jaxlin.invariant``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from layer_rules import DEFAULT_TILE_ROWS, messages
from torch_ref.linear import Linear
from torch_ref.tiles import each_on_one_thread, plain_cpu


def tiled_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, tile_rows: int):
    """``F.linear`` computed as matmuls of exactly ``(tile_rows, in) @ (in, out)``, one BLAS thread each.

    Rows are flattened and cut into tiles; only the last tile, when short, is zero-padded. Every tile
    is one ``addmm`` (what ``F.linear`` calls) of the same shape on one BLAS thread, so the kernel,
    its blocking and its reduction order never depend on the number of rows or on which thread runs
    it; on plain CPU tensors the tiles are spread over worker threads (``torch_ref.tiles``). Without
    autograd each full tile writes straight into the output; with it, autograd differentiates each
    tile's ``F.linear``, so input-gradient rows are fixed-shape matmuls too.

    Shape:
        x ``(..., in)``, weight ``(out, in)``, bias ``(out,)`` or None -> ``(..., out)``.

    >>> tiled_linear(torch.ones(3, 2), torch.ones(4, 2), None, tile_rows=8)[2]
    tensor([2., 2., 2., 2.])
    """
    *leading, in_features = x.shape
    flat = x.reshape(-1, in_features)
    rows, n_out = flat.shape[0], weight.shape[0]
    tiles = list(flat.split(tile_rows))
    if tiles and tiles[-1].shape[0] < tile_rows:
        tiles[-1] = F.pad(tiles[-1], (0, 0, 0, tile_rows - tiles[-1].shape[0]))
    parallel = plain_cpu(x, weight, bias)
    tracked = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias))
    if tracked:  # autograd differentiates each tile's F.linear: input-gradient tiles are fixed-shape too
        products = each_on_one_thread(lambda i: F.linear(tiles[i], weight, bias), len(tiles), parallel)
        y = torch.cat(products)[:rows] if products else flat.new_empty(0, n_out)
    else:  # the same addmm per tile, written in place: no concatenation
        y = flat.new_empty(rows, n_out)
        outputs = y.split(tile_rows)
        each_on_one_thread(lambda i: _product_into(outputs[i], tiles[i], weight, bias), len(tiles), parallel)
    return y.reshape(*leading, n_out)


def _product_into(into: torch.Tensor, tile: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    """``into`` = the first ``len(into)`` rows of ``F.linear(tile, weight, bias)``, as one ``addmm``."""
    full = into if into.shape[0] == tile.shape[0] else tile.new_empty(tile.shape[0], weight.shape[0])
    if bias is None:
        torch.mm(tile, weight.t(), out=full)
    else:
        torch.addmm(bias, tile, weight.t(), out=full)
    if full is not into:
        into.copy_(full[: into.shape[0]])


class BatchInvariantLinear(Linear):
    """``Linear`` whose every output row is bitwise the same whatever batch it is computed in.

    A plain ``nn.Linear`` lets the BLAS pick a kernel, a blocking and a thread split from the
    number of rows, so row 0 rounds differently at batch 1 and batch 16 (docs/batch-invariance.md).
    Here the rows are cut into zero-padded tiles of ``tile_rows`` and each tile is one matmul of a
    fixed shape: one kernel and one reduction order whatever the batch size.

    Guarantees: output rows and input-gradient rows are bitwise identical to the row computed
    alone, at any batch size and position (tested on CPU in float32 and bfloat16; unverified on
    GPU). The gradient of ``weight``/``bias`` sums over rows and is not batch invariant.
    Cost: a single row does ``tile_rows`` rows' work. On CPU each tile is a one-thread ``addmm`` and
    the tiles are spread over ``torch.get_num_threads()`` worker threads (``torch_ref.tiles``), so a
    batch of one tile runs on one thread; under autograd the tiles are concatenated. Measured ratios
    to ``Linear``: docs/batch-invariance.md.

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
