"""``PerHeadLinear``: ``num_heads`` independent linear maps, one per head, in one module."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx.nn.dtypes import promote_dtype

from jaxlin._inputs import require_real
from jaxlin.auto import fastest_per_head
from jaxlin.initializers import default_bias_init, initialize, per_head_kernel_init
from jaxlin.linear import affine
from layer_rules import PER_HEAD_IMPLS, Described, JaxPerHeadImpl, messages

IMPLS = PER_HEAD_IMPLS["jax"]


def per_head_einsum(x: jax.Array, kernel: jax.Array, bias: jax.Array | None, precision) -> jax.Array:
    """One contraction over all heads, written heads-major: ``"hri,hio->hro"`` on rows ``r``.

    The plain ``"...hi,hio->...ho"`` is the same function, but XLA:CPU lowers it with the kernel
    as the left operand and an ``(heads, out, rows)`` result that needs a transposing copy, about
    3x slower here. Moving the heads axis first gives the batched GEMM that ``jax.vmap`` produces.

    Shape:
        x ``(..., heads, in)``, kernel ``(heads, in, out)``, bias ``(heads, out)`` -> ``(..., heads, out)``.
    """
    rows = jnp.moveaxis(x.reshape((-1,) + x.shape[-2:]), -2, 0)
    y = jnp.einsum("hri,hio->hro", rows, kernel, precision=precision)
    if bias is not None:
        y = y + bias[:, None, :]
    return jnp.moveaxis(y, 0, -2).reshape(x.shape[:-1] + kernel.shape[-1:])


def per_head_vmap(x: jax.Array, kernel: jax.Array, bias: jax.Array | None, precision) -> jax.Array:
    """``jax.vmap`` of one head's ``x @ kernel + bias`` over the heads axis of input and parameters.

    Shape:
        x ``(..., heads, in)``, kernel ``(heads, in, out)``, bias ``(heads, out)`` -> ``(..., heads, out)``.
    """
    one_head = jax.vmap(
        lambda xh, k, b: affine(xh, k, b, precision),
        in_axes=(x.ndim - 2, 0, None if bias is None else 0),
        out_axes=x.ndim - 2,
    )
    return one_head(x, kernel, bias)


def per_head_loop(x: jax.Array, kernel: jax.Array, bias: jax.Array | None, precision) -> jax.Array:
    """A Python loop over heads, stacked back on the heads axis (the baseline of the batched forms).

    Shape:
        x ``(..., heads, in)``, kernel ``(heads, in, out)``, bias ``(heads, out)`` -> ``(..., heads, out)``.
    """
    outputs = [
        affine(x[..., head, :], kernel[head], None if bias is None else bias[head], precision)
        for head in range(kernel.shape[0])
    ]
    return jnp.stack(outputs, axis=-2)


def per_head_einsum_heads_first(
    x: jax.Array, kernel: jax.Array, bias: jax.Array | None, precision
) -> jax.Array:
    """The einsum for heads-major activations ``(heads, ..., in)``: ``"h...i,hio->h...o"``.

    The heads are already the major axis, which is where XLA wants a dot's batch dimension, so
    this compiles to the batched dot alone, without the transposing copies that heads-last input
    needs (on CPU those copies are what separates jaxlin from ``torch.baddbmm`` on strided input).

    Shape:
        x ``(heads, ..., in)``, kernel ``(heads, in, out)``, bias ``(heads, out)`` -> ``(heads, ..., out)``.
    """
    y = jnp.einsum("h...i,hio->h...o", x, kernel, precision=precision)
    if bias is not None:
        y = y + bias.reshape(bias.shape[:1] + (1,) * (y.ndim - 2) + bias.shape[1:])
    return y


FORMULATIONS = {"einsum": per_head_einsum, "vmap": per_head_vmap, "loop": per_head_loop}


class PerHeadLinear(Described, nnx.Module):
    """``num_heads`` independent linear layers: head ``h`` computes ``x[..., h, :] @ kernel[h] + bias[h]``.

    ``impl`` picks the formulation, all with the same parameters and the same function:
    ``"auto"`` (the default) the one the study measured fastest for the backend and shape
    (:func:`jaxlin.auto.fastest_per_head`, chosen at trace time), ``"einsum"`` one contraction
    with heads as a batch dimension, ``"vmap"`` ``jax.vmap`` of a single head's linear over a
    stacked kernel (what ``nnx.vmap`` over ``nnx.split_rngs``-made per-head ``Linear`` layers
    computes, without the per-call graph bookkeeping), ``"loop"`` a Python loop over heads. The
    default kernel init is lecun_normal with fan-in ``in_features`` *per head*; ``nnx.Einsum`` and
    ``LinearGeneral(batch_axis=...)`` count ``heads * in_features``.

    ``head_axis`` says where the heads axis is in the input (features are always last); the
    output keeps heads on that axis.

    Raises:
        ValueError: a size or an option out of its range (at construction), an input whose shape
        does not fit (at the call; under ``jax.jit`` at trace time).
        TypeError: an input that is not real floating point.

    Shape:
        input ``(..., heads=num_heads, features=in_features)`` -> ``(..., heads, out_features)``;
        kernel ``(num_heads, in_features, out_features)``, bias ``(num_heads, out_features)``.

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> layer = PerHeadLinear(4, 16, 8, rngs=nnx.Rngs(0))
    >>> x = jnp.ones((2, 5, 4, 16))                    # (batch, windows, heads, features)
    >>> layer(x).shape
    (2, 5, 4, 8)
    >>> head_2 = x[..., 2, :] @ layer.kernel[2] + layer.bias[None, None, 2]
    >>> bool(jnp.allclose(layer(x)[..., 2, :], head_2, atol=1e-5))
    True
    """

    _config = ("num_heads", "in_features", "out_features")

    def __init__(
        self,
        num_heads: int,
        in_features: int,
        out_features: int,
        *,
        impl: JaxPerHeadImpl = "auto",
        head_axis: int = -2,
        use_bias: bool = True,
        dtype=None,
        param_dtype=jnp.float32,
        precision=None,
        kernel_init=per_head_kernel_init,
        bias_init=default_bias_init,
        rngs: nnx.Rngs,
    ):
        sizes = dict(num_heads=num_heads, in_features=in_features, out_features=out_features)
        owner = messages.describe(type(self).__name__, **sizes)
        messages.require_positive(owner, **sizes)
        messages.require_choice(owner, "impl", impl, IMPLS)
        messages.require_axis_arg(owner, "head_axis", head_axis)
        self.num_heads, self.in_features, self.out_features = num_heads, in_features, out_features
        self.impl, self.head_axis, self.use_bias = impl, head_axis, use_bias
        self.dtype, self.param_dtype, self.precision = dtype, param_dtype, precision
        kernel_shape = (num_heads, in_features, out_features)
        self.kernel = nnx.Param(
            initialize(kernel_init, rngs.params(), kernel_shape, param_dtype, in_features, owner=owner)
        )
        self.bias = (
            nnx.Param(
                initialize(
                    bias_init,
                    rngs.params(),
                    (num_heads, out_features),
                    param_dtype,
                    in_features,
                    owner=owner,
                    what="bias",
                )
            )
            if use_bias
            else None
        )

    def formulation(self, shape: tuple[int, ...], dtype=None, *, heads_first: bool = False) -> str:
        """The formulation an input of ``shape`` and ``dtype`` runs (heads last; ``heads_first``: heads on
        axis 0, where ``"einsum"`` is the copy-free one): ``impl``, or what ``"auto"`` picks."""
        if self.impl != "auto":
            return self.impl
        rows = math.prod(shape) // (self.num_heads * self.in_features)
        return fastest_per_head(
            self.num_heads, rows, self.in_features, self.out_features, dtype=dtype, heads_first=heads_first
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        owner = self.describe()
        axis = messages.require_heads(owner, x.shape, self.num_heads, self.in_features, self.head_axis)
        require_real(owner, x)
        bias = self.bias[...] if self.bias is not None else None
        x, kernel, bias = promote_dtype((x, self.kernel[...], bias), dtype=self.dtype)
        if axis == 0 and x.ndim > 2 and self.formulation(x.shape, x.dtype, heads_first=True) == "einsum":
            return per_head_einsum_heads_first(x, kernel, bias, self.precision)
        moved = axis != x.ndim - 2
        if moved:
            x = jnp.moveaxis(x, axis, -2)
        y = FORMULATIONS[self.formulation(x.shape, x.dtype)](x, kernel, bias, self.precision)
        return jnp.moveaxis(y, -2, axis) if moved else y
