"""The float64 runs' modules: a JAX module in float64 (:func:`float64_jax`), and the magnitudes ``M`` the
analytic bound multiplies (:func:`magnitudes`: the module in float64 on ``|x|``, ``|W|``, ``|g|``).

>>> import jaxlin
>>> layer = jaxlin.Linear(3, 2, rngs=nnx.Rngs(0))
>>> with jax.enable_x64(True):
...     float64_jax(layer).kernel[...].dtype
dtype('float64')
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from crosscheck.numerics import is_floating
from crosscheck.porting.evaluate import Evaluation, evaluate_jax
from crosscheck.porting.fused import argument_shapes, seen_through, traced_programs
from crosscheck.porting.outputs import flatten_output
from crosscheck.weights.tree import Rename, submodules


def _on_host(array, dtype, transform=None):
    """``array`` converted to ``dtype`` (and ``transform``-ed) by NumPy, put back where it was (one
    device, or sharded): exact, and no compile per shape as a JAX conversion would need."""
    values = np.asarray(array).astype(dtype)
    return jax.device_put(values if transform is None else transform(values), array.sharding)


def _own_float64_state(state):
    """The variables that are not parameters as the float64 module's own (a cache it advances is not the
    original's), floating ones in float64: a float64 value written into a float32 cache would be rounded
    there, and the truth downstream of it would be float32's."""

    def own(array):
        if not jnp.issubdtype(array.dtype, jnp.floating) or array.dtype == jnp.float64:
            return array  # immutable: a value the view writes replaces the view's own, not the original's
        return _on_host(array, np.float64)

    return jax.tree.map(own, state)


def _float64_attributes(module: nnx.Module) -> nnx.Module:
    for _, layer in submodules(module):
        for attribute in ("dtype", "param_dtype"):
            dtype = getattr(layer, attribute, None)
            if dtype is not None and jnp.issubdtype(dtype, jnp.floating):
                setattr(layer, attribute, jnp.float64)
    return module


def float64_view(module: nnx.Module) -> nnx.Module:
    """:func:`float64_jax` without the copy, for the runs under
    :func:`crosscheck.porting.truth.promoting_jax`: the parameters are the working module's own arrays
    (no float64 copy of the model is ever whole), widened where each is used, which computes what the
    float64 copy would; a run with gradients widens them at the start of its program
    (``Request(widen=True)``), so that it differentiates float64 values. The variables that are not
    parameters are the view's own (a cache it advances is not the original's); every floating
    ``dtype``/``param_dtype`` is float64, as in the copy."""
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    return _float64_attributes(nnx.merge(graphdef, params, _own_float64_state(rest)))


def float64_jax(module: nnx.Module) -> nnx.Module:
    """A copy of a JAX module computing in float64: every parameter upcast (exactly), and every layer
    whose ``dtype`` names a floating computation dtype (``nnx.Embed``'s does by default) set to float64.

    A floating ``param_dtype`` becomes float64 too: it only says how parameters were made, and with it
    the float32 and bfloat16 copies of one module have the same structure, so they share one compiled
    float64 program (``jax.jit`` keys its cache on the structure).
    """
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    double = nnx.merge(
        graphdef, jax.tree.map(lambda a: _on_host(a, np.float64), params), _own_float64_state(rest)
    )
    return _float64_attributes(double)


def _absolute_in_place(values: np.ndarray) -> np.ndarray:
    return np.abs(values, out=values)


def absolute(module: nnx.Module, inputs, cotangent):
    """What :func:`magnitudes` evaluates: a float64 copy of ``module`` holding ``|W|``, ``|b|``, and
    ``|x|``, ``|g|`` (masks and integers kept as they are). Call under ``jax.enable_x64``."""
    graphdef, params, rest = nnx.split(float64_view(module), nnx.Param, ...)
    params = jax.tree.map(lambda a: _on_host(a, np.float64, _absolute_in_place), params)
    absolute_inputs = tuple(
        np.abs(np.asarray(a).astype(np.float64)) if is_floating(np.asarray(a).dtype) else a for a in inputs
    )
    absolute_cotangent = None if cotangent is None else jax.tree.map(np.abs, cotangent)
    return nnx.merge(graphdef, params, rest), absolute_inputs, absolute_cotangent


def magnitudes(
    module: nnx.Module, inputs, cotangent, *, grads: bool = True, rename: Rename = None
) -> Evaluation:
    """``M`` for every output and gradient element: the module evaluated in float64 on ``|x|``
    with ``|W|``, ``|b|`` and cotangent ``|g|``.

    For compositions of linear maps, means and activations with ``|act(z)| <= act(|z|)`` (relu,
    gelu, identity) this is ``Σ|x||w|`` carried through every layer, the quantity rounding-error
    bounds multiply; for gradients it is the same sum over the backward pass.
    """
    with jax.enable_x64(True):
        if not grads:
            return _forward_magnitudes(module, inputs)
        module, inputs, cotangent = absolute(module, inputs, cotangent)
        return evaluate_jax(module, inputs, cotangent, grads=grads, rename=rename)


def _forward_magnitudes(module: nnx.Module, inputs) -> Evaluation:
    """The outputs' ``M`` with ``|W|`` taken inside the program, where XLA may fuse it into each use (an
    embedding gathers 16 rows of ``|W|``, never the whole table in float64)."""
    graphdef, params, rest = nnx.split(float64_view(module), nnx.Param, ...)
    arrays = tuple(
        jnp.abs(jnp.asarray(a, jnp.float64)) if is_floating(np.asarray(a).dtype) else jnp.asarray(a)
        for a in inputs
    )

    def absolute_weight(a):
        return jnp.abs(a.astype(jnp.float64)) if jnp.issubdtype(a.dtype, jnp.floating) else a

    def forward(params, rest, arrays):
        merged = nnx.merge(graphdef, jax.tree.map(absolute_weight, params), rest)
        return dict(flatten_output(merged(*arrays), type(module).__name__))

    traced = traced_programs()  # within one locate, the rows of repeated layers compile one
    key = (
        "magnitudes",
        jax.config.jax_default_device,
        seen_through(graphdef),
        argument_shapes((params, rest, arrays)),
    )
    program = None if traced is None else traced.get(key)
    if program is None:
        program = jax.jit(forward)
        if traced is not None:
            traced[key] = program
    outputs = program(params, rest, arrays)
    return Evaluation({path: np.asarray(y) for path, y in outputs.items()}, {})
