"""``Linear`` and ``collapse``: the dense layer every other variant is measured against."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx.nn.dtypes import promote_dtype

from jaxlin._inputs import require_real
from jaxlin.auto import fastest_pointwise
from jaxlin.initializers import default_bias_init, default_kernel_init, initialize
from layer_rules import AUTO, POINTWISE_IMPLS, Described, JaxPointwiseImpl, messages, pointwise_impl


def add_bias(y: jax.Array, bias: jax.Array | None) -> jax.Array:
    """``y + bias`` over the last axis (``y`` itself when there is no bias).

    Shape:
        y ``(..., out)``, bias ``(out,)`` or None -> ``(..., out)``.

    >>> add_bias(jnp.zeros((2, 3)), jnp.arange(3.0))[1].tolist()
    [0.0, 1.0, 2.0]
    """
    return y if bias is None else y + bias.reshape((1,) * (y.ndim - 1) + bias.shape)


def affine(x: jax.Array, kernel: jax.Array, bias: jax.Array | None, precision) -> jax.Array:
    """``x @ kernel + bias`` contracting the last axis of ``x`` with axis 0 of ``kernel``.

    Shape:
        x ``(..., in)``, kernel ``(in, out)``, bias ``(out,)`` or None -> ``(..., out)``.

    >>> affine(jnp.ones((2, 3)), jnp.ones((3, 4)), jnp.arange(4.0), None)[1].tolist()
    [3.0, 4.0, 5.0, 6.0]
    """
    y = jax.lax.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())), precision=precision)
    return add_bias(y, bias)


def conv1x1(x: jax.Array, kernel: jax.Array, precision) -> jax.Array:
    """``lax.conv_general_dilated`` with a width-1 window over channels-last input.

    Shape:
        x ``(..., length, in)``, kernel ``(1, in, out)`` -> ``(..., length, out)``.

    >>> conv1x1(jnp.ones((2, 5, 3)), jnp.ones((1, 3, 4)), None).shape
    (2, 5, 4)
    """
    batch_shape, (length, features) = x.shape[:-2], x.shape[-2:]
    flat = x.reshape((math.prod(batch_shape), length, features))  # explicit: -1 is ambiguous at length 0
    y = jax.lax.conv_general_dilated(
        flat,
        kernel,
        window_strides=(1,),
        padding="VALID",
        dimension_numbers=("NWC", "WIO", "NWC"),
        precision=precision,
    )
    return y.reshape(batch_shape + y.shape[-2:])


def project(x: jax.Array, kernel: jax.Array, bias: jax.Array | None, precision, lowering: str) -> jax.Array:
    """``x @ kernel + bias`` by ``lowering``: ``"matmul"`` (:func:`affine`, one ``dot_general``) or
    ``"conv"`` (:func:`conv1x1`, a 1×1 convolution; a single vector is a length-1 sequence).

    Shape:
        x ``(..., in)``, kernel ``(in, out)``, bias ``(out,)`` or None -> ``(..., out)``.

    >>> project(jnp.ones((2, 3)), jnp.ones((3, 4)), None, None, "conv")[0].tolist()
    [3.0, 3.0, 3.0, 3.0]
    """
    if lowering == "matmul":
        return affine(x, kernel, bias, precision)
    sequence = x if x.ndim >= 2 else x[None]
    y = conv1x1(sequence, kernel[None], precision).reshape(x.shape[:-1] + kernel.shape[1:])
    return add_bias(y, bias)


class Linear(Described, nnx.Module):
    """``y = x @ kernel + bias`` over the last axis, with any number of leading axes.

    The same parameters and math as ``flax.nnx.Linear``; it adds input validation with
    messages that name the module, the expected and the actual shape. ``impl`` picks the lowering:
    ``"matmul"`` is ``nnx.Linear``'s own program (one ``dot_general``: bitwise equal to it, tested);
    ``"conv"`` runs the same product as a 1×1 convolution, which XLA:CPU compiles to a different
    dot; ``"auto"`` (the default) takes the one ``crosscheck study`` measured faster for the backend
    and the input's shape (:func:`jaxlin.auto.fastest_pointwise`: the convolution only on CPU, for
    a batched input of 4,096 rows or more, where it was 1.1–1.25× faster). Both lowerings are the
    same function, rounded in another order.

    Raises:
        ValueError: a size or an option out of its range (at construction), an input whose shape
        does not fit (at the call; under ``jax.jit`` at trace time).
        TypeError: an input that is not real floating point.

    Shape:
        input ``(..., features=in_features)`` -> output ``(..., out_features)``;
        kernel ``(in_features, out_features)``, bias ``(out_features,)``.

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> layer = Linear(3, 2, rngs=nnx.Rngs(0))
    >>> layer(jnp.ones((5, 7, 3))).shape
    (5, 7, 2)
    """

    _config = ("in_features", "out_features")

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        impl: JaxPointwiseImpl = "auto",
        use_bias: bool = True,
        dtype=None,
        param_dtype=jnp.float32,
        precision=None,
        kernel_init=default_kernel_init,
        bias_init=default_bias_init,
        rngs: nnx.Rngs,
    ):
        owner = messages.describe(type(self).__name__, in_features=in_features, out_features=out_features)
        messages.require_positive(owner, in_features=in_features, out_features=out_features)
        self.impl = pointwise_impl(owner, impl, (AUTO, *POINTWISE_IMPLS))
        self.in_features = in_features
        self.out_features = out_features
        self.use_bias = use_bias
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.precision = precision
        shape = (in_features, out_features)
        self.kernel = nnx.Param(
            initialize(kernel_init, rngs.params(), shape, param_dtype, in_features, owner=owner)
        )
        self.bias = (
            nnx.Param(
                initialize(
                    bias_init,
                    rngs.params(),
                    (out_features,),
                    param_dtype,
                    in_features,
                    owner=owner,
                    what="bias",
                )
            )
            if use_bias
            else None
        )

    def validate(self, x: jax.Array) -> None:
        """Raise ValueError/TypeError unless ``x`` is a real floating ``(..., in_features)`` array."""
        messages.require_features(self.describe(), x.shape, self.in_features)
        require_real(self.describe(), x)

    def __call__(self, x: jax.Array) -> jax.Array:
        self.validate(x)
        bias = self.bias[...] if self.bias is not None else None
        x, kernel, bias = promote_dtype((x, self.kernel[...], bias), dtype=self.dtype)
        return project(x, kernel, bias, self.precision, self.formulation(x.shape))

    def formulation(self, shape: tuple[int, ...]) -> str:
        """The lowering an input of ``shape`` runs: ``impl``, or what ``"auto"`` picks."""
        return self.impl if self.impl != AUTO else fastest_pointwise(shape)


def collapse(first: Linear, second: Linear) -> Linear:
    """One ``Linear`` computing ``second(first(x))``: ``W = W1 @ W2``, ``b = b1 @ W2 + b2``.

    Two stacked linear layers with nothing in between are one linear layer. The product is
    formed at ``precision=HIGHEST`` in the promoted parameter dtype; the result keeps
    ``second``'s ``dtype``/``precision`` and has a bias when either layer had one.

    Shape:
        first ``(in, hidden)``, second ``(hidden, out)`` -> ``Linear(in, out)``.

    Raises:
        TypeError: either layer is not a ``jaxlin.Linear``.
        ValueError: ``first.out_features != second.in_features``.

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> a, b = Linear(4, 8, rngs=nnx.Rngs(0)), Linear(8, 2, rngs=nnx.Rngs(1))
    >>> x = jnp.ones((3, 4))
    >>> bool(jnp.allclose(collapse(a, b)(x), b(a(x)), atol=1e-5))
    True
    """
    for role, layer in (("first", first), ("second", second)):
        if not isinstance(layer, Linear):
            raise TypeError(f"collapse: {role} must be a jaxlin.Linear, got {type(layer).__name__}.")
    if first.out_features != second.in_features:
        raise ValueError(
            f"collapse(first={first.describe()}, second={second.describe()}): the sizes don't chain; "
            f"first's out_features={first.out_features} must equal second's in_features={second.in_features}."
        )
    w1, w2 = first.kernel[...], second.kernel[...]
    w1, w2 = promote_dtype((w1, w2), dtype=None)
    highest = jax.lax.Precision.HIGHEST
    kernel = jnp.matmul(w1, w2, precision=highest)
    use_bias = first.bias is not None or second.bias is not None
    bias = jnp.zeros((second.out_features,), kernel.dtype)
    if first.bias is not None:
        bias = bias + jnp.matmul(first.bias[...].astype(kernel.dtype), w2, precision=highest)
    if second.bias is not None:
        bias = bias + second.bias[...].astype(kernel.dtype)
    merged = Linear(
        first.in_features,
        second.out_features,
        use_bias=use_bias,
        dtype=second.dtype,
        param_dtype=kernel.dtype,
        precision=second.precision,
        kernel_init=nnx.initializers.zeros_init(),
        rngs=nnx.Rngs(0),
    )
    merged.kernel[...] = kernel
    if use_bias:
        merged.bias[...] = bias
    return merged
