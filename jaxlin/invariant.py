"""``BatchInvariantLinear``: a ``Linear`` whose output rows never depend on the batch size."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from flax.nnx.nn.dtypes import promote_dtype

from jaxlin.linear import Linear, add_bias, affine
from layer_rules import DEFAULT_TILE_ROWS, messages


@functools.partial(jax.jit, static_argnames=("precision", "tile_rows"))
def tiled_affine(x: jax.Array, kernel: jax.Array, bias: jax.Array | None, precision, tile_rows: int):
    """``affine`` computed as a loop of matmuls of exactly ``(tile_rows, in) @ (in, out)``.

    The rows are flattened, padded with zeros to a whole number of tiles and mapped over with
    ``jax.lax.map`` (an XLA while loop), so every dot the compiler sees has the same shape whatever
    the number of rows. Its kernel, blocking and reduction order are then fixed, and a row's result
    depends only on that row and on its position in the tile, which tests show does not matter.
    It is jitted so that eager calls reuse one compiled loop per shape instead of tracing the loop
    again on every call.

    Shape:
        x ``(..., in)``, kernel ``(in, out)``, bias ``(out,)`` or None -> ``(..., out)``.

    >>> y = tiled_affine(jnp.ones((3, 2)), jnp.ones((2, 4)), None, precision=None, tile_rows=8)
    >>> y.shape, float(y[2, 3])
    ((3, 4), 2.0)
    """
    *leading, in_features = x.shape
    rows = math.prod(leading)
    tiles = -(-rows // tile_rows)
    flat = x.reshape(rows, in_features)
    padded = jnp.pad(flat, ((0, tiles * tile_rows - rows), (0, 0)))
    # The bias is added to each tile's product elementwise, one rounding per element, inside the
    # loop: XLA fuses the add with the write of the tile into the stacked result, where a separate
    # add after the loop read and wrote the whole output once more (about 5% at 4096 rows).
    products = jax.lax.map(
        lambda tile: add_bias(affine(tile, kernel, None, precision), bias),
        padded.reshape(tiles, tile_rows, in_features),
    )
    return products.reshape(tiles * tile_rows, kernel.shape[1])[:rows].reshape(*leading, kernel.shape[1])


class BatchInvariantLinear(Linear):
    """``Linear`` whose every output row is bitwise the same whatever batch it is computed in.

    A plain matmul lets the library pick a kernel, a blocking and a thread split from the number
    of rows, so the same row can round differently at batch 1, 2 or 128 (docs/batch-invariance.md).
    Here the rows are cut into tiles of ``tile_rows`` (zero-padded) and each tile is one matmul of
    a fixed shape ``(tile_rows, in) @ (in, out)``: one kernel, one reduction order, independent of
    how many rows there are. The bias is added to each tile's product, one rounding per element.

    What it guarantees: output rows, and rows of the gradient with respect to the input, are
    bitwise identical to the same row computed alone, for any batch size and position, under jit
    and eagerly (tested on CPU in float32 and bfloat16; unverified on GPU). The gradient with
    respect to ``kernel``/``bias`` sums over all rows, so it cannot be batch invariant.

    What it costs: padding up to a whole tile, so a single row does ``tile_rows`` rows' work
    (about 9× a plain ``Linear`` at 768→768 on CPU), and a loop over tiles, measured at about 1.0–1.25×
    a plain ``Linear`` for 128 to 4,096 rows (docs/batch-invariance.md).

    Same constructor, parameters (``kernel`` ``(in, out)``, ``bias``) and weight-file names as
    ``Linear``, plus the keyword ``tile_rows``.

    Raises:
        ValueError: a size or an option out of its range (at construction), an input whose shape
        does not fit (at the call; under ``jax.jit`` at trace time).
        TypeError: an input that is not real floating point.

    Shape:
        input ``(..., features=in_features)`` -> output ``(..., out_features)``.

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> layer = BatchInvariantLinear(768, 768, rngs=nnx.Rngs(0))
    >>> x = jnp.linspace(-1, 1, 5 * 768).reshape(5, 768)
    >>> bool((layer(x)[3] == layer(x[3:4])[0]).all())
    True
    """

    def __init__(self, in_features: int, out_features: int, *, tile_rows: int = DEFAULT_TILE_ROWS, **kwargs):
        owner = messages.describe(type(self).__name__, in_features=in_features, out_features=out_features)
        messages.require_positive(owner, tile_rows=tile_rows)
        super().__init__(in_features, out_features, **kwargs)
        self.tile_rows = tile_rows

    def __call__(self, x: jax.Array) -> jax.Array:
        self.validate(x)
        bias = self.bias[...] if self.bias is not None else None
        x, kernel, bias = promote_dtype((x, self.kernel[...], bias), dtype=self.dtype)
        return tiled_affine(x, kernel, bias, precision=self.precision, tile_rows=self.tile_rows)
