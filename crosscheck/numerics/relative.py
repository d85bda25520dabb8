"""Verdicts where no analytic rounding bound is known (softmax, layer norm, attention, a user's op).

**Rounding tier** (:func:`compare_relative`): each framework's error against the float64 truth must
be within ``c`` times the other framework's error plus a floor of a few ulps of the output's scale:
``rms(a - t) <= c·rms(e - t) + floor`` and the same with ``a`` and ``e`` swapped, with
``floor = n·u·rms(t)``. Root-mean-square errors over the whole tensor, as PyTorch's compiler accepts a
compiled model against eager with an fp64 reference (``torch._dynamo.utils.same(..., fp64_ref=...)``):
an elementwise rule would flag the elements where one side happened to round exactly.

**Same-function tier** (:func:`compare_same_function`): in float64 the two frameworks must agree to
within what float64 rounding can explain, ``rms(a64 - e64) <= C·(u64/u)·max(rms(a - t), rms(e - t))
+ floor64``: the same computation rounds about ``u/u64`` (5·10^8 for float32) times less in float64,
so what is left is different math, however small.

>>> t = np.linspace(-1, 1, 64)
>>> a, e = (t + 3e-8).astype(np.float32), (t - 3e-8).astype(np.float32)
>>> compare_relative(a, e, t, "float32").passed
True
>>> compare_relative(a, (t * 1.001).astype(np.float32), t, "float32").passed
False
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from crosscheck.numerics.bounds import unit_roundoff
from crosscheck.numerics.chunks import chunk_reader
from crosscheck.numerics.comparison import Comparison
from crosscheck.numerics.judging import all_finite, nonfinite_mismatch

FACTOR = 3.0
"""``c``: how many times the other framework's error one framework's may be."""

FLOOR_ULPS = 4.0
"""``n``: the floor, in ulps of the output's root-mean-square scale."""

SAME_FUNCTION_FACTOR = 64.0
"""``C``: the float64 disagreement allowed, in units of the working-dtype error scaled by ``u64/u``."""


CHUNK = 1 << 18
"""Elements per step of the whole-tensor sums: 2 MB of float64, so that the differences of a model's
gradients (hundreds of MB) are never held whole and the scratch stays in cache."""


class Difference(NamedTuple):
    """``|a − b|`` of two same-shaped arrays, summarised in float64: ``Σ(a − b)²``, the largest
    ``|a − b|`` and its flat index."""

    sum_of_squares: float
    largest: float
    index: int
    count: int

    @property
    def rms(self) -> float:
        """``√(Σ(a − b)² / n)``, 0 for no elements."""
        return root_mean(self.sum_of_squares, self.count)


def difference(a: np.ndarray, b: np.ndarray) -> Difference:
    """:class:`Difference` of ``a`` and ``b``, a :data:`CHUNK` at a time in one float64 scratch buffer
    (NaN propagates into every field).

    >>> difference(np.array([1.0, 2.0]), np.array([1.0, -1.0]))
    Difference(sum_of_squares=9.0, largest=3.0, index=1, count=2)
    """
    a = np.asarray(a)
    chunk_a, chunk_b = chunk_reader(a, CHUNK), chunk_reader(np.asarray(b), CHUNK)
    scratch = np.empty(min(CHUNK, a.size), np.float64)
    total, largest, index = 0.0, 0.0, 0
    for start in range(0, a.size, CHUNK):
        step = scratch[: min(CHUNK, a.size - start)]
        stop = start + step.size
        np.subtract(chunk_a(start, stop), chunk_b(start, stop), out=step)
        total += float(np.einsum("i,i->", step, step))  # the signed difference: the same squares
        # the largest |a - b| from the two extremes; the first index only where it beats the last
        if not max(step.max(initial=0.0), -step.min(initial=0.0)) <= largest:
            where = int(np.argmax(np.abs(step, out=step)))  # the first of the largest, or the first NaN
            largest, index = float(step[where]), start + where
            if np.isnan(largest):
                return Difference(float("nan"), largest, index, a.size)
    return Difference(total, largest, index, a.size)


def finite_differences(a: np.ndarray, e: np.ndarray, t: np.ndarray) -> tuple[Difference, Difference] | None:
    """:func:`difference` of ``a`` and of ``e`` from ``t``, or ``None`` where a value of the three is not
    finite: finite sums mean finite values (``a − t`` is finite only where both are); a sum that is not
    may still be finite values whose squares overflow, which :func:`all_finite` tells.

    >>> finite_differences(np.ones(2), np.zeros(2), np.array([1.0, np.nan])) is None
    True
    """
    differences = difference(a, t), difference(e, t)
    if finite_sums(*(d.sum_of_squares for d in differences)) or all_finite(a, e, t):
        return differences
    return None


def sum_of_squares(a: np.ndarray) -> float:
    """``Σ a²`` in float64, a :data:`CHUNK` at a time, without a float64 or squared copy of ``a``.

    >>> sum_of_squares(np.array([3.0, -4.0], np.float32))
    25.0
    """
    a = np.asarray(a)
    chunk_a = chunk_reader(a, CHUNK)
    scratch = np.empty(min(CHUNK, a.size) if a.dtype != np.float64 else 0, np.float64)
    total = 0.0
    for start in range(0, a.size, CHUNK):
        step = chunk_a(start, min(start + CHUNK, a.size))
        if step.dtype != np.float64:  # float64 is summed where it lies: einsum's order ignores alignment
            np.copyto(scratch[: step.size], step, casting="same_kind")
            step = scratch[: step.size]
        total += float(np.einsum("i,i->", step, step))
    return total


def root_mean(squares: float, count: int) -> float:
    """``√(squares / count)``, 0 for no elements: the RMS from a sum of squares."""
    return float(np.sqrt(squares / count)) if count else 0.0


def rms(a: np.ndarray) -> float:
    """The root mean square of ``a`` (0 for an empty array)."""
    return root_mean(sum_of_squares(a), np.size(a))


def finite_sums(*sums: float) -> bool:
    """Whether every sum of squares is finite: then every element they summed was (a NaN or inf in ``a``
    or ``b`` makes ``a - b`` non-finite). A false answer may still be finite values whose squares
    overflow: :func:`~crosscheck.numerics.judging.all_finite` tells."""
    return all(math.isfinite(total) for total in sums)


def _abs_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    difference = np.subtract(a, b)
    return np.abs(difference, out=difference)


def _nonfinite(
    values: list[np.ndarray], truth: np.ndarray, equal_nan: bool
) -> tuple[np.ndarray, tuple[str, ...]]:
    bad = np.logical_or.reduce([nonfinite_mismatch(v, truth, equal_nan) for v in values])
    if not bad.any():
        return bad, ()
    first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))
    return bad, (f"{int(bad.sum())} NaN or inf values where the other side differs, first at index {first}",)


def _worst_of(off: Difference | np.ndarray, shape: tuple[int, ...]) -> tuple[tuple[int, ...], float]:
    """The index and value of the largest absolute difference (the first non-kept element, inf)."""
    if not math.prod(shape):
        return (), 0.0
    if isinstance(off, Difference):
        return tuple(int(i) for i in np.unravel_index(off.index, shape)), off.largest
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(off)), shape))
    return index, float(off[index])


def compare_relative(
    actual,
    expected,
    reference,
    dtype,
    *,
    factor: float = FACTOR,
    floor_ulps: float = FLOOR_ULPS,
    scale: float = 0.0,
    equal_nan=False,
    finite: bool | None = None,
    truth_rms: float | None = None,
    differences: tuple[Difference, Difference] | None = None,
) -> Comparison:
    """The rounding tier without an analytic bound: ``actual`` and ``expected`` (both frameworks in the
    working ``dtype``) each against the float64 ``reference``: each RMS error within ``factor`` × the
    other's plus ``floor_ulps`` ulps of the output's scale — the reference's RMS, or ``scale`` when
    that is larger. A tensor that is zero by cancellation (the gradient of an attention key bias) has
    no scale of its own: its rounding noise is that of the terms that cancel, so a caller passes the
    scale of the computation it belongs to (``check`` passes the RMS of all parameter gradients).
    ``finite`` (every value of the three is finite), ``truth_rms`` (the RMS of ``reference``) and
    ``differences`` (:func:`difference` of each side and ``reference``), when the caller has read them
    already, are not read again.

    Shape:
        all three share one shape.
    """
    a, e, t = (np.asarray(v) for v in (actual, expected, reference))
    if finite is None:
        differences = finite_differences(a, e, t)
        finite = differences is not None
    if finite:  # the usual case: no mask, no float64 copies, sums a chunk at a time
        bad, notes = np.zeros((), bool), ()
        off_a, off_e = differences if differences is not None else (difference(a, t), difference(e, t))
        err_a, err_e = off_a.rms, off_e.rms
        max_a, max_e, scale_t = off_a.largest, off_e.largest, rms(t) if truth_rms is None else truth_rms
        worst_at = {"actual": off_a, "expected": off_e}
    else:  # inf where an element is not kept, so that the worst index names it
        a, e, t = (v.astype(np.float64) for v in (a, e, t))
        bad, notes = _nonfinite([a, e], t, equal_nan)
        keep = ~bad & np.isfinite(t)
        kept_a, kept_e = _abs_difference(a, t)[keep], _abs_difference(e, t)[keep]
        err_a, err_e, scale_t = rms(kept_a), rms(kept_e), rms(t[keep])
        max_a, max_e = (float(np.max(kept, initial=0.0)) for kept in (kept_a, kept_e))
        worst_at = {
            side: np.where(keep, _abs_difference(v, t), np.inf)
            for side, v in (("actual", a), ("expected", e))
        }
    floor = floor_ulps * unit_roundoff(dtype) * max(scale_t, scale)
    ratio_a = err_a / (factor * err_e + floor) if err_a else 0.0
    ratio_e = err_e / (factor * err_a + floor) if err_e else 0.0
    metrics = {
        "actual_rms_error": err_a,
        "expected_rms_error": err_e,
        "floor": floor,
        "actual_bound_ratio": ratio_a,
        "expected_bound_ratio": ratio_e,
        "actual_max_error": max_a,
        "expected_max_error": max_e,
        "cross_bound_ratio": max(ratio_a, ratio_e),
    }
    passed = ratio_a <= 1 and ratio_e <= 1 and not bad.any()
    side, err, other = ("actual", err_a, err_e) if ratio_a >= ratio_e else ("expected", err_e, err_a)
    index, worst = _worst_of(worst_at[side], a.shape)
    rule = f"each RMS error within c={factor:g}× the other's + {floor_ulps:g} ulps (no analytic bound)"
    details = (
        f"RMS error against float64 truth: {side} {err:.2e}, the other {other:.2e} "
        f"(up to {factor * other + floor:.2e} allowed; {rule})",
        f"Greatest absolute difference of {side}: {worst:.1e} at index {index}",
    )
    dtype_name, mismatched, allowed = (
        str(np.asarray(actual).dtype),
        0 if passed else a.size,
        factor * other + floor,
    )
    return Comparison(
        passed, metrics, a.shape, dtype_name, mismatched, index, worst, allowed, rule, notes, details
    )


def compare_same_function(
    actual64, expected64, *, working_error: float, dtype, factor: float = SAME_FUNCTION_FACTOR,
    floor_ulps: float = FLOOR_ULPS, equal_nan: bool = False, truth_dtype="float64",
    expected_rms: float | None = None,
) -> Comparison:  # fmt: skip
    """The same-function tier without an analytic bound: both frameworks in float64 may differ by no
    more than float64 rounding explains — ``factor·(u64/u)·working_error`` plus ``floor_ulps`` ulps of
    float64 of the output's RMS, where ``working_error`` is the larger RMS error of the two frameworks
    against the float64 truth in the working ``dtype``. ``truth_dtype``: the precision the float64 runs
    actually reached (``"float32"`` where a narrowing could not be promoted): its ``u`` replaces ``u64``.
    ``expected_rms``: the RMS of ``expected64`` where the caller has read it (used when every value is
    finite).

    Shape:
        both share one shape.
    """
    a, e = np.asarray(actual64), np.asarray(expected64)
    worst_at = difference(a, e)  # a finite sum: both finite (else all_finite tells overflow from NaN)
    if finite_sums(worst_at.sum_of_squares) or all_finite(a, e):
        bad, notes = np.zeros((), bool), ()
        measured = worst_at.rms
        scale_e = rms(e) if expected_rms is None else expected_rms
    else:
        a, e = a.astype(np.float64), e.astype(np.float64)
        bad, notes = _nonfinite([a], e, equal_nan)
        keep = ~bad & np.isfinite(e)
        worst_at = np.where(keep, _abs_difference(a, e), np.inf)
        scale_e, measured = rms(e[keep]), rms(worst_at[keep])
    u64 = unit_roundoff(truth_dtype)
    allowed = factor * min(u64 / unit_roundoff(dtype), 1.0) * working_error + floor_ulps * u64 * scale_e
    metrics = {
        "rms_difference": measured,
        "allowed": allowed,
        "actual_bound_ratio": measured / allowed if measured else 0.0,
    }
    passed = measured <= allowed and not bad.any()
    rule = f"within C={factor:g}·(u64/u)·(working-dtype error) + {floor_ulps:g} ulps (no analytic bound)"
    if np.dtype(truth_dtype) != np.float64:
        rule = rule.replace("u64", f"u of {truth_dtype}, the truth's precision")
    index, worst = _worst_of(worst_at, a.shape)
    details = (
        f"RMS difference in float64: {measured:.2e} (up to {allowed:.2e} allowed; {rule})",
        f"Greatest absolute difference: {worst:.1e} at index {index}",
    )
    mismatched = 0 if passed else a.size
    return Comparison(
        passed, metrics, a.shape, "float64", mismatched, index, worst, allowed, rule, notes, details
    )
