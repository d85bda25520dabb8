"""``PooledHead``: two linear layers and a mean over the sequence, taken at a chosen stage."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from jaxlin._inputs import as_mask, require_real
from jaxlin.initializers import default_bias_init, default_kernel_init
from jaxlin.linear import Linear
from layer_rules import STAGES, Described, Stage, compute_stage, earliest_stage, messages

__all__ = ["STAGES", "PooledHead", "earliest_stage", "masked_mean"]


def masked_mean(x: jax.Array, mask: jax.Array | None, axis: int) -> jax.Array:
    """Mean of ``x`` over ``axis`` counting only positions where ``mask`` is True.

    A row with no real position pools to zeros (never NaN, and its gradient is zero).

    Shape:
        x ``(..., seq, ..., features)``, mask ``x.shape[:-1]`` or None -> x without ``axis``.

    >>> x = jnp.array([[[1.0], [3.0]], [[5.0], [7.0]]])
    >>> masked_mean(x, jnp.array([[True, False], [False, False]]), axis=1).tolist()
    [[1.0], [0.0]]
    """
    if mask is None:
        return jnp.mean(x, axis=axis)
    # Accumulate half precision in float32, as jnp.mean does: a bfloat16 count is inexact past 256.
    accumulate = jnp.promote_types(x.dtype, jnp.float32)
    weights = mask[..., None]
    total = jnp.sum(jnp.where(weights, x, 0), axis=axis, dtype=accumulate)
    count = jnp.sum(weights, axis=axis, dtype=accumulate)
    return (total / jnp.maximum(count, 1)).astype(x.dtype)


class PooledHead(Described, nnx.Module):
    """``projector`` (in→hidden), optional ``activation``, ``classifier`` (hidden→out), and a mean
    over ``axis`` taken at ``pool_at``:

    - ``"input"``:  pool → projector → activation → classifier;
    - ``"hidden"``: projector → activation → pool → classifier (Whisper's classification head);
    - ``"output"``: projector → activation → classifier → pool.

    ``mask`` (the input's shape without the features axis; boolean with True = a real position, or
    integer with nonzero = a real position, like Hugging Face's ``attention_mask``) restricts the
    mean to real positions. A row with no real position pools to zeros at the
    stage where the mean is taken, and the layers after it see those zeros.

    ``reorder=True`` computes the same function with the mean moved to :func:`earliest_stage`
    (right after the activation, or the input when there is none), so the layers before it
    run on one row instead of ``seq`` rows; only speed and rounding change. Empty rows are
    reset to zeros where the literal mean would have been taken, so masked results match too.
    ``reorder=False`` computes literally in the order asked.

    Raises:
        ValueError: a size or an option out of its range (at construction), an input whose shape
        does not fit or a mask of the wrong shape (at the call; under ``jax.jit`` at trace time).
        TypeError: an input that is not real floating point, a mask that is neither boolean nor
        integer, an activation that is not callable.

    Shape:
        input ``(..., seq, ..., features=in_features)`` (seq at ``axis``), mask ``input.shape[:-1]``
        -> output ``input.shape[:-1]`` without ``axis``, plus ``(out_features,)``.

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> head = PooledHead(16, 8, 3, pool_at="output", rngs=nnx.Rngs(0))
    >>> x = jnp.ones((4, 10, 16))
    >>> head(x).shape
    (4, 3)
    >>> head.compute_stage                      # no activation: the mean moves to the input
    'input'
    >>> head(x, mask=jnp.arange(10)[None, :] < jnp.array([[3], [10], [0], [5]])).shape
    (4, 3)
    """

    _config = ("in_features", "hidden_features", "out_features", "pool_at")

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        out_features: int,
        *,
        pool_at: Stage = "input",
        activation: Callable[[jax.Array], jax.Array] | None = None,
        axis: int = -2,
        reorder: bool = True,
        use_bias: bool = True,
        dtype=None,
        param_dtype=jnp.float32,
        precision=None,
        kernel_init=default_kernel_init,
        bias_init=default_bias_init,
        rngs: nnx.Rngs,
    ):
        sizes = dict(in_features=in_features, hidden_features=hidden_features, out_features=out_features)
        owner = messages.describe(type(self).__name__, **sizes, pool_at=pool_at)
        messages.require_positive(owner, **sizes)
        messages.require_choice(owner, "pool_at", pool_at, STAGES)
        messages.require_callable(owner, "activation", activation)
        messages.require_axis_arg(owner, "axis", axis)
        self.in_features, self.hidden_features, self.out_features = in_features, hidden_features, out_features
        self.pool_at, self.activation, self.axis, self.reorder = pool_at, activation, axis, reorder
        layer = dict(
            use_bias=use_bias,
            dtype=dtype,
            param_dtype=param_dtype,
            precision=precision,
            kernel_init=kernel_init,
            bias_init=bias_init,
            rngs=rngs,
        )
        self.projector = Linear(in_features, hidden_features, **layer)
        self.classifier = Linear(hidden_features, out_features, **layer)

    @property
    def compute_stage(self) -> str:
        """The stage where the mean is actually taken (``pool_at`` unless ``reorder`` moves it)."""
        return compute_stage(self.pool_at, self.activation is not None, self.reorder)

    def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        owner = self.describe()
        axis = messages.require_pool_axis(owner, x.shape, self.in_features, self.axis)
        require_real(owner, x)
        if mask is not None:
            mask = as_mask(owner, x.shape, mask)
        stage = self.compute_stage
        # Only a masked mean that moved earlier needs its empty rows reset where it was asked for.
        nonempty = jnp.any(mask, axis=axis)[..., None] if mask is not None and stage != self.pool_at else None

        def pool_or_reset(h: jax.Array, here: str) -> jax.Array:
            if stage == here:
                return masked_mean(h, mask, axis)
            if nonempty is not None and self.pool_at == here:
                return jnp.where(nonempty, h, 0)
            return h

        h = pool_or_reset(x, "input")
        h = self.projector(h)
        if self.activation is not None:
            h = self.activation(h)
        h = pool_or_reset(h, "hidden")
        return pool_or_reset(self.classifier(h), "output")
