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
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from flax import nnx

import jaxlin


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
