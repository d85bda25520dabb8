"""The one place that knows how jaxlin and torch_ref lay out the same parameters.

The exchange format is torch_ref's ``state_dict``: PyTorch names and layouts, so weights that
a PyTorch user already has load into jaxlin as they are.

==============  ===============================  ============================
module          jaxlin (Flax NNX)                torch_ref (PyTorch)
==============  ===============================  ============================
Linear          kernel ``(in, out)``             weight ``(out, in)``
PointwiseConv   kernel ``(1, in, out)``          weight ``(out, in, 1)``
PerHeadLinear   kernel ``(heads, in, out)``      weight ``(heads, out, in)``
any of them     bias ``(out,)``/``(heads, out)``  bias, same shape
PooledHead      ``projector.*``, ``classifier.*``  the same prefixes
==============  ===============================  ============================

:func:`save_weights` and :func:`load_weights` store either framework's module in that format, as
a safetensors file (see :mod:`crosscheck.weightfile`); loading validates the whole file first and
raises :class:`WeightsError` without touching the module when anything does not fit.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from flax import nnx

import jaxlin
from crosscheck import weightfile
from crosscheck.weightfile import WeightsError

__all__ = [
    "Entry", "WeightsError", "assign_torch_state_to_jax", "copy_jax_to_torch", "copy_torch_to_jax",
    "entries", "load_weights", "numpy_of_torch", "save_weights", "torch_of_numpy", "torch_state_of_jax",
]  # fmt: skip


def _swap_last_two(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


def _reverse_axes(a: np.ndarray) -> np.ndarray:
    return np.transpose(a, (2, 1, 0))


def _same(a: np.ndarray) -> np.ndarray:
    return a


# Kernel layout change (each is its own inverse) per jaxlin class; biases never change layout.
_KERNEL_LAYOUTS = (
    (jaxlin.PointwiseConv, _reverse_axes),
    (jaxlin.PerHeadLinear, _swap_last_two),
    (jaxlin.Linear, _swap_last_two),
)


@dataclass(frozen=True)
class Entry:
    """One parameter: its torch name, the jaxlin variable holding it, and the layout change."""

    torch_name: str
    variable: nnx.Variable
    to_torch: object  # ndarray -> ndarray; applied in reverse (the same function) on the way in

    def jax_value(self) -> np.ndarray:
        return np.asarray(self.variable[...])


def entries(module: nnx.Module, prefix: str = "") -> Iterator[Entry]:
    """The parameters of a jaxlin module with their torch names, in ``state_dict`` order.

    >>> [e.torch_name for e in entries(jaxlin.PooledHead(2, 3, 1, rngs=nnx.Rngs(0)))]
    ['projector.weight', 'projector.bias', 'classifier.weight', 'classifier.bias']
    """
    if isinstance(module, jaxlin.PooledHead):
        yield from entries(module.projector, f"{prefix}projector.")
        yield from entries(module.classifier, f"{prefix}classifier.")
        return
    for cls, layout in _KERNEL_LAYOUTS:
        if isinstance(module, cls):
            yield Entry(f"{prefix}weight", module.kernel, layout)
            if module.bias is not None:
                yield Entry(f"{prefix}bias", module.bias, _same)
            return
    raise TypeError(
        f"crosscheck.weights: no layout is known for {type(module).__name__}; "
        "expected a jaxlin Linear, PointwiseConv, PerHeadLinear or PooledHead."
    )


def torch_state_of_jax(module: nnx.Module) -> dict[str, np.ndarray]:
    """A jaxlin module's parameters as torch_ref's ``state_dict`` (names and layouts), in NumPy.

    Shape:
        each array in torch layout, e.g. Linear ``weight (out, in)``.

    >>> state = torch_state_of_jax(jaxlin.Linear(3, 2, rngs=nnx.Rngs(0)))
    >>> {name: a.shape for name, a in state.items()}
    {'weight': (2, 3), 'bias': (2,)}
    """
    return {e.torch_name: np.ascontiguousarray(e.to_torch(e.jax_value())) for e in entries(module)}


def assign_torch_state_to_jax(module: nnx.Module, state: dict[str, np.ndarray]) -> None:
    """Write torch-layout arrays into a jaxlin module, keeping each parameter's dtype.

    Callers validate names and shapes first (see ``load_weights``); this only converts.
    """
    for e in entries(module):
        value = e.to_torch(np.asarray(state[e.torch_name]))
        e.variable[...] = jnp.asarray(value, dtype=e.variable[...].dtype)


def numpy_of_torch(tensor) -> np.ndarray:
    """A torch tensor as NumPy, bit-exact for bfloat16 too (as an ``ml_dtypes.bfloat16`` array)."""
    import ml_dtypes
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


def torch_of_numpy(array: np.ndarray):
    """A NumPy array as a torch tensor, bit-exact for ``ml_dtypes.bfloat16`` too."""
    import ml_dtypes
    import torch

    array = np.ascontiguousarray(array)
    if array.dtype == ml_dtypes.bfloat16:
        return torch.from_numpy(array.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(array.copy())


def copy_torch_to_jax(torch_module, jax_module: nnx.Module) -> None:
    """Give ``jax_module`` exactly the parameters of ``torch_module`` (same names after mapping).

    >>> import torch_ref
    >>> src, dst = torch_ref.Linear(3, 2), jaxlin.Linear(3, 2, rngs=nnx.Rngs(0))
    >>> copy_torch_to_jax(src, dst)
    >>> bool((np.asarray(dst.kernel[...]) == src.weight.detach().numpy().T).all())
    True
    """
    state = {name: numpy_of_torch(t) for name, t in torch_module.state_dict().items()}
    assign_torch_state_to_jax(jax_module, state)


def copy_jax_to_torch(jax_module: nnx.Module, torch_module) -> None:
    """Give ``torch_module`` exactly the parameters of ``jax_module`` (same names after mapping)."""
    import torch

    state = {name: torch_of_numpy(a) for name, a in torch_state_of_jax(jax_module).items()}
    with torch.no_grad():
        for name, tensor in torch_module.state_dict().items():
            tensor.copy_(state[name].to(tensor.dtype))


def _is_torch(module) -> bool:
    torch = sys.modules.get("torch")  # a torch module exists only once torch is imported
    return torch is not None and isinstance(module, torch.nn.Module)


def _owner(module) -> str:
    """``jaxlin.PooledHead(in_features=..., ...)``: the package, then the module's own description."""
    package = type(module).__module__.split(".")[0]
    described = module.describe() if callable(getattr(module, "describe", None)) else type(module).__name__
    return f"{package}.{described}"


def _expected(module) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{torch name: (torch-layout shape, dtype)}`` for the module's parameters, reading no values."""
    if _is_torch(module):
        return {
            key: (tuple(t.shape), numpy_of_torch(t.new_empty(0)).dtype)
            for key, t in module.state_dict().items()
        }
    expected = {}
    for e in entries(module):
        value = e.variable[...]
        dummy = np.broadcast_to(np.empty((), np.int8), value.shape)  # a layout change without a copy
        expected[e.torch_name] = (e.to_torch(dummy).shape, np.dtype(value.dtype))
    return expected


def save_weights(module, path: str | os.PathLike) -> None:
    """Write a jaxlin or torch_ref module's parameters to ``path`` as a safetensors file.

    Names and layouts are torch_ref's ``state_dict`` (a jaxlin module is mapped on the way out),
    with metadata ``{"format": "pt", "writer": "crosscheck", "module": ...}``, so PyTorch and
    Hugging Face tooling read the file as one of theirs. Values are stored bit for bit in the
    parameters' own dtype (float32, float64, float16 or bfloat16). The write is atomic: a
    temporary file in the same directory replaces ``path`` only once it is complete.

    Shape:
        each tensor in torch layout, e.g. Linear ``weight (out, in)``, PerHeadLinear
        ``weight (heads, out, in)``, PointwiseConv ``weight (out, in, 1)``; biases as they are.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "head.safetensors")
    >>> save_weights(jaxlin.PooledHead(2, 3, 1, rngs=nnx.Rngs(0)), path)
    >>> weightfile.header(path)["projector.weight"]
    ((3, 2), 'float32')
    """
    if _is_torch(module):
        state = {key: numpy_of_torch(t) for key, t in module.state_dict().items()}
    else:
        state = torch_state_of_jax(module)
    metadata = {"format": "pt", "writer": "crosscheck", "module": _owner(module)}
    weightfile.write(path, state, metadata)


def load_weights(module, path: str | os.PathLike, *, cast: bool = False) -> None:
    """Load a safetensors file in torch_ref's ``state_dict`` names and layouts into ``module``.

    Works for jaxlin and torch_ref modules alike, and for a file a PyTorch user wrote with
    ``safetensors.torch.save_file(model.state_dict(), path)``. The whole file is validated before
    any parameter changes: the key set, each declared shape and dtype, then the data itself. On
    any error the module is left exactly as it was and :class:`WeightsError` names the file, the
    key, the expected and the actual value. A dtype other than the parameter's is an error unless
    ``cast=True``, which converts to the parameter's dtype. torch_ref parameters keep their device.
    Nothing is unpickled (safetensors is raw data and a JSON header); torch is not needed for a
    jaxlin module.

    Shape:
        the file holds torch-layout tensors of the module's sizes, e.g. Linear ``weight (out, in)``
        for a jaxlin kernel ``(in, out)``.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "linear.safetensors")
    >>> save_weights(jaxlin.Linear(3, 2, rngs=nnx.Rngs(0)), path)
    >>> layer = jaxlin.Linear(3, 2, rngs=nnx.Rngs(1))
    >>> load_weights(layer, path)
    >>> bool((np.asarray(layer.kernel[...]) == jaxlin.Linear(3, 2, rngs=nnx.Rngs(0)).kernel[...]).all())
    True
    >>> load_weights(jaxlin.Linear(2, 3, rngs=nnx.Rngs(0)), path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    crosscheck.WeightsError: ...linear.safetensors: key 'weight' has shape (2, 3), expected (3, 2);
    key 'bias' has shape (2,), expected (3,) for jaxlin.Linear(in_features=2, out_features=3)
    """
    state = weightfile.read(path, _expected(module), _owner(module), cast=cast)
    if not _is_torch(module):
        assign_torch_state_to_jax(module, state)
        return
    import torch

    tensors = {key: torch_of_numpy(a) for key, a in state.items()}
    with torch.no_grad():
        module.load_state_dict(tensors)
