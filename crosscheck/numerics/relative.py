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

import numpy as np

from crosscheck.numerics.bounds import unit_roundoff
from crosscheck.numerics.comparison import Comparison
from crosscheck.numerics.judging import nonfinite_mismatch

FACTOR = 3.0
"""``c``: how many times the other framework's error one framework's may be."""

FLOOR_ULPS = 4.0
"""``n``: the floor, in ulps of the output's root-mean-square scale."""

SAME_FUNCTION_FACTOR = 64.0
"""``C``: the float64 disagreement allowed, in units of the working-dtype error scaled by ``u64/u``."""


def rms(a: np.ndarray) -> float:
    """The root mean square of ``a`` (0 for an empty array)."""
    return float(np.sqrt(np.mean(np.square(a)))) if np.size(a) else 0.0


def _nonfinite(
    values: list[np.ndarray], truth: np.ndarray, equal_nan: bool
) -> tuple[np.ndarray, tuple[str, ...]]:
    bad = np.logical_or.reduce([nonfinite_mismatch(v, truth, equal_nan) for v in values])
    if not bad.any():
        return bad, ()
    first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))
    return bad, (f"{int(bad.sum())} NaN or inf values where the other side differs, first at index {first}",)


def _worst(difference: np.ndarray) -> tuple[tuple[int, ...], float]:
    if difference.size == 0:
        return (), 0.0
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(difference)), difference.shape))
    return index, float(difference[index])


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
) -> Comparison:
    """The rounding tier without an analytic bound: ``actual`` and ``expected`` (both frameworks in the
    working ``dtype``) each against the float64 ``reference``: each RMS error within ``factor`` × the
    other's plus ``floor_ulps`` ulps of the output's scale — the reference's RMS, or ``scale`` when
    that is larger. A tensor that is zero by cancellation (the gradient of an attention key bias) has
    no scale of its own: its rounding noise is that of the terms that cancel, so a caller passes the
    scale of the computation it belongs to (``check`` passes the RMS of all parameter gradients).

    Shape:
        all three share one shape.
    """
    a, e, t = (np.asarray(v).astype(np.float64) for v in (actual, expected, reference))
    bad, notes = _nonfinite([a, e], t, equal_nan)
    keep = ~bad & np.isfinite(t)
    err_a, err_e = rms((a - t)[keep]), rms((e - t)[keep])
    floor = floor_ulps * unit_roundoff(dtype) * max(rms(t[keep]), scale)
    ratio_a = err_a / (factor * err_e + floor) if err_a else 0.0
    ratio_e = err_e / (factor * err_a + floor) if err_e else 0.0
    metrics = {
        "actual_rms_error": err_a,
        "expected_rms_error": err_e,
        "floor": floor,
        "actual_bound_ratio": ratio_a,
        "expected_bound_ratio": ratio_e,
        "actual_max_error": float(np.max(np.abs(a - t)[keep], initial=0.0)),
        "expected_max_error": float(np.max(np.abs(e - t)[keep], initial=0.0)),
        "cross_bound_ratio": max(ratio_a, ratio_e),
    }
    passed = ratio_a <= 1 and ratio_e <= 1 and not bad.any()
    side, err, other = ("actual", err_a, err_e) if ratio_a >= ratio_e else ("expected", err_e, err_a)
    index, worst = _worst(np.where(keep, np.abs((a if side == "actual" else e) - t), np.inf))
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
) -> Comparison:  # fmt: skip
    """The same-function tier without an analytic bound: both frameworks in float64 may differ by no
    more than float64 rounding explains — ``factor·(u64/u)·working_error`` plus ``floor_ulps`` ulps of
    float64 of the output's RMS, where ``working_error`` is the larger RMS error of the two frameworks
    against the float64 truth in the working ``dtype``. ``truth_dtype``: the precision the float64 runs
    actually reached (``"float32"`` where a narrowing could not be promoted): its ``u`` replaces ``u64``.

    Shape:
        both share one shape.
    """
    a, e = np.asarray(actual64, np.float64), np.asarray(expected64, np.float64)
    bad, notes = _nonfinite([a], e, equal_nan)
    keep = ~bad & np.isfinite(e)
    difference = np.abs(a - e)
    u64 = unit_roundoff(truth_dtype)
    allowed = factor * min(u64 / unit_roundoff(dtype), 1.0) * working_error + floor_ulps * u64 * rms(e[keep])
    measured = rms(difference[keep])
    metrics = {
        "rms_difference": measured,
        "allowed": allowed,
        "actual_bound_ratio": measured / allowed if measured else 0.0,
    }
    passed = measured <= allowed and not bad.any()
    rule = f"within C={factor:g}·(u64/u)·(working-dtype error) + {floor_ulps:g} ulps (no analytic bound)"
    if np.dtype(truth_dtype) != np.float64:
        rule = rule.replace("u64", f"u of {truth_dtype}, the truth's precision")
    index, worst = _worst(np.where(keep, difference, np.inf))
    details = (
        f"RMS difference in float64: {measured:.2e} (up to {allowed:.2e} allowed; {rule})",
        f"Greatest absolute difference: {worst:.1e} at index {index}",
    )
    mismatched = 0 if passed else a.size
    return Comparison(
        passed, metrics, a.shape, "float64", mismatched, index, worst, allowed, rule, notes, details
    )
