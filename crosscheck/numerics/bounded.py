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

import threading

import numpy as np

from crosscheck.numerics.bits import bits_of, ulp_steps
from crosscheck.numerics.bounds import Bound
from crosscheck.numerics.chunks import chunk_reader
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

    def add(self, error, ratio, allowed, deterministic, probabilistic, start: int, spare=None) -> None:
        """``spare``: a float64 buffer of ``error``'s shape the deterministic and probabilistic ratios may
        be written into."""
        self.max_error = max(self.max_error, float(np.max(error)))
        at = int(np.argmax(ratio))
        if ratio[at] > self.worst[0]:
            self.worst = (float(ratio[at]), float(error[at]), start + at, float(allowed[at]))
        self.max_ratio = max(self.max_ratio, float(ratio[at]))
        self.det = max(self.det, _largest_ratio(error, deterministic, spare))
        self.prob = max(self.prob, _largest_ratio(error, probabilistic, spare))

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


def _largest_ratio(error: np.ndarray, allowed: np.ndarray, out: np.ndarray | None = None) -> float:
    """``max(_ratio(error, allowed))`` in two passes: the ratios are never negative, and a 0/0 (NaN, which
    ``fmax`` passes over) counts as 0. ``out``: a float64 buffer of ``error``'s shape for the ratios."""
    with np.errstate(invalid="ignore", divide="ignore"):
        largest = float(np.fmax.reduce(np.divide(error, allowed, out=out), axis=None))
    return 0.0 if np.isnan(largest) else largest


class _Buffers(threading.local):
    """Each thread's float64 and boolean buffers of :data:`CHUNK` elements, made once and reused: a new
    array per operation and chunk costs more in fresh pages than the operation does."""

    def __init__(self):
        self.floats = [np.empty(CHUNK) for _ in range(9)]
        self.flags = [np.empty(CHUNK, bool) for _ in range(2)]

    def of(self, size: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return [b[:size] for b in self.floats], [b[:size] for b in self.flags]


_BUFFERS = _Buffers()


def _float64(values: np.ndarray, buffer: np.ndarray) -> np.ndarray:
    """``np.asarray(values, np.float64)``: ``values`` itself when float64 already, else in ``buffer``."""
    if values.dtype == np.float64:
        return values
    np.copyto(buffer, values)
    return buffer


class _UlpMedian:
    """The median of every element's ULP distance, from counts: distances under :data:`COUNTED` in a
    histogram, the few above it kept; the median :func:`numpy.median` gives, without holding every
    distance (8 bytes an element) or partitioning them."""

    def __init__(self):
        self.counts = np.zeros(COUNTED + 1, np.int64)
        self.above: list[np.ndarray] = []
        self.largest = 0

    def add(self, steps: np.ndarray) -> None:
        largest = int(np.max(steps))
        self.largest = max(self.largest, largest)
        if largest < COUNTED:  # the usual case: every distance counted as it is
            self.counts += np.bincount(steps.view(np.int64), minlength=COUNTED + 1)
            return
        self.counts += np.bincount(np.minimum(steps, COUNTED).view(np.int64), minlength=COUNTED + 1)
        self.above.append(steps[steps >= COUNTED])

    def median(self) -> float:
        size = int(self.counts.sum())
        below = np.cumsum(self.counts[:COUNTED])
        above = np.concatenate(self.above) if self.above else None

        def at(rank: int) -> float:
            if rank < below[-1]:
                return float(np.searchsorted(below, rank, side="right"))
            return float(np.partition(above, rank - below[-1])[rank - below[-1]])

        middle = [at(size // 2)] if size % 2 else [at(size // 2 - 1), at(size // 2)]
        return float(np.mean(np.array(middle, np.float64)))  # as numpy.median averages the two middles


COUNTED = 1 << 12
"""ULP distances below this are counted in a histogram; larger ones (rare on a passing item) are kept."""


def compare_bounded(actual, expected, reference, bound: Bound, text: str = "") -> Comparison:
    """The :class:`Comparison` of finite ``actual`` and ``expected`` (each against ``reference`` when
    given, else ``actual`` against ``expected`` with the allowance doubled) under ``bound``.

    Shape:
        ``actual``, ``expected``, ``reference`` and ``bound.magnitude`` share one shape.
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    read_actual, read_expected = chunk_reader(actual, CHUNK), chunk_reader(expected, CHUNK)
    read_truth = None if reference is None else chunk_reader(np.asarray(reference), CHUNK)
    read_magnitude = chunk_reader(bound.magnitude, CHUNK)
    sides = [_Side("actual")] + ([] if read_truth is None else [_Side("expected")])
    ulps = _UlpMedian()
    max_abs = max_rel = cross = 0.0
    equal_bits = mismatched = 0
    for start in range(0, actual.size, CHUNK):
        stop = min(start + CHUNK, actual.size)
        # every operation as in the whole-array path, into this thread's buffers (see _Buffers)
        (a, e, t, det, prob, allowed, diff, ratio, work), (bad, flags) = _BUFFERS.of(stop - start)
        ours, theirs = read_actual(start, stop), read_expected(start, stop)
        a, e = _float64(ours, a), _float64(theirs, e)
        magnitude = read_magnitude(start, stop)
        deterministic, probabilistic, allowed = bound.of(magnitude, out=(det, prob, allowed))
        if read_truth is None:
            allowed = np.multiply(2, allowed, out=allowed)
        np.abs(np.subtract(a, e, out=diff), out=diff)
        max_abs = max(max_abs, float(np.max(diff)))
        scale = np.abs(e, out=work)
        np.copyto(scale, 1.0, where=np.equal(e, 0, out=flags))
        max_rel = max(max_rel, float(np.max(np.divide(diff, scale, out=scale))))
        ulps.add(ulp_steps(ours, theirs.astype(ours.dtype, copy=False)))
        equal_bits += int(np.count_nonzero(np.equal(bits_of(ours), bits_of(theirs), out=flags)))
        if read_truth is None:
            targets = [(a, e)]
        else:
            t = _float64(read_truth(start, stop), t)
            targets = [(a, t), (e, t)]
            cross = max(cross, _largest_ratio(diff, np.multiply(2, allowed, out=work), work))
        for i, (side, (values, target)) in enumerate(zip(sides, targets, strict=True)):
            error = np.abs(np.subtract(values, target, out=diff), out=diff)  # the difference is read no more
            ratio_to(error, allowed, _FINITE, out=ratio)
            side.add(error, ratio, allowed, deterministic, probabilistic, start, work)
            if i == 0:
                np.greater(ratio, 1, out=bad)
            else:
                np.logical_or(bad, np.greater(ratio, 1, out=flags), out=bad)
        mismatched += int(np.count_nonzero(bad))
    metrics = {
        "max_abs": max_abs,
        "max_rel": max_rel,
        "max_ulp": float(ulps.largest),
        "median_ulp": ulps.median(),
        "bitwise_equal": equal_bits / actual.size,
    }
    if read_truth is not None:
        metrics["cross_bound_ratio"] = cross
    for side in sides:
        metrics |= side.metrics()
    ratio, error, flat, allowed = max((side.worst for side in sides), key=lambda worst: worst[0])
    shape = np.shape(expected)
    return Comparison(
        passed=mismatched == 0,
        metrics=metrics,
        shape=shape,
        dtype=str(actual.dtype),
        mismatched=mismatched,
        worst_index=tuple(int(i) for i in np.unravel_index(flat, shape)),
        worst_error=error,
        worst_allowed=allowed,
        bound_text=text or bound.describe(),
    )
