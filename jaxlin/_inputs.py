"""Input checks every jaxlin module shares: real floating dtype, and masks (boolean or 0/1 integers)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from layer_rules import messages


def require_real(owner: str, x: jax.Array) -> None:
    """TypeError unless ``x`` holds real floating-point numbers: integers, bools and complex are refused.

    >>> require_real("Linear(in_features=1, out_features=1)", jnp.ones(2, jnp.complex64))
    Traceback (most recent call last):
    ...
    TypeError: Linear(in_features=1, out_features=1): expected a real floating-point input, got dtype complex64; cast it first, e.g. x.astype(jnp.float32).
    """
    messages.require_floating(owner, "input", x.dtype, jnp.issubdtype(x.dtype, jnp.floating), "jax")


def as_mask(owner: str, x_shape, mask) -> jax.Array:
    """``mask`` validated against an input of ``x_shape`` and returned as booleans (nonzero = True).

    The dtype in a message is the one the caller passed (an int64 NumPy mask is reported as int64,
    not as the int32 JAX would make of it).

    Shape:
        mask ``x_shape[:-1]`` -> the same shape, bool.

    >>> as_mask("PooledHead()", (2, 3, 4), np.array([[1, 0, 1], [0, 0, 0]])).tolist()
    [[True, False, True], [False, False, False]]
    """
    dtype = mask.dtype if hasattr(mask, "dtype") else np.asarray(mask).dtype
    kind = "bool" if dtype == np.bool_ else "integer" if jnp.issubdtype(dtype, jnp.integer) else "other"
    messages.require_mask(owner, x_shape, np.shape(mask), dtype, kind, "jax")
    mask = jnp.asarray(mask)
    return mask if kind == "bool" else mask != 0
