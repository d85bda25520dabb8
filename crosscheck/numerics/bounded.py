""":func:`crosscheck.numerics.closeness.compare` under a :class:`Bound` for finite arrays, a chunk at a
time: the same numbers as the whole-array path, with a few chunk-sized buffers instead of dozens of
whole-array temporaries (a model's weight gradients are millions of elements, judged in two tiers).

Every element goes through the same float operations as there; maxima, first-index arg-maxima and
counts do not depend on the chunking, and the ULP median is taken over the whole array. Non-finite
values, empty arrays and bounds of another shape take the whole-array path.

>>> import numpy as np
>>> x = np.float32([1, 2, 3])
>>> compare_bounded(x, x + np.float32(1e-7), np.float64([1, 2, 3]), Bound(np.ones(3), 4, "float32")).passed
True
"""

from __future__ import annotations

import numpy as np

from crosscheck.numerics.bits import bits_of, ulp_distance
from crosscheck.numerics.bounds import Bound
from crosscheck.numerics.comparison import Comparison
from crosscheck.numerics.judging import ratio_to

CHUNK = 1 << 16
"""Elements per chunk: a few float64 buffers of it stay in the caches."""


def fits(actual: np.ndarray, expected: np.ndarray, reference: np.ndarray | None, bound) -> bool:
    """Whether this path gives the comparison: a :class:`Bound` of the arrays' shape, every value finite."""
    if not isinstance(bound, Bound) or actual.size == 0 or bound.magnitude.shape != expected.shape:
        return False
    arrays = (actual, expected) + (() if reference is None else (reference,))
    with np.errstate(over="ignore", invalid="ignore"):
        return all(np.isfinite(np.sum(array, dtype=np.float64)) for array in arrays)


class _Side:
    """One side's running maxima against its target: error, ratios, and the worst element."""

    def __init__(self, label: str):
        self.label = label
        self.max_error = self.max_ratio = self.det = self.prob = 0.0
        self.worst = (-1.0, 0.0, 0, 0.0)  # ratio, error, flat index, allowed

    def add(self, error, ratio, allowed, deterministic, probabilistic, start: int) -> None:
        self.max_error = max(self.max_error, float(np.max(error)))
        at = int(np.argmax(ratio))
        if ratio[at] > self.worst[0]:
            self.worst = (float(ratio[at]), float(error[at]), start + at, float(allowed[at]))
        self.max_ratio = max(self.max_ratio, float(ratio[at]))
        self.det = max(self.det, float(np.max(_ratio(error, deterministic))))
        self.prob = max(self.prob, float(np.max(_ratio(error, probabilistic))))

    def metrics(self) -> dict[str, float]:
        label = self.label
        return {
            f"{label}_max_error": self.max_error,
            f"{label}_bound_ratio": self.max_ratio,
            f"{label}_nonfinite": 0.0,
            f"{label}_det_ratio": self.det,
            f"{label}_prob_ratio": self.prob,
        }


_FINITE = np.zeros((), bool)
"""No element fails for being non-finite: every value on this path is finite."""


def _ratio(error: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    return ratio_to(error, allowed, _FINITE)


def compare_bounded(actual, expected, reference, bound: Bound, text: str = "") -> Comparison:
    """The :class:`Comparison` of finite ``actual`` and ``expected`` (each against ``reference`` when
    given, else ``actual`` against ``expected`` with the allowance doubled) under ``bound``.

    Shape:
        ``actual``, ``expected``, ``reference`` and ``bound.magnitude`` share one shape.
    """
    raw = [np.ascontiguousarray(actual).ravel(), np.ascontiguousarray(expected).ravel()]
    truth = None if reference is None else np.ascontiguousarray(reference).ravel()
    magnitude = np.ascontiguousarray(bound.magnitude).ravel()
    sides = [_Side("actual")] + ([] if truth is None else [_Side("expected")])
    ulps = np.empty(raw[0].size, np.float64)
    max_abs = max_rel = cross = 0.0
    equal_bits = mismatched = 0
    for start in range(0, raw[0].size, CHUNK):
        part = slice(start, start + CHUNK)
        ours, theirs = raw[0][part], raw[1][part]
        a, e = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
        deterministic, probabilistic, allowed = bound.of(magnitude[part])
        allowed = allowed if truth is not None else 2 * allowed
        diff = np.abs(a - e)
        max_abs = max(max_abs, float(np.max(diff)))
        max_rel = max(max_rel, float(np.max(diff / np.where(e == 0, 1.0, np.abs(e)))))
        ulps[part] = ulp_distance(ours, theirs)
        equal_bits += int(np.count_nonzero(bits_of(ours) == bits_of(theirs)))
        if truth is None:
            targets = [(a, e)]
        else:
            t = np.asarray(truth[part], np.float64)
            targets = [(a, t), (e, t)]
            cross = max(cross, float(np.max(_ratio(diff, 2 * allowed))))
        bad = None
        for side, (values, target) in zip(sides, targets, strict=True):
            error = np.abs(values - target)
            ratio = _ratio(error, allowed)
            side.add(error, ratio, allowed, deterministic, probabilistic, start)
            bad = ratio > 1 if bad is None else bad | (ratio > 1)
        mismatched += int(np.count_nonzero(bad))
    metrics = {
        "max_abs": max_abs,
        "max_rel": max_rel,
        "max_ulp": float(np.max(ulps)),
        "median_ulp": float(np.median(ulps)),
        "bitwise_equal": equal_bits / ulps.size,
    }
    if truth is not None:
        metrics["cross_bound_ratio"] = cross
    for side in sides:
        metrics |= side.metrics()
    ratio, error, flat, allowed = max((side.worst for side in sides), key=lambda worst: worst[0])
    shape = np.shape(expected)
    return Comparison(
        passed=mismatched == 0,
        metrics=metrics,
        shape=shape,
        dtype=str(np.asarray(actual).dtype),
        mismatched=mismatched,
        worst_index=tuple(int(i) for i in np.unravel_index(flat, shape)),
        worst_error=error,
        worst_allowed=allowed,
        bound_text=text or bound.describe(),
    )
