"""Exact copies between torch tensors, NumPy arrays and JAX arrays: bit for bit, and never shared.

A copy owns its memory: ``tensor.numpy()`` and ``jax.device_put(array)`` are zero-copy on CPU, so a
later in-place update of the source (an optimizer step) would silently change the copy. bfloat16
crosses as ``ml_dtypes.bfloat16`` through its 16-bit pattern.

torch is an optional extra: it is imported only by the functions that receive or return a tensor.

>>> a = np.arange(3.0, dtype=np.float32)
>>> b = jax_of_numpy(a, "float32")
>>> a[0] = 7.0
>>> float(b[0])
0.0
"""

from __future__ import annotations

import sys
import warnings

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np


def _torch():
    import torch  # optional extra: only callers that hold torch tensors get here

    return torch


def is_torch_module(module) -> bool:
    """Whether ``module`` is a ``torch.nn.Module`` (without importing torch when nobody has)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(module, torch.nn.Module)


def numpy_of_torch(tensor) -> np.ndarray:
    """A NumPy copy of a torch tensor (detached, on the CPU), bit-exact for bfloat16 too.

    Shape:
        the tensor's shape.
    """
    return numpy_view_of_torch(tensor).copy()


def numpy_view_of_torch(tensor) -> np.ndarray:
    """A NumPy array sharing a CPU torch tensor's memory (detached; bfloat16 as ``ml_dtypes``'), a copy
    only for a tensor on another device: read it, never write it.

    Shape:
        the tensor's shape.
    """
    torch = _torch()
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


def contiguous(array) -> np.ndarray:
    """``array`` in C order (a copy only where it is not): a 0-d array stays 0-d, where
    ``np.ascontiguousarray`` would make it 1-d.

    >>> contiguous(np.float32(2.0)).shape
    ()
    """
    return np.asarray(array, order="C")


def torch_view_of_numpy(array: np.ndarray):
    """A torch tensor sharing a NumPy array's memory (a JAX buffer's read-only view included: read it,
    never write it), or ``None`` where torch cannot view the array: negative strides, a foreign byte
    order, a dtype torch lacks (``ml_dtypes.bfloat16``, ``longdouble``).

    Shape:
        the array's shape.
    """
    if min(array.strides, default=0) < 0 or not array.dtype.isnative:
        return None
    torch = _torch()
    try:
        with warnings.catch_warnings():  # torch warns of a read-only array: the view is only read
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(array)
    except TypeError:
        return None


def torch_of_numpy(array: np.ndarray):
    """A torch tensor copied from a NumPy array, bit-exact for ``ml_dtypes.bfloat16`` too.

    Shape:
        the array's shape.
    """
    torch = _torch()
    array = contiguous(array)
    if array.dtype == ml_dtypes.bfloat16:
        return torch.from_numpy(array.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(array.copy())


def torch_dtype_name(tensor) -> str:
    """``"float32"``, ``"bfloat16"``, ...: a tensor's dtype as NumPy names it."""
    return str(tensor.dtype).removeprefix("torch.")


def jax_of_numpy(array: np.ndarray, dtype) -> jnp.ndarray:
    """A JAX array of ``dtype`` holding a private copy of ``array``'s values.

    Shape:
        the array's shape.
    """
    return jax.device_put(np.array(array, dtype=np.dtype(dtype), copy=True))  # the private copy it may share


def jax_array(value) -> jax.Array:
    """``jnp.asarray(value)``: the same dtype, bits and placement, without compiling a program.

    ``jnp.asarray`` of a NumPy array runs a small conversion program, compiled once per shape and dtype
    (14 ms each on a 2-core Zen 1 EPYC, docs/scale.md (w)); a check meets a new shape at every tensor
    of a new model. A NumPy array here is copied on the host and handed to the device as it is (the copy
    keeps the result from sharing the caller's memory, as ``jnp.asarray`` does); anything else (a JAX
    array, a Python scalar, which ``jnp.asarray`` makes weakly typed) goes through ``jnp.asarray``.

    Shape:
        the value's shape.

    >>> a = np.arange(3.0)
    >>> b = jax_array(a)
    >>> a[0] = 7.0
    >>> float(b[0]), b.dtype == jnp.asarray(a).dtype
    (0.0, True)
    """
    if isinstance(value, np.ndarray):
        return jax_of_numpy(value, value.dtype)
    return jnp.asarray(value)
