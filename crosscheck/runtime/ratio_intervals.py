"""Speed ratios with their uncertainty, from the interleaved rounds of the one timing engine.

Two calls timed by the same :func:`crosscheck.runtime.timing.measure` ran side by side in every
round, so a change of load on the machine hits both alike and their per-round ratio cancels it; what
is left from round to round is noise. A ratio here is the median of the per-round ratios, and its
interval the percentile bootstrap of that median: :data:`RESAMPLES` resamples of the rounds drawn
with the fixed seed :data:`SEED`, so the same samples always give the same interval.

A ratio of times reads "slower" or "faster" only when its whole interval lies beyond 1 ± 5%
(:data:`SAME_SPEED`, on both sides: above 1.05 or below 1/1.05); otherwise the two are "as fast
(within noise)". One round alone says nothing about noise: its interval is everything, (0, inf).

>>> interval = paired_ratio([2.0, 2.1, 1.9, 2.0, 2.2], [1.0, 1.0, 1.0, 1.1, 1.0])
>>> interval.ratio, interval.side
(2.0, 1)
>>> paired_ratio([1.0, 1.1, 0.9], [1.0, 1.0, 1.0]).side  # 0.9–1.1: within noise
0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

SAME_SPEED = 1.05  # ratios within 5% of 1 (either way) are "as fast"
CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0


def side_of(low: float, high: float) -> int:
    """``1`` when the whole interval ``[low, high]`` of a time ratio lies above :data:`SAME_SPEED` (the
    numerator takes longer), ``-1`` when it lies below ``1 / SAME_SPEED``, ``0`` otherwise (within noise).

    >>> side_of(1.06, 1.2), side_of(0.5, 0.9), side_of(0.9, 1.2), side_of(1.01, 1.04)
    (1, -1, 0, 0)
    """
    if low > SAME_SPEED:
        return 1
    if high < 1 / SAME_SPEED:
        return -1
    return 0


@dataclass(frozen=True)
class RatioInterval:
    """A time ratio ``numerator / denominator``: the median per-round ``ratio``, the ``confidence``
    interval ``[low, high]`` around it, and how many paired ``rounds`` it comes from."""

    ratio: float
    low: float
    high: float
    rounds: int
    confidence: float = CONFIDENCE

    @property
    def side(self) -> int:
        """:func:`side_of` the interval: 1 slower, -1 faster (the numerator), 0 within noise."""
        return side_of(self.low, self.high)

    def inverse(self) -> RatioInterval:
        """``denominator / numerator``, its interval turned around.

        >>> RatioInterval(2.0, 1.6, 2.5, 5).inverse()
        RatioInterval(ratio=0.5, low=0.4, high=0.625, rounds=5, confidence=0.95)
        """
        low = 1 / self.high if self.high > 0 else math.inf
        high = 1 / self.low if self.low > 0 else math.inf
        return RatioInterval(1 / self.ratio, low, high, self.rounds, self.confidence)

    def as_dict(self) -> dict:
        """``{"ratio", "interval": [low, high], "confidence", "rounds"}`` (docs/report-schema.md)."""
        return {
            "ratio": self.ratio,
            "interval": [self.low, self.high],
            "confidence": self.confidence,
            "rounds": self.rounds,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> RatioInterval:
        """The inverse of :meth:`as_dict`, from a report's JSON (``"inf"`` as a string included)."""
        low, high = (float(value) for value in data["interval"])
        return cls(float(data["ratio"]), low, high, int(data["rounds"]), float(data["confidence"]))


def paired_ratio(
    numerator_s: Sequence[float],
    denominator_s: Sequence[float],
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> RatioInterval:
    """The median of ``numerator_s[r] / denominator_s[r]`` over the rounds ``r`` and its percentile
    bootstrap interval (resampling whole rounds, so each pair stays together). Medians are taken of the
    ratios' logarithms (of an even count: the geometric mean of the middle two), so that the ratio the
    other way round is exactly the inverse, interval included.

    Shape:
        ``numerator_s``, ``denominator_s``: ``(rounds,)`` seconds per call, round by round.

    Raises:
        ValueError: the two hold different numbers of rounds, or none.
    """
    top, bottom = np.asarray(numerator_s, dtype=np.float64), np.asarray(denominator_s, dtype=np.float64)
    if top.shape != bottom.shape or top.ndim != 1 or top.size == 0:
        raise ValueError(
            "paired_ratio: the two calls must come from the same timed rounds, got "
            f"{top.shape} and {bottom.shape} samples."
        )
    logs = np.log(top) - np.log(bottom)
    ratio = float(np.exp(np.median(logs)))
    if logs.size == 1:
        return RatioInterval(ratio, 0.0, math.inf, 1, confidence)
    picks = np.random.default_rng(seed).integers(0, logs.size, size=(resamples, logs.size))
    medians = np.median(logs[picks], axis=1)
    tail = (1 - confidence) / 2
    low, high = np.exp(np.quantile(medians, [tail, 1 - tail]))
    return RatioInterval(ratio, float(low), float(high), int(logs.size), confidence)


def fastest_within_noise(samples_s: Mapping[str, Sequence[float]]) -> list[str]:
    """The fastest call (smallest median), then every other call not clearly slower than it (its
    :func:`paired_ratio` to the fastest not wholly above :data:`SAME_SPEED`), fastest first.

    Shape:
        ``samples_s``: per name, ``(rounds,)`` seconds per call from the same timed rounds.

    >>> fastest_within_noise({"a": [1.05, 1.2, 0.9], "b": [1.0, 1.0, 1.0], "c": [3.0, 3.0, 3.1]})
    ['b', 'a']
    """
    medians = {name: float(np.median(times)) for name, times in samples_s.items()}
    order = sorted(medians, key=medians.get)
    best = order[0]
    return [best] + [name for name in order[1:] if paired_ratio(samples_s[name], samples_s[best]).side != 1]
