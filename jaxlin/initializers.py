"""Initializers: Flax's defaults, per-head fan-in, and PyTorch's default as an option.

PyTorch initializes ``nn.Linear``/``nn.Conv1d`` weights with ``kaiming_uniform_(a=√5)``,
which is exactly ``U(-1/√fan_in, 1/√fan_in)`` (gain √(2/(1+5)) times √(3/fan_in)), and the
bias with the same ``U(±1/√fan_in)``. The bias cannot compute ``fan_in`` from its own shape,
so :data:`torch_uniform` is a :class:`FanInInitializer`: every jaxlin layer passes its fan-in
(``in_features``; per head for ``PerHeadLinear``) to such an initializer.

Use it for both parameters to reproduce PyTorch's default::

    Linear(64, 32, kernel_init=torch_uniform, bias_init=torch_uniform, rngs=rngs)
    Linear(64, 32, **TORCH_DEFAULT, rngs=rngs)        # the same

>>> import jax, jax.numpy as jnp
>>> w = torch_uniform(jax.random.key(0), (256, 8), jnp.float32, fan_in=256)
>>> bool(jnp.abs(w).max() <= 1 / 16)
True
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class FanInInitializer:
    """An initializer that needs the layer's fan-in, called as ``init(key, shape, dtype, fan_in)``.

    The fan-in is the fourth positional argument so that Flax's metadata wrappers, which pass their
    arguments through positionally (``nnx.with_partitioning(torch_uniform, ("heads", None, None))``),
    hand it on.
    """

    def __call__(self, key: jax.Array, shape, dtype=jnp.float32, fan_in: int | None = None) -> jax.Array:
        raise NotImplementedError


class FanInUniform(FanInInitializer):
    """``U(-scale/√fan_in, scale/√fan_in)``; ``scale=1`` is PyTorch's default for weights and biases.

    Shape:
        any ``shape``; ``fan_in`` is the number of inputs each output sums over.
    """

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def __call__(self, key, shape, dtype=jnp.float32, fan_in: int | None = None) -> jax.Array:
        if fan_in is None:
            raise TypeError("FanInUniform: pass the layer's fan_in (jaxlin layers do).")
        bound = self.scale / fan_in**0.5
        return jax.random.uniform(key, shape, dtype, minval=-bound, maxval=bound)

    def __repr__(self) -> str:
        return f"FanInUniform(scale={self.scale})"


torch_uniform = FanInUniform()
"""PyTorch's default for ``nn.Linear``/``nn.Conv1d`` weights and biases: U(±1/√fan_in)."""

TORCH_DEFAULT = {"kernel_init": torch_uniform, "bias_init": torch_uniform}
"""Keyword arguments that give any jaxlin layer PyTorch's default initialization."""

default_kernel_init = nnx.initializers.lecun_normal()
"""Flax's default kernel init (what ``nnx.Linear`` uses): truncated normal, variance 1/fan_in."""

per_head_kernel_init = nnx.initializers.lecun_normal(in_axis=-2, out_axis=-1, batch_axis=(0,))
"""lecun_normal with the heads axis (0) as a batch axis, so fan_in = in_features per head.

Plain ``lecun_normal()`` on a ``(heads, in, out)`` kernel (what ``nnx.Einsum`` and
``nnx.LinearGeneral`` effectively do) counts ``heads * in`` as the fan-in and draws
weights √heads times too small.
"""

default_bias_init = nnx.initializers.zeros_init()


def initialize(init, key: jax.Array, shape, dtype, fan_in: int, *, owner: str = "", what: str = "kernel"):
    """Call ``init`` as Flax calls initializers, passing ``fan_in`` to a :class:`FanInInitializer`,
    also one wrapped by ``nnx.with_partitioning``/``nnx.with_metadata`` (what it returns then carries
    the sharding metadata, as ``nnx.Linear``'s does).

    Raises:
        ValueError: the sharding metadata splits an axis over mesh axes whose size does not divide it
        (named after ``owner`` and ``what``).
    """
    inner = init
    while hasattr(inner, "__wrapped__"):
        inner = inner.__wrapped__
    value = (
        init(key, shape, dtype, fan_in) if isinstance(inner, FanInInitializer) else init(key, shape, dtype)
    )
    metadata = getattr(value, "metadata", None)
    if isinstance(metadata, dict) and metadata.get("out_sharding"):
        require_divisible(owner, what, shape, metadata["out_sharding"], metadata.get("mesh"))
    return value


def require_divisible(owner: str, what: str, shape, spec, mesh=None) -> None:
    """ValueError unless each axis of ``shape`` split by ``spec`` (mesh axis names per array axis)
    divides by the size of those mesh axes (``mesh``, else the one ``jax.set_mesh`` set)."""
    sizes = dict((mesh or jax.sharding.get_abstract_mesh()).shape)
    for index, (dim, axes) in enumerate(zip(shape, spec, strict=False)):
        names = () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)
        parts = 1
        for name in names:
            parts *= sizes.get(name, 1)
        if dim % parts:
            raise ValueError(
                f"{owner}: {what} axis {index} has size {dim}, which the mesh axis {axes!r} of size {parts} "
                f"does not divide; make it a multiple of {parts} or use a smaller mesh axis."
            )
