"""``PointwiseConv``: a 1x1 convolution, which is a linear layer applied at every position."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx.nn.dtypes import promote_dtype

from jaxlin._inputs import require_real
from jaxlin.auto import fastest_pointwise
from jaxlin.initializers import default_bias_init, default_kernel_init, initialize
from jaxlin.linear import project
from layer_rules import AUTO, POINTWISE_IMPLS, Described, JaxPointwiseImpl, messages, pointwise_impl


class PointwiseConv(Described, nnx.Module):
    """A 1x1 convolution over channels-last input: the same function as ``Linear`` at each position.

    The kernel is stored as ``nnx.Conv(kernel_size=(1,))`` stores it, ``(1, in, out)``.
    ``impl="matmul"`` runs the math as one ``dot_general`` on ``kernel[0]`` — the very GEMM ``Linear``
    runs (outputs and gradients bitwise equal to ``Linear`` on ``kernel[0]``, a tested property);
    ``impl="conv"`` runs ``lax.conv_general_dilated``, the same function rounded in another order.
    ``impl="auto"`` (the default) takes whichever the study measured faster for the backend and the
    input's shape (:func:`jaxlin.auto.fastest_pointwise`, chosen at trace time); ``docs/pointwise.md``
    has the table. ``"dot"`` (the matmul path's former name) and ``"linear"`` (torch_ref's) are
    accepted for ``"matmul"``.

    Raises:
        ValueError: a size or an option out of its range (at construction), an input whose shape
        does not fit (at the call; under ``jax.jit`` at trace time).
        TypeError: an input that is not real floating point.

    Shape:
        input ``(..., length, features=in_features)`` -> ``(..., length, out_features)``;
        kernel ``(1, in_features, out_features)``, bias ``(out_features,)``.

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> conv = PointwiseConv(8, 4, rngs=nnx.Rngs(0))
    >>> x = jnp.ones((2, 16, 8))
    >>> conv(x).shape
    (2, 16, 4)
    >>> bool(jnp.allclose(conv(x), PointwiseConv(8, 4, impl="conv", rngs=nnx.Rngs(0))(x), atol=1e-6))
    True
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
        shape = (1, in_features, out_features)
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

    def formulation(self, shape: tuple[int, ...]) -> str:
        """The path an input of ``shape`` runs: ``impl``, or what ``"auto"`` picks."""
        return self.impl if self.impl != AUTO else fastest_pointwise(shape)

    def __call__(self, x: jax.Array) -> jax.Array:
        owner = self.describe()
        messages.require_channels(owner, x.shape, self.in_features, channels_first=False)
        require_real(owner, x)
        bias = self.bias[...] if self.bias is not None else None
        x, kernel, bias = promote_dtype((x, self.kernel[...], bias), dtype=self.dtype)
        return project(x, kernel[0], bias, self.precision, self.formulation(x.shape))
