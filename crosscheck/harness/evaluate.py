"""Run a module forward and backward in either framework and return NumPy arrays in torch names.

The loss is fixed: ``sum(output * cotangent)`` with one cotangent shared by both frameworks, so
the gradients are comparable element by element. Parameter gradients are keyed by PyTorch's
``state_dict`` names and laid out like torch's parameters (a JAX module's are mapped through
:mod:`crosscheck.weights`); the input gradient is ``"input"``, in jaxlin's layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

from crosscheck.harness.cases import swap_channels
from crosscheck.numerics import is_floating
from crosscheck.weights import numpy_of_torch, torch_of_numpy, torch_state_of_jax
from crosscheck.weights.tree import Rename, submodules


class ModelCallError(ValueError):
    """A model raised when called on the inputs it was given (they do not fit it): the message names the
    framework and the module, then the model's own error in one line."""


@dataclass
class Evaluation:
    """One framework's output and gradients for one set of inputs."""

    output: np.ndarray
    grads: dict[str, np.ndarray]


def cast_inputs(inputs, dtype) -> tuple[np.ndarray, ...]:
    """Floating inputs cast to ``dtype`` (rounded once, here); masks and integers kept as they are."""
    arrays = [np.asarray(a) for a in inputs]
    return tuple(a.astype(dtype) if is_floating(a.dtype) else a for a in arrays)


def first_array(output):
    """A module's output as one array: itself, or the first array of a tuple, list or ``ModelOutput``
    (what a Hugging Face model returns), whichever framework it comes from."""
    while isinstance(output, (tuple, list, dict)):
        output = next(iter(output.values())) if isinstance(output, dict) else output[0]
    return output


def forward_and_grads(graphdef, params, rest, inputs, cotangent, grads: bool):
    """The traced computation of one evaluation: ``(output, parameter grads, input grad)``; the first
    input gets a gradient when it is floating."""
    if not grads:
        return first_array(nnx.merge(graphdef, params, rest)(*inputs)), None, None

    def loss(p, x):
        y = first_array(nnx.merge(graphdef, p, rest)(x, *inputs[1:]))
        accumulate = jnp.float64 if y.dtype == jnp.float64 else jnp.float32
        return jnp.sum(y.astype(accumulate) * cotangent.astype(accumulate)), y

    if not jnp.issubdtype(inputs[0].dtype, jnp.floating):
        param_grads, y = jax.grad(lambda p: loss(p, inputs[0]), has_aux=True)(params)
        return y, param_grads, None
    (param_grads, input_grad), y = jax.grad(loss, argnums=(0, 1), has_aux=True)(params, inputs[0])
    return y, param_grads, input_grad


jitted_forward_and_grads = jax.jit(forward_and_grads, static_argnames=("graphdef", "grads"))
"""One compiled program per module structure, shapes and dtypes (the float64 truth and the magnitudes
of a case share theirs, and so do the float32 and bfloat16 copies' truths). Called inside another
jitted function (:mod:`crosscheck.harness.fused`) it is traced once per structure, however often
it is called there."""


def evaluation_of(graphdef, rest, computed, *, grads: bool, rename: Rename = None) -> Evaluation:
    """:func:`forward_and_grads`'s result as NumPy arrays, the parameter gradients in torch names."""
    output, param_grads, input_grad = computed
    if not grads:
        return Evaluation(np.asarray(output), {})
    named = torch_state_of_jax(nnx.merge(graphdef, param_grads, rest), rename=rename)
    if input_grad is not None:
        named["input"] = np.asarray(input_grad)
    return Evaluation(np.asarray(output), named)


def evaluate_jax(
    module: nnx.Module, inputs, cotangent: np.ndarray | None, *, grads: bool = True, rename: Rename = None,
    place: Callable[[tuple], tuple] | None = None,
) -> Evaluation:  # fmt: skip
    """Forward (and backward) of a JAX module on NumPy inputs in jaxlin's layout, under ``jax.jit``;
    ``place`` puts the inputs on devices (sharded on a mesh, say) instead of the default device.

    Shape:
        inputs as the module takes them; ``cotangent`` has the output's shape.
    """
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    arrays = place(tuple(inputs)) if place is not None else tuple(jnp.asarray(a) for a in inputs)
    ct = None if not grads else jnp.asarray(cotangent)
    computed = jitted_forward_and_grads(graphdef, params, rest, arrays, ct, grads)
    return evaluation_of(graphdef, rest, computed, grads=grads, rename=rename)


def evaluate_torch(
    module, inputs, cotangent: np.ndarray | None, *, grads: bool = True, channels_first: bool = False
) -> Evaluation:
    """Forward (and backward) of a torch module on NumPy inputs given in jaxlin's layout.

    ``channels_first`` moves the features axis of the first input to -2 for the module (as
    ``nn.Conv1d`` takes it) and moves the output and input gradient back.
    """
    first = swap_channels(inputs[0]) if channels_first else inputs[0]
    floating = is_floating(np.asarray(first).dtype)
    x = torch_of_numpy(first).requires_grad_(grads and floating)
    rest = [torch_of_numpy(a) for a in inputs[1:]]
    module.zero_grad(set_to_none=True)
    y = first_array(module(x, *rest))
    output = numpy_of_torch(y)
    output = swap_channels(output) if channels_first else output
    if not grads:
        return Evaluation(output, {})
    ct = swap_channels(cotangent) if channels_first else cotangent
    accumulate = torch.float64 if y.dtype == torch.float64 else torch.float32
    (y.to(accumulate) * torch.as_tensor(np.ascontiguousarray(ct), dtype=accumulate)).sum().backward()
    named = {
        name: numpy_of_torch(p.grad)
        if p.grad is not None
        else np.zeros(tuple(p.shape), numpy_of_torch(p).dtype)
        for name, p in module.named_parameters()
    }
    if floating:
        input_grad = numpy_of_torch(x.grad)
        named["input"] = swap_channels(input_grad) if channels_first else input_grad
    return Evaluation(output, named)


def _on_host(array, dtype, transform=None):
    """``array`` converted to ``dtype`` (and ``transform``-ed) by NumPy, put back where it was (one
    device, or sharded): exact, and no compile per shape as a JAX conversion would need."""
    values = np.asarray(array).astype(dtype)
    return jax.device_put(values if transform is None else transform(values), array.sharding)


def float64_jax(module: nnx.Module) -> nnx.Module:
    """A copy of a JAX module computing in float64: every parameter upcast (exactly), and every layer
    whose ``dtype`` names a floating computation dtype (``nnx.Embed``'s does by default) set to float64.

    A floating ``param_dtype`` becomes float64 too: it only says how parameters were made, and with it
    the float32 and bfloat16 copies of one module have the same structure, so they share one compiled
    float64 program (``jax.jit`` keys its cache on the structure).
    """
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    double = nnx.merge(graphdef, jax.tree.map(lambda a: _on_host(a, np.float64), params), rest)
    for _, layer in submodules(double):
        for attribute in ("dtype", "param_dtype"):
            dtype = getattr(layer, attribute, None)
            if dtype is not None and jnp.issubdtype(dtype, jnp.floating):
                setattr(layer, attribute, jnp.float64)
    return double


def absolute(module: nnx.Module, inputs, cotangent: np.ndarray | None):
    """What :func:`magnitudes` evaluates: a float64 copy of ``module`` holding ``|W|``, ``|b|``, and
    ``|x|``, ``|g|`` (masks and integers kept as they are). Call under ``jax.enable_x64``."""
    graphdef, params, rest = nnx.split(float64_jax(module), nnx.Param, ...)
    params = jax.tree.map(lambda a: _on_host(a, np.float64, np.abs), params)
    absolute_inputs = tuple(
        np.abs(np.asarray(a).astype(np.float64)) if is_floating(np.asarray(a).dtype) else a for a in inputs
    )
    absolute_cotangent = None if cotangent is None else np.abs(cotangent)
    return nnx.merge(graphdef, params, rest), absolute_inputs, absolute_cotangent


def magnitudes(
    module: nnx.Module, inputs, cotangent: np.ndarray | None, *, grads: bool = True, rename: Rename = None
) -> Evaluation:
    """``M`` for every output and gradient element: the module evaluated in float64 on ``|x|``
    with ``|W|``, ``|b|`` and cotangent ``|g|``.

    For compositions of linear maps, means and activations with ``|act(z)| <= act(|z|)`` (relu,
    gelu, identity) this is ``Σ|x||w|`` carried through every layer, the quantity rounding-error
    bounds multiply; for gradients it is the same sum over the backward pass.
    """
    with jax.enable_x64(True):
        module, inputs, cotangent = absolute(module, inputs, cotangent)
        return evaluate_jax(module, inputs, cotangent, grads=grads, rename=rename)
