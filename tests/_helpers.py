"""Small helpers shared by the test files: gradients of a fixed scalar loss, and float64 copies."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxlin import Linear


def loss_weights(shape, seed: int = 7) -> np.ndarray:
    """Fixed, non-uniform cotangent so that every output element matters to the loss."""
    return np.random.default_rng(seed).standard_normal(shape)


def _call(module: nnx.Module, *inputs):
    return module(*inputs)


def _grads(module: nnx.Module, x, cotangent, *rest):
    graphdef, params = nnx.split(module, nnx.Param)

    def loss(p, x):
        return jnp.sum(nnx.merge(graphdef, p)(x, *rest) * cotangent)

    return jax.grad(loss, argnums=(0, 1))(params, x)


# One transformed function per transform within a test: ``nnx.jit`` then compiles each module
# structure and input shape once, not once per call (a fresh lambda is a fresh cache), so hypothesis
# examples that draw a shape again reuse its program. tests/conftest.py empties it before each test:
# a program traced under one test's monkeypatch (a formulation rule, say) must not serve another.
_TRANSFORMED: dict = {}


def forget_transformed() -> None:
    _TRANSFORMED.clear()


def _transformed(fn, transform):
    if transform is None:
        return fn
    key = (fn, transform)
    if key not in _TRANSFORMED:
        _TRANSFORMED[key] = transform(fn)
    return _TRANSFORMED[key]


def apply(module: nnx.Module, *inputs, transform=None):
    """``module(*inputs)``, through ``transform`` (``nnx.jit``, or None for eager) when given."""
    return _transformed(_call, transform)(module, *inputs)


def jax_grads(module: nnx.Module, *inputs, cotangent=None, transform=None):
    """Output, parameter gradients (a flat ``{path: array}``) and the first input's gradient of
    ``sum(module(*inputs) * cotangent)``; forward and gradient go through ``transform`` when given.
    """
    y = apply(module, *inputs, transform=transform)
    ct = jnp.asarray(loss_weights(y.shape) if cotangent is None else cotangent, y.dtype)
    param_grads, input_grad = _transformed(_grads, transform)(module, inputs[0], ct, *inputs[1:])
    flat = {".".join(map(str, path)): np.asarray(leaf[...]) for path, leaf in nnx.to_flat_state(param_grads)}
    return np.asarray(y), flat, np.asarray(input_grad)


def params_of(module: nnx.Module) -> dict[str, np.ndarray]:
    """``{"kernel": ..., "projector.bias": ...}`` as NumPy arrays."""
    return {
        ".".join(map(str, path)): np.asarray(leaf[...])
        for path, leaf in nnx.to_flat_state(nnx.state(module, nnx.Param))
    }


def set_params(module: nnx.Module, values: dict[str, np.ndarray]) -> None:
    """Overwrite parameters by dotted path, keeping each parameter's dtype."""
    for path, leaf in nnx.to_flat_state(nnx.state(module, nnx.Param)):
        key = ".".join(map(str, path))
        if key in values:
            variable = module
            for part in path:
                variable = getattr(variable, part) if isinstance(part, str) else variable[part]
            variable[...] = jnp.asarray(values[key], leaf[...].dtype)


def float64_copy(module: nnx.Module) -> nnx.Module:
    """The same module with every parameter upcast to float64 (x64 must be enabled)."""
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    return nnx.merge(graphdef, params, rest)


COPIED_OVER = nnx.initializers.zeros_init()
"""The kernel init of a JAX twin whose weights a copy from torch overwrites before anything reads them:
zeros (a copy that failed would leave them, unequal to torch's random weights), where Flax's random init
would compile a program per kernel shape."""


def numpy_init(seed: int):
    """A plain Flax-style initializer drawing N(0, 1) with NumPy (no per-shape JAX compile).

    The seed is mixed with the shape so that layers of different shapes get different values.
    """

    def init(key, shape, dtype=jnp.float32):
        return jnp.asarray(np.random.default_rng([seed, *shape]).standard_normal(shape), dtype)

    return init


def linear_holding(kernel, bias, param_dtype) -> Linear:
    """A ``jaxlin.Linear`` whose parameters are ``kernel`` ``(in, out)`` and ``bias`` (None: no bias)."""
    layer = Linear(
        kernel.shape[0],
        kernel.shape[1],
        use_bias=bias is not None,
        param_dtype=param_dtype,
        kernel_init=nnx.initializers.zeros_init(),
        rngs=nnx.Rngs(0),
    )
    layer.kernel[...] = kernel
    if bias is not None:
        layer.bias[...] = bias
    return layer


CHEAP = {"kernel_init": numpy_init(0)}  # where the initial values do not matter: no truncated-normal compile
