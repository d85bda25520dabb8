"""safetensors files of NumPy arrays: atomic writes, and reads that validate everything first.

Nothing here knows jaxlin or torch. Tensors are NumPy arrays, bfloat16 as ``ml_dtypes.bfloat16``,
written and read with safetensors' NumPy backend, which stores that dtype as ``BF16`` and reads it
back bit-exact once ``ml_dtypes`` is imported (it is, below). Nothing is ever unpickled: a file is
an 8-byte header length, a JSON header and raw little-endian tensor data, parsed by safetensors.

The checks and the words of every mismatch are :func:`crosscheck.weights.fit.require_fit`'s.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import ml_dtypes  # noqa: F401  (registers "bfloat16" with NumPy; safetensors' NumPy backend needs it)
import numpy as np
import safetensors.numpy
from safetensors import SafetensorError, safe_open

from crosscheck.atomic import atomic_write
from crosscheck.weights.fit import Spec, WeightsError, converted, nonfinite, require_fit, whole_prefix

# safetensors' dtype codes, named as NumPy (and torch, without "torch.") name them.
DTYPE_NAMES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "C64": "complex64",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U64": "uint64",
    "U32": "uint32",
    "U16": "uint16",
    "U8": "uint8",
    "BOOL": "bool",
}


@dataclass
class Loaded:
    """What :func:`read` returns: the arrays, the file's keys it ignored (``strict=False``), and the
    number of non-finite values per key (a checkpoint may hold ``-inf`` masks on purpose)."""

    arrays: dict[str, np.ndarray]
    ignored: list[str] = field(default_factory=list)
    nonfinite: dict[str, int] = field(default_factory=dict)


def write(path: str | os.PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Write ``tensors`` to ``path`` as safetensors, atomically (:func:`crosscheck.atomic.atomic_write`).

    Shape:
        each array is stored with its own shape and dtype (C order, little-endian).

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> write(path, {"weight": np.ones((2, 3), np.float32)}, {"format": "pt"})
    >>> header(path)
    {'weight': Spec(shape=(2, 3), dtype='float32')}
    """
    data = safetensors.numpy.save(
        {key: np.asarray(a, order="C") for key, a in tensors.items()},
        metadata,  # 0-d stays 0-d
    )
    try:
        atomic_write(path, data)
    except OSError as error:
        raise type(error)(
            error.errno, f"cannot write weights to {os.fspath(path)}: {error.strerror or error}"
        ) from error


def _looks_pickled(name: str) -> bool:
    """Whether a file starts like a ``torch.save`` checkpoint (a zip archive or a bare pickle)."""
    try:
        with open(name, "rb") as file:
            start = file.read(4)
    except OSError:
        return False
    return start == b"PK\x03\x04" or start[:1] == b"\x80"


def _readable(name: str, target: str) -> None:
    """WeightsError unless ``name`` is a file this process may read, saying which it is not."""
    expected = f"expected the weights of {target} in a safetensors file"
    try:
        with open(name, "rb"):
            pass
    except FileNotFoundError:
        raise WeightsError(f"{name}: no such file; {expected}") from None
    except IsADirectoryError:
        raise WeightsError(f"{name}: is a directory; {expected}") from None
    except PermissionError:
        raise WeightsError(
            f"{name}: permission denied (the file exists but cannot be read); {expected}"
        ) from None
    except OSError as error:
        raise WeightsError(f"{name}: cannot be opened ({error.strerror}); {expected}") from error


@contextlib.contextmanager
def _opened(name: str, target: str):
    """``safe_open(name)`` with every way of failing turned into a WeightsError naming the file."""
    _readable(name, target)
    try:
        handle = safe_open(name, framework="numpy")
    except (SafetensorError, OSError) as error:
        hint = (
            "; it looks like a torch.save checkpoint (a pickle, never loaded here): load it with torch, "
            "then write its state_dict with safetensors.torch.save_file"
            if _looks_pickled(name)
            else ""
        )
        raise WeightsError(
            f"{name}: not a safetensors file ({error}); expected an 8-byte header length, a JSON header "
            f"and the tensor data, with the weights of {target}{hint}"
        ) from error
    with handle as file:
        yield file


def header(path: str | os.PathLike, target: str = "a module") -> dict[str, Spec]:
    """The tensors a file declares, ``{key: Spec}``, read from its header only."""
    name = os.fspath(path)
    with _opened(name, target) as file:
        return {key: _declared(file, key) for key in file.keys()}


def _declared(file, key: str) -> Spec:
    view = file.get_slice(key)
    code = view.get_dtype()
    return Spec(tuple(int(size) for size in view.get_shape()), DTYPE_NAMES.get(code, code.lower()))


def read(
    path: str | os.PathLike,
    expected: Mapping[str, Spec],
    target: str,
    *,
    cast: bool | str = False,
    prefix: str = "",
    strict: bool = True,
) -> Loaded:
    """Read exactly the tensors in ``expected`` (``{key: Spec}``, the file holding ``prefix + key``;
    ``prefix`` is whole path pieces: ``"blocks.1"`` reads ``blocks.1.*``, never ``blocks.10.*``).

    Everything is checked before any tensor data is read (:func:`require_fit`), and every tensor is
    read and converted before anything is returned, so a caller that writes only after ``read``
    returns never writes half a file. Every failure raises :class:`WeightsError` naming the file.

    Shape:
        ``Loaded.arrays``: ``{key: array of shape expected[key].shape}`` in ``expected``'s order.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> write(path, {"bias": np.zeros(3, np.float64)}, {"format": "pt"})
    >>> read(path, {"bias": Spec((3,), "float32")}, "Demo()")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    crosscheck.WeightsError: ...w.safetensors: key 'bias' has dtype float64, expected float32 for Demo();
    pass cast=True to convert it
    >>> read(path, {"bias": Spec((3,), "float32")}, "Demo()", cast=True).arrays["bias"].dtype
    dtype('float32')
    """
    name, prefix = os.fspath(path), whole_prefix(prefix)
    with _opened(name, target) as file:
        declared = {key: _declared(file, key) for key in file.keys()}
        ignored = require_fit(name, declared, expected, target, cast=cast, strict=strict, prefix=prefix)
        loaded = Loaded({}, ignored)
        for key, spec in expected.items():
            try:
                stored = file.get_tensor(prefix + key)
            except Exception as error:  # an unreadable dtype, data that does not fit its header
                raise WeightsError(
                    f"{name}: cannot read key {prefix + key!r} as {spec.dtype} ({error}) for {target}"
                ) from error
            loaded.arrays[key] = converted(name, prefix + key, stored, spec.dtype, target, cast)
            if nonfinite(stored):
                loaded.nonfinite[key] = nonfinite(stored)
    return loaded


def nonfinite_counts(path: str | os.PathLike) -> dict[str, int]:
    """``{key: number of NaN and inf values}`` for every floating tensor of a file that holds any."""
    name = os.fspath(path)
    counts = {}
    with _opened(name, "a module") as file:
        for key in file.keys():
            count = nonfinite(file.get_tensor(key))
            if count:
                counts[key] = count
    return counts
