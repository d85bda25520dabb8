"""safetensors files of NumPy arrays for :mod:`crosscheck.weights`: atomic writes, validated reads.

Nothing here knows jaxlin or torch. Tensors are NumPy arrays, bfloat16 as ``ml_dtypes.bfloat16``,
written and read with safetensors' NumPy backend, which stores that dtype as ``BF16`` and reads it
back bit-exact once ``ml_dtypes`` is imported (it is, below). Nothing is ever unpickled: a file is
an 8-byte header length, a JSON header and raw little-endian tensor data, parsed by safetensors.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

import ml_dtypes  # noqa: F401  (registers "bfloat16" with NumPy; safetensors' NumPy backend needs it)
import numpy as np
import safetensors.numpy
from safetensors import SafetensorError, safe_open

# safetensors' dtype codes, named as NumPy (and torch, without "torch.") name them.
DTYPE_NAMES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
}  # fmt: skip

_UMASK = os.umask(0)
os.umask(_UMASK)


class WeightsError(ValueError):
    """A weights file that does not fit its module, or that is not a readable safetensors file.

    The message names the file, the key, the expected and the actual value, and the module.
    """

    __module__ = "crosscheck"  # raised and documented as crosscheck.WeightsError


def _shape(shape) -> str:
    return str(tuple(int(size) for size in shape))


def _quoted(keys) -> str:
    return ", ".join(repr(key) for key in keys)


def write(path: str | os.PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Write ``tensors`` to ``path`` as safetensors, atomically: all of the new file or none of it.

    The bytes go to a temporary file in the same directory, are flushed to disk, and the temporary
    file then replaces ``path`` in one step, so a crash never leaves half a file behind.

    Shape:
        each array is stored with its own shape and dtype (C order, little-endian).

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> write(path, {"weight": np.ones((2, 3), np.float32)}, {"format": "pt"})
    >>> {key: (shape, dtype) for key, (shape, dtype) in header(path).items()}
    {'weight': ((2, 3), 'float32')}
    """
    name = os.fspath(path)
    data = safetensors.numpy.save({key: np.ascontiguousarray(a) for key, a in tensors.items()}, metadata)
    directory = os.path.dirname(os.path.abspath(name))
    try:
        mode = os.stat(name).st_mode & 0o777
    except OSError:
        mode = 0o666 & ~_UMASK
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(name)}.", suffix=".tmp")
    except OSError as error:
        raise type(error)(error.errno, f"cannot write weights: {error.strerror}", name) from error
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _looks_pickled(name: str) -> bool:
    """Whether a file starts like a ``torch.save`` checkpoint (a zip archive or a bare pickle)."""
    try:
        with open(name, "rb") as file:
            start = file.read(4)
    except OSError:
        return False
    return start == b"PK\x03\x04" or start[:1] == b"\x80"


@contextlib.contextmanager
def _opened(name: str, owner: str):
    """``safe_open(name)`` with every way of failing turned into a WeightsError naming the file."""
    try:
        handle = safe_open(name, framework="numpy")
    except FileNotFoundError:
        raise WeightsError(
            f"{name}: no such file; expected the weights of {owner} in a safetensors file"
        ) from None
    except SafetensorError as error:
        hint = (
            "; it looks like a torch.save checkpoint (a pickle, never loaded here): load it with torch, "
            "then write its state_dict with safetensors.torch.save_file"
            if _looks_pickled(name)
            else ""
        )
        raise WeightsError(
            f"{name}: not a safetensors file ({error}); expected an 8-byte header length, a JSON header "
            f"and the tensor data, with the weights of {owner}{hint}"
        ) from error
    except OSError as error:
        what = "is a directory" if os.path.isdir(name) else f"cannot be opened ({error})"
        raise WeightsError(
            f"{name}: {what}; expected the weights of {owner} in a safetensors file"
        ) from error
    with handle as file:
        yield file


def header(path: str | os.PathLike, owner: str = "a module") -> dict[str, tuple[tuple[int, ...], str]]:
    """The tensors a file declares, ``{key: (shape, dtype name)}``, read from its header only."""
    name = os.fspath(path)
    with _opened(name, owner) as file:
        return {key: _declared(file, key) for key in file.keys()}


def _declared(file, key: str) -> tuple[tuple[int, ...], str]:
    view = file.get_slice(key)
    code = view.get_dtype()
    return tuple(int(size) for size in view.get_shape()), DTYPE_NAMES.get(code, code.lower())


def read(
    path: str | os.PathLike,
    expected: dict[str, tuple[tuple[int, ...], np.dtype]],
    owner: str,
    *,
    cast: bool = False,
) -> dict[str, np.ndarray]:
    """Read exactly the tensors in ``expected`` (``{key: (shape, dtype)}``), each in its dtype.

    Everything is checked before any tensor data is read: the key set (missing and unexpected keys
    in one message), then each key's declared shape and dtype. A dtype other than the expected one
    is an error unless ``cast=True``, which converts the values (NumPy rounding, to nearest even).
    Every failure raises :class:`WeightsError` naming the file, the key, expected and actual, and
    ``owner`` (the module the weights are for).

    Shape:
        returns ``{key: array of shape expected[key][0]}`` in ``expected``'s order.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> write(path, {"bias": np.zeros(3, np.float64)}, {"format": "pt"})
    >>> read(path, {"bias": ((3,), np.dtype("float32"))}, "Demo()")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    crosscheck.WeightsError: ...w.safetensors: key 'bias' has dtype float64, expected float32 for Demo();
    pass cast=True to convert it
    >>> read(path, {"bias": ((3,), np.dtype("float32"))}, "Demo()", cast=True)["bias"].dtype
    dtype('float32')
    """
    name = os.fspath(path)
    with _opened(name, owner) as file:
        found = list(file.keys())
        missing = [key for key in expected if key not in found]
        unexpected = [key for key in found if key not in expected]
        if missing or unexpected:
            parts = [
                f"{kind} key{'s' if len(keys) > 1 else ''} {_quoted(keys)}"
                for kind, keys in (("missing", missing), ("unexpected", unexpected))
                if keys
            ]
            raise WeightsError(
                f"{name}: {' and '.join(parts)}; expected exactly the keys {_quoted(expected)} for {owner}"
            )
        declared = {key: _declared(file, key) for key in expected}
        problems = [
            f"key {key!r} has shape {_shape(declared[key][0])}, expected {_shape(shape)}"
            for key, (shape, _) in expected.items()
            if declared[key][0] != tuple(shape)
        ]
        if not cast:
            problems += [
                f"key {key!r} has dtype {declared[key][1]}, expected {np.dtype(dtype).name}"
                for key, (_, dtype) in expected.items()
                if declared[key][1] != np.dtype(dtype).name
            ]
        if problems:
            hint = "" if cast or all(" shape " in p for p in problems) else "; pass cast=True to convert it"
            raise WeightsError(f"{name}: {'; '.join(problems)} for {owner}{hint}")
        arrays = {}
        for key, (_, dtype) in expected.items():
            try:
                arrays[key] = np.array(file.get_tensor(key), dtype=dtype, copy=True)
            except Exception as error:  # an unreadable dtype, data that does not fit its header
                raise WeightsError(
                    f"{name}: cannot read key {key!r} as {np.dtype(dtype).name} ({error}) for {owner}"
                ) from error
    return arrays
