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
"""``cast=False``: dtypes must match. ``True``: convert, rounding to the nearest value of the new dtype,
and refuse (naming the key) every value the conversion would change beyond rounding: complex to
real, a finite value that becomes ±inf (overflow), a nonzero value that becomes 0 (underflow is
refused, not only reported), and, into an integer or bool dtype, NaN and ±inf, values outside its
range, and values that are not whole numbers. ``"unsafe"``: convert as NumPy's ``astype`` does
(overflow, underflow, wrap-around and truncation allowed); complex to real is still refused."""


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


SHOWN = 10
"""How many keys a mismatch message lists of each kind before it counts the rest."""


def _listed(keys: list[str], shown: list[str] | None = None) -> str:
    shown = [repr(key) for key in keys[:SHOWN]] if shown is None else shown
    more = len(keys) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def likeliest_counterparts(missing: list[str], unexpected: list[str], wanted, declared) -> dict[str, str]:
    """For each missing key, the unexpected key of the same shape nearest to it in order (keys of one
    layer sit together in both lists), each used once.

    >>> wanted = {"a.kernel": Spec((2, 3), "float32"), "a.bias": Spec((3,), "float32")}
    >>> declared = {"x.bias": Spec((3,), "float32"), "x.weight": Spec((3, 2), "float32"),
    ...             "y.weight": Spec((2, 3), "float32")}
    >>> likeliest_counterparts(["a.kernel", "a.bias"], list(declared), wanted, declared)
    {'a.kernel': 'y.weight', 'a.bias': 'x.bias'}
    """
    place = {key: i / max(len(wanted) - 1, 1) for i, key in enumerate(wanted)}
    where = {key: i / max(len(declared) - 1, 1) for i, key in enumerate(declared)}
    free, found = list(unexpected), {}
    for key in missing:
        same = [other for other in free if tuple(declared[other].shape) == tuple(wanted[key].shape)]
        if same:
            found[key] = min(same, key=lambda other: abs(where[other] - place[key]))
            free.remove(found[key])
    return found


def _key_mismatch(source, target, prefix, wanted, declared, missing, unexpected, strict) -> str:
    """One message for keys that do not match: at most :data:`SHOWN` of each kind, then a count; for
    each missing key shown, its likeliest counterpart; what to pass."""
    # with strict=False the other keys are meant to be there: no suggestion among them
    counterparts = likeliest_counterparts(missing, unexpected, wanted, declared) if strict else {}
    shown = [
        repr(key) + (f" (perhaps {counterparts[key]!r}: same shape)" if key in counterparts else "")
        for key in missing[:SHOWN]
    ]
    parts = []
    if missing:
        parts.append(f"missing key{'s' if len(missing) > 1 else ''} {_listed(missing, shown)}")
    if unexpected and strict:
        parts.append(f"unexpected key{'s' if len(unexpected) > 1 else ''} {_listed(unexpected)}")
    scope = f"the keys starting with {prefix!r} to be exactly" if prefix else "exactly the keys"
    hints = []
    if counterparts:
        hints.append(
            "rename= maps names (a dict of path pieces, a list of (regex, replacement) pairs or a function)"
        )
    if unexpected and strict and not missing:
        hints.append("pass strict=False to ignore the others")
    hint = "; " + "; ".join(hints) if hints else ""
    expected = f"{scope} {_listed(list(wanted))}" + (f" ({len(wanted)} keys)" if len(wanted) > SHOWN else "")
    return f"{source}: {' and '.join(parts)}; expected {expected} for {target}{hint}"


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
        raise WeightsError(
            _key_mismatch(source, target, prefix, wanted, declared, missing, unexpected, strict)
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
    """``array`` as ``dtype`` (a copy), refusing any value the conversion would change beyond rounding
    (:data:`CASTS`) unless ``cast="unsafe"``.

    >>> converted("f", "w", np.array([0.5, 2.0]), "int64", "Demo()", cast=True)
    Traceback (most recent call last):
    ...
    crosscheck.WeightsError: f: key 'w' has 1 values that are not whole numbers (e.g. 0.5), which int64
    would truncate for Demo(); pass cast='unsafe' to accept that
    """
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        result = np.array(array, dtype=dtype, copy=True)
    source_array = np.asarray(array)
    if cast != "unsafe" and source_array.dtype != result.dtype:
        problems = value_changes(source_array, result)
        if problems:
            changes = ", ".join(problems)
            raise WeightsError(
                f"{source}: key {key!r} has {changes} for {target}; pass cast='unsafe' to accept that"
            )
    return result


def _floating(dtype: np.dtype) -> bool:
    return dtype.kind == "f" or dtype == ml_dtypes.bfloat16


def _example(values: np.ndarray) -> str:
    value = values.flat[0]
    return f"{float(value):.6g}" if _floating(values.dtype) else str(int(value))


def value_changes(array: np.ndarray, result: np.ndarray) -> list[str]:
    """What converting ``array`` to ``result``'s dtype changed beyond rounding, one phrase per kind
    (empty if nothing): overflow to ±inf, underflow to 0, and, into integers or bool, NaN/inf, values
    out of range and fractions."""
    have, name = array.dtype, result.dtype.name
    if have.kind == "c" or result.dtype.kind == "c" or have.kind == "b":
        return []  # complex to real is refused by require_fit; bool fits every dtype
    if _floating(result.dtype):
        values, got = array.astype(np.float64), result.astype(np.float64)
        over = np.isfinite(values) & ~np.isfinite(got)
        under = (values != 0) & (got == 0)
        problems = []
        if over.any():
            largest = float(np.max(np.abs(values[over])))
            problems.append(
                f"{int(over.sum())} finite values (up to {largest:.3g}) that become inf in {name}"
            )
        if under.any():
            problems.append(
                f"{int(under.sum())} nonzero values (e.g. {_example(values[under])}) that become 0 in {name}"
            )
        return problems
    low, high = (
        (0, 1) if result.dtype.kind == "b" else (np.iinfo(result.dtype).min, np.iinfo(result.dtype).max)
    )
    if _floating(have):
        values = array.astype(np.float64)
        endless = ~np.isfinite(values)
        outside = ~endless & ((values < low) | (values >= float(high + 1)))  # high + 1: a power of 2, exact
        fraction = ~endless & ~outside & (values != np.trunc(values))
    else:  # integers: compare within the source dtype's own range, where every bound is exact
        endless = fraction = np.zeros(array.shape, bool)
        limits = np.iinfo(have)
        outside = (array < max(low, limits.min)) | (array > min(high, limits.max))
    problems = []
    if endless.any():
        problems.append(f"{int(endless.sum())} NaN or infinite values, which {name} cannot hold")
    if outside.any():
        example = _example(array[outside])
        problems.append(
            f"{int(outside.sum())} values outside {name}'s range [{low}, {high}] (e.g. {example})"
        )
    if fraction.any():
        problems.append(
            f"{int(fraction.sum())} values that are not whole numbers (e.g. {_example(array[fraction])}), "
            f"which {name} would truncate"
        )
    return problems


def nonfinite(array: np.ndarray) -> int:
    """How many NaN and inf values a floating array holds (0 for other dtypes)."""
    if array.dtype.kind != "f" and array.dtype != ml_dtypes.bfloat16:
        return 0
    return int(np.size(array) - np.isfinite(np.asarray(array, np.float64)).sum())
