"""Element by element: how far each side is from its target, against its allowance, and what the
non-finite values alone decide (NaN never passes unless asked to; an infinity only against the same one).

>>> nonfinite_mismatch(np.array([np.nan, np.inf]), np.array([np.nan, np.inf]), equal_nan=False).tolist()
[True, False]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from crosscheck.numerics.comparison import Worst


@dataclass(frozen=True)
class Allowance:
    """What each element may be off by, and the words a failure message uses for it."""

    allowed: np.ndarray
    text: str
    deterministic: np.ndarray | None = None
    probabilistic: np.ndarray | None = None


class Judged(NamedTuple):
    """One side (``actual`` or ``expected``) judged against its target."""

    label: str
    target: str  # what it is judged against: "expected" or "the float64 reference"
    values: np.ndarray
    error: np.ndarray
    nonfinite: np.ndarray  # where a non-finite value alone fails the element
    ratio: np.ndarray  # error / allowed, inf where non-finite


def nonfinite_mismatch(values: np.ndarray, target: np.ndarray, equal_nan: bool) -> np.ndarray:
    """Where a non-finite value fails by itself: one side non-finite and the other not, infinities of
    different signs, an infinity against NaN, or NaN against NaN unless ``equal_nan``."""
    if all_finite(values, target):  # no non-finite value: nothing fails by itself
        return np.zeros(np.broadcast_shapes(np.shape(values), np.shape(target)), bool)
    finite = np.isfinite(values) & np.isfinite(target)
    same_infinity = np.isinf(values) & (values == target)
    both_nan = np.isnan(values) & np.isnan(target)
    return ~finite & ~same_infinity & ~(both_nan & equal_nan)


def ratio_to(
    error: np.ndarray, allowed: np.ndarray, nonfinite: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """``error / allowed`` with 0/0 = 0, x/0 = inf, inf wherever ``nonfinite`` and 0 for matched
    non-finite values (whose error is NaN); ``out``: a float64 array of the result's shape to write it
    into (a chunked comparison's buffer)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.asarray(np.divide(error, allowed, out=out), np.float64)  # x/0 = inf; 0/0, NaN: below
    if out is None and (not ratio.flags.writeable or ratio.base is not None):
        ratio = ratio.copy()
    if ratio.size and np.isnan(np.add.reduce(ratio, axis=None)):  # ratios >= 0: a NaN sum means a 0/0
        ratio[np.isnan(ratio)] = 0.0
    if nonfinite.any():
        ratio[np.broadcast_to(nonfinite, ratio.shape)] = np.inf
    return ratio


def all_finite(*arrays) -> bool:
    """Whether every element of every array is finite: one sum each (a non-finite element makes it
    non-finite; a sum that overflows on finite values is checked element by element)."""
    with np.errstate(over="ignore", invalid="ignore"):  # inf - inf, an overflowing sum: both answered
        for array in map(np.asarray, arrays):
            if array.size and not np.isfinite(np.sum(array)) and not np.isfinite(array).all():
                return False
    return True


def judge(label: str, values: np.ndarray, target: str, truth: np.ndarray, allowed, equal_nan: bool) -> Judged:
    with np.errstate(invalid="ignore"):
        error = np.abs(values - truth)
    nonfinite = nonfinite_mismatch(values, truth, equal_nan)
    return Judged(label, target, values, error, nonfinite, ratio_to(error, allowed, nonfinite))


def side_metrics(side: Judged, allowance: Allowance) -> dict[str, float]:
    label = side.label
    largest = float(np.max(side.error, initial=0.0))
    if not (np.isfinite(largest) and not side.nonfinite.any()):  # a NaN or inf error: each by its rule
        largest = float(np.max(np.where(side.nonfinite, np.inf, np.nan_to_num(side.error)), initial=0.0))
    metrics = {
        f"{label}_max_error": largest,
        f"{label}_bound_ratio": float(np.max(side.ratio, initial=0.0)),
        f"{label}_nonfinite": float(side.nonfinite.sum()),
    }
    if allowance.deterministic is not None:
        for kind, bound in (("det", allowance.deterministic), ("prob", allowance.probabilistic)):
            ratio = ratio_to(side.error, np.broadcast_to(bound, side.error.shape), side.nonfinite)
            metrics[f"{label}_{kind}_ratio"] = float(np.max(ratio, initial=0.0))
    return metrics


def worst_of(side: Judged, allowed: np.ndarray) -> Worst:
    if side.ratio.size == 0:
        return Worst(-1.0, 0.0, (), 0.0)
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(side.ratio)), side.ratio.shape))
    error = np.inf if side.nonfinite[index] else float(np.nan_to_num(side.error[index]))
    return Worst(float(side.ratio[index]), error, index, float(allowed[index]))


def nonfinite_note(side: Judged) -> str:
    """``"actual has 2 NaN and 1 inf, first at index (0, 7)"``: the failing non-finite values."""
    bad = side.nonfinite
    if not bad.any():
        return ""
    counts = [
        f"{int(n)} {word}"
        for n, word in (
            ((bad & np.isnan(side.values)).sum(), "NaN"),
            ((bad & np.isinf(side.values)).sum(), "inf"),
        )
        if n
    ]
    parts = [f"{side.label} has {' and '.join(counts)}"] if counts else []
    finite = int((bad & np.isfinite(side.values)).sum())
    if finite:
        parts.append(f"{side.label} is finite at {finite} where {side.target} is not")
    first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))
    return f"{'; '.join(parts)}, first at index {first}"
