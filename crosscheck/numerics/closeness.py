"""``compare`` and ``assert_close``: metrics, size-aware verdicts and the torch-style mismatch message.

Floating arrays are judged element by element against an allowance: a :class:`Bound`'s (see
:mod:`crosscheck.numerics.bounds`), a given number or array, or torch.testing's default rtol/atol.
Integer and bool arrays compare exactly, in their own type. NaN never passes unless
``equal_nan=True`` (like ``torch.testing.assert_close``), and a non-finite value where the other
side, or the float64 truth, is finite always fails.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from crosscheck.numerics import bounded
from crosscheck.numerics.bits import bits_of, is_floating, ulp_distance
from crosscheck.numerics.bounds import Bound
from crosscheck.numerics.comparison import AssertionMismatch, Comparison
from crosscheck.numerics.judging import (
    Allowance,
    judge,
    nonfinite_mismatch,
    nonfinite_note,
    ratio_to,
    side_metrics,
    worst_of,
)


def compare(
    actual,
    expected,
    *,
    reference=None,
    bound: Bound | np.ndarray | float | None = None,
    equal_nan: bool = False,
) -> Comparison:
    """Compare ``actual`` with ``expected``; with a ``reference`` (float64 truth), judge each against it.

    - ``reference=None``: passes when ``|actual - expected| <= allowed`` element by element, where
      ``allowed`` is ``bound.allowed()`` doubled (both sides round) for a :class:`Bound`, the given
      array or number, or torch.testing's default rtol/atol for the dtype when ``bound=None``.
    - with ``reference``: passes when both ``|actual - reference|`` and ``|expected - reference|``
      are within ``allowed`` (each framework against the truth); ``cross_bound_ratio`` reports
      ``|actual - expected|`` as a fraction of both sides' allowance.
    - integer and bool arrays pass only when equal (and equal to ``reference``), whatever ``bound``.
    - NaN fails unless ``equal_nan`` and the other side (and the truth) is NaN at the same place; an
      infinity passes only where the other side (and the truth) holds the same infinity.

    Shape:
        ``actual``, ``expected`` and ``reference`` share one shape (0-d included); an array bound
        broadcasts to it.

    Raises:
        ValueError: shapes differ, or a bound is negative, NaN or not a number.
        TypeError: complex input, or an integer array against a floating one.

    >>> r = compare(np.float32([1, 2]), np.float32([1, 2.0000002]), bound=Bound(np.ones(2), 4, "float32"))
    >>> r.passed, r.metrics["max_ulp"]
    (True, 1.0)
    >>> compare(np.float32([np.nan]), np.float32([np.nan]), bound=1.0).passed
    False
    """
    raw_actual, raw_expected, raw_reference = _arrays(actual, expected, reference)
    if raw_actual.dtype.kind in "biu":
        return _compare_exact(raw_actual, raw_expected, raw_reference)
    if bounded.fits(raw_actual, raw_expected, raw_reference, bound):  # the usual case, a chunk at a time
        return bounded.compare_bounded(raw_actual, raw_expected, raw_reference, bound)
    a, e = np.asarray(raw_actual, np.float64), np.asarray(raw_expected, np.float64)  # float64: no copy
    allowance = _allowance(bound, e, raw_expected.dtype, with_reference=reference is not None)
    metrics = _closeness_metrics(raw_actual, raw_expected, a, e)
    if raw_reference is None:
        judged = [judge("actual", a, "expected", e, allowance.allowed, equal_nan)]
    else:
        truth = np.asarray(raw_reference, np.float64)
        judged = [
            judge(label, values, "the float64 reference", truth, allowance.allowed, equal_nan)
            for label, values in (("actual", a), ("expected", e))
        ]
        with np.errstate(invalid="ignore"):  # inf - inf: judged by _nonfinite_mismatch
            cross = ratio_to(np.abs(a - e), 2 * allowance.allowed, nonfinite_mismatch(a, e, equal_nan))
        metrics["cross_bound_ratio"] = float(np.max(cross, initial=0.0))
    for side in judged:
        metrics |= side_metrics(side, allowance)
    bad = np.logical_or.reduce([side.ratio > 1 for side in judged])
    worst = max((worst_of(side, allowance.allowed) for side in judged), key=lambda w: w.ratio)
    return Comparison(
        passed=not bool(bad.any()),
        metrics=metrics,
        shape=a.shape,
        dtype=str(raw_actual.dtype),
        mismatched=int(bad.sum()),
        worst_index=worst.index,
        worst_error=worst.error,
        worst_allowed=worst.allowed,
        bound_text=allowance.text,
        nonfinite=tuple(note for side in judged if (note := nonfinite_note(side))),
    )


def _arrays(actual, expected, reference) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The three inputs as NumPy arrays, after the checks of shape and kind."""
    raw = [np.asarray(actual), np.asarray(expected)] + ([] if reference is None else [np.asarray(reference)])
    names = ("actual", "expected", "reference")
    for name, array in zip(names, raw, strict=False):
        if array.dtype.kind == "c":
            raise TypeError(
                f"compare: {name} is complex ({array.dtype}); compare its .real and .imag parts separately."
            )
        if array.dtype.kind not in "biuf" and not is_floating(array.dtype):
            raise TypeError(f"compare: {name} has dtype {array.dtype}, not a number type.")
        if array.shape != raw[1].shape:
            raise ValueError(
                f"compare: {name} has shape {array.shape}, expected {raw[1].shape}; they must match."
            )
    exact = [array.dtype.kind in "biu" for array in raw]
    if any(exact) and not all(exact):
        kinds = ", ".join(f"{name} {array.dtype}" for name, array in zip(names, raw, strict=False))
        raise TypeError(
            f"compare: integer and bool arrays compare exactly, only with each other; got {kinds}."
        )
    return raw[0], raw[1], raw[2] if reference is not None else None


def _compare_exact(actual: np.ndarray, expected: np.ndarray, reference: np.ndarray | None) -> Comparison:
    """Integers and bools: equal or not, compared in their own types (no rounding through float64)."""
    targets = (
        [("actual", actual, expected)]
        if reference is None
        else [("actual", actual, reference), ("expected", expected, reference)]
    )
    bad = np.logical_or.reduce([values != target for _, values, target in targets])
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape)) if bad.any() else ()
    error = max((abs(int(v[index]) - int(t[index])) for _, v, t in targets), default=0) if bad.any() else 0
    equal = float(np.mean(actual == expected)) if actual.size else 1.0
    return Comparison(
        passed=not bool(bad.any()),
        metrics={"max_abs": float(error), "bitwise_equal": equal, "mismatched": float(bad.sum())},
        shape=actual.shape,
        dtype=str(actual.dtype),
        mismatched=int(bad.sum()),
        worst_index=index,
        worst_error=float(error),
        worst_allowed=0.0,
        bound_text="integers compare exactly",
    )


def _allowance(bound, expected: np.ndarray, dtype: np.dtype, *, with_reference: bool) -> Allowance:
    """The allowance of each element, from a :class:`Bound`, a number or array, or the default."""
    if isinstance(bound, Bound):
        deterministic, probabilistic, allowed = bound.of(bound.magnitude)
        allowed = allowed if with_reference else 2 * allowed
        return Allowance(_broadcast(allowed, expected.shape), bound.describe(), deterministic, probabilistic)
    if bound is None:
        rtol, atol = {2: (1e-3, 1e-5), 4: (1.3e-6, 1e-5), 8: (1e-7, 1e-7)}.get(dtype.itemsize, (1.3e-6, 1e-5))
        if dtype == ml_dtypes.bfloat16:
            rtol = 1.6e-2
        return Allowance(atol + rtol * np.abs(expected), "torch.testing default rtol/atol")
    given = None if isinstance(bound, (bool, str, bytes)) else np.asarray(bound)
    if given is None or given.dtype.kind not in "iuf":
        raise ValueError(f"compare: bound must be a Bound, a number or an array of numbers, got {bound!r}.")
    allowed = given.astype(np.float64)
    if np.isnan(allowed).any() or (allowed < 0).any():
        raise ValueError(f"compare: bound must be non-negative and not NaN, got {bound!r}.")
    return Allowance(_broadcast(allowed, expected.shape), "given bound")


def _broadcast(allowed: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    try:
        return np.broadcast_to(allowed, shape)
    except ValueError:
        raise ValueError(
            f"compare: the bound has shape {np.shape(allowed)}, which does not broadcast to {shape}."
        ) from None


def _closeness_metrics(raw_actual, raw_expected, a: np.ndarray, e: np.ndarray) -> dict[str, float]:
    """Distances between the two sides, whatever the verdict."""
    ulp = ulp_distance(raw_actual, raw_expected)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.abs(a - e)  # inf - inf is NaN here; such elements are judged by _nonfinite_mismatch
        relative = diff / np.where(e == 0, 1.0, np.abs(e))
    return {
        "max_abs": _nanmax(diff),
        "max_rel": _nanmax(relative),
        "max_ulp": float(np.max(ulp, initial=0.0)),
        "median_ulp": float(np.median(ulp)) if a.size else 0.0,
        "bitwise_equal": float(np.mean(bits_of(raw_actual) == bits_of(raw_expected))) if a.size else 1.0,
    }


def _nanmax(a: np.ndarray) -> float:
    if a.size == 0:
        return 0.0
    return float("nan") if np.isnan(a).any() else float(np.max(a))


def assert_close(
    actual,
    expected,
    *,
    reference=None,
    bound=None,
    equal_nan: bool = False,
    what: str = "outputs",
    item: str = "",
    header: str = "",
) -> Comparison:
    """:func:`compare`, raising ``AssertionError`` with the torch-style message when it fails.

    Raises:
        AssertionMismatch: the comparison failed (an ``AssertionError`` carrying the Comparison).

    >>> assert_close(np.float32([1.0]), np.float32([1.5]), bound=1e-3, item="['output']")
    Traceback (most recent call last):
    ...
    crosscheck.AssertionMismatch: outputs are not close (float32)
    Mismatched elements: 1 / 1 (100.0%)
    Greatest absolute difference: 5.0e-01 at index (0,) (up to 1.0e-03 allowed; given bound)
    The failure occurred for item ['output']
    """
    result = compare(actual, expected, reference=reference, bound=bound, equal_nan=equal_nan)
    if not result.passed:
        raise AssertionMismatch(result.message(what, item, header), result)
    return result
