"""Does a set of tensors fit a module? The checks and the words of every mismatch, written once for
files (:mod:`crosscheck.weights.files`) and for copies between live modules
(:mod:`crosscheck.weights.transfer`).

>>> require_fit("f.safetensors", {"w": Spec((2,), "float32")}, {"w": Spec((3,), "float32")}, "Demo()")
Traceback (most recent call last):
...
crosscheck.WeightsError: f.safetensors: key 'w' has shape (2,), expected (3,) for Demo()
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import ml_dtypes
import numpy as np

CASTS = (False, True, "unsafe")
"""``cast=False``: dtypes must match; ``True``: convert, refusing complex to real and overflow to
infinity; ``"unsafe"``: convert, letting finite values that do not fit become ±inf."""


class WeightsError(ValueError):
    """A weights file (or a module's state) that does not fit its module, or that cannot be read.

    The message names the file or source, the key, the expected and the actual value, and the module.
    """

    __module__ = "crosscheck"  # raised and documented as crosscheck.WeightsError


class Spec(NamedTuple):
    """A tensor's shape and dtype name (``"float32"``), as a file header or a module declares it."""

    shape: tuple[int, ...]
    dtype: str


def _shape(shape) -> str:
    return str(tuple(int(size) for size in shape))


def _quoted(keys) -> str:
    return ", ".join(repr(key) for key in keys)


def spec_of(array) -> Spec:
    """The :class:`Spec` of a NumPy array (or anything with ``shape`` and a NumPy ``dtype``)."""
    return Spec(tuple(int(size) for size in array.shape), np.dtype(array.dtype).name)


def whole_prefix(prefix: str) -> str:
    """A key prefix as whole path pieces: ``"blocks.1"`` is ``"blocks.1."`` (never ``blocks.10.*``);
    ``""`` is no prefix.

    >>> whole_prefix("blocks.1"), whole_prefix("blocks.1."), whole_prefix("")
    ('blocks.1.', 'blocks.1.', '')
    """
    return prefix if prefix == "" or prefix.endswith(".") else prefix + "."


def require_fit(
    source: str,
    declared: Mapping[str, Spec],
    expected: Mapping[str, Spec],
    target: str,
    *,
    cast: bool | str = False,
    strict: bool = True,
    prefix: str = "",
) -> list[str]:
    """Raise WeightsError unless the ``declared`` tensors fit the ``expected`` ones; return the
    declared keys that were ignored.

    ``declared`` is keyed as the source names its tensors (``prefix`` + the expected key; a prefix is
    whole path pieces, see :func:`whole_prefix`). Every
    problem is found before raising, in one message that names ``source``, each key, the expected and
    the actual value, and ``target``: missing and unexpected keys (unexpected ones are ignored and
    returned when ``strict=False``), then shapes, then dtypes (converted when ``cast`` allows it).

    """
    if cast not in CASTS:
        raise ValueError(f"cast must be one of {', '.join(map(repr, CASTS))}, got {cast!r}.")
    prefix = whole_prefix(prefix)
    wanted = {prefix + key: spec for key, spec in expected.items()}
    missing = [key for key in wanted if key not in declared]
    unexpected = [key for key in declared if key not in wanted]
    if missing or (unexpected and strict):
        parts = [
            f"{kind} key{'s' if len(keys) > 1 else ''} {_quoted(keys)}"
            for kind, keys in (("missing", missing), ("unexpected", unexpected if strict else []))
            if keys
        ]
        scope = f"the keys starting with {prefix!r} to be exactly" if prefix else "exactly the keys"
        hint = "; pass strict=False to ignore the others" if unexpected and strict and not missing else ""
        raise WeightsError(
            f"{source}: {' and '.join(parts)}; expected {scope} {_quoted(wanted)} for {target}{hint}"
        )
    problems = [
        f"key {key!r} has shape {_shape(declared[key].shape)}, expected {_shape(spec.shape)}"
        for key, spec in wanted.items()
        if tuple(declared[key].shape) != tuple(spec.shape)
    ]
    for key, spec in wanted.items():
        have = declared[key].dtype
        if have == spec.dtype:
            continue
        if not cast:
            problems.append(f"key {key!r} has dtype {have}, expected {spec.dtype}")
        elif have.startswith("complex") and not spec.dtype.startswith("complex"):
            problems.append(
                f"key {key!r} has dtype {have}, which cannot become {spec.dtype} "
                "without losing its imaginary part"
            )
    if problems:
        hint = "; pass cast=True to convert it" if not cast and any(" dtype " in p for p in problems) else ""
        raise WeightsError(f"{source}: {'; '.join(problems)} for {target}{hint}")
    return unexpected


def converted(
    source: str, key: str, array: np.ndarray, dtype: str, target: str, cast: bool | str
) -> np.ndarray:
    """``array`` as ``dtype`` (a copy), refusing finite values that become ±inf unless ``cast="unsafe"``."""
    with np.errstate(over="ignore", invalid="ignore"):
        result = np.array(array, dtype=dtype, copy=True)
    floating = result.dtype.kind == "f" or result.dtype == ml_dtypes.bfloat16
    if cast != "unsafe" and floating and np.asarray(array).dtype != result.dtype:
        values = np.asarray(array).astype(np.float64)
        overflowed = np.isfinite(values) & ~np.isfinite(result.astype(np.float64))
        if overflowed.any():
            largest = float(np.max(np.abs(values[overflowed])))
            raise WeightsError(
                f"{source}: key {key!r} has {int(overflowed.sum())} finite values (up to {largest:.3g}) that "
                f"become inf in {dtype} for {target}; pass cast='unsafe' to accept that"
            )
    return result


def nonfinite(array: np.ndarray) -> int:
    """How many NaN and inf values a floating array holds (0 for other dtypes)."""
    if array.dtype.kind != "f" and array.dtype != ml_dtypes.bfloat16:
        return 0
    return int(np.size(array) - np.isfinite(np.asarray(array, np.float64)).sum())
