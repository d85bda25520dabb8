"""Summaries of accuracies over seeds: the spread, and Student-t confidence intervals for a mean.

>>> round(summary([0.95, 0.96, 0.97])["mean"], 4)
0.96
>>> low, high = summary([0.95, 0.96, 0.97])["interval"]
>>> round(low, 4), round(high, 4)
(0.9352, 0.9848)
"""

from __future__ import annotations

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def summary(values, confidence: float = CONFIDENCE) -> dict:
    """Mean, sample standard deviation, range and the ``confidence`` t-interval of the mean.

    Shape:
        ``values (seeds,)``; at least two of them for a spread and an interval.

    Raises:
        ValueError: fewer than two values.
    """
    a = np.asarray(values, np.float64)
    if a.size < 2:
        raise ValueError(f"summary: a spread needs at least 2 values, got {a.size}.")
    # The rounded sum can put the mean an ulp outside the values' range (five equal values: below them).
    mean, std = float(np.clip(a.mean(), a.min(), a.max())), float(a.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, a.size - 1)) * std / np.sqrt(a.size)
    return {
        "n": int(a.size),
        "mean": mean,
        "std": std,
        "min": float(a.min()),
        "max": float(a.max()),
        "interval": (float(mean - half), float(mean + half)),
        "confidence": confidence,
    }


def paired(values, baseline, confidence: float = CONFIDENCE) -> dict:
    """The difference ``values - baseline`` seed by seed: its :func:`summary`, and how many seeds
    came out higher, equal, lower.

    Shape:
        both ``(seeds,)``, seed ``i`` of one paired with seed ``i`` of the other.
    """
    difference = np.asarray(values, np.float64) - np.asarray(baseline, np.float64)
    return summary(difference, confidence) | {
        "values": difference.tolist(),
        "higher": int((difference > 0).sum()),
        "equal": int((difference == 0).sum()),
        "lower": int((difference < 0).sum()),
    }


def chance_of_gap(difference_std: float, gap: float) -> float:
    """The probability that one comparison of two runs differs by at least ``gap`` in either direction,
    when their difference is normal with mean 0 and ``difference_std``: the seed lottery's odds."""
    if difference_std <= 0:
        return 0.0
    return float(2 * stats.norm.sf(gap / difference_std))
