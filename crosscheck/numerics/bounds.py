"""Rounding-error bounds for sums and dot products (Higham, *Accuracy and Stability*, §3.1).

A length-K dot product computed in precision u satisfies
``|fl(x·w) - x·w| <= γ_K · Σ|x_i||w_i|`` with ``γ_K = K·u / (1 - K·u)`` whatever the order of
the additions; under the usual random-rounding model the error grows like ``√K·u`` instead.
Bounds are evaluated in float64 from ``|x|`` and ``|W|`` so they are exact to many digits.

A verdict never uses one fixed tolerance. Each element gets its own allowance from its bound
(:class:`Bound`): ``c · √K · u · M`` where ``M`` is the element's magnitude ``Σ|x||w|``, capped by
the rigorous ``γ_K · M``. ``c = 4`` (:data:`SLACK`): under the random-rounding model an honest
sum's error has a spread of at most about ``√K·u·M/3`` (the worst case, sequential summation of
same-sign terms), so ``4·√K·u·M`` sits beyond 10 spreads — no false alarm in the sweep from K=8 to
65,536 — while errors of different math (a wrong weight, a lost bias, bfloat16 inside a float32
layer at K ≥ 8) land far above it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ml_dtypes
import numpy as np

SLACK = 4.0
"""c: allowed error as a multiple of the probabilistic bound ``√K·u·M``."""


def unit_roundoff(dtype) -> float:
    """``u = 2^-p`` for a dtype with p-bit significand: float32 2^-24, bfloat16 2^-8, float64 2^-53.

    >>> unit_roundoff("float32") == 2.0**-24
    True
    """
    return float(ml_dtypes.finfo(np.dtype(dtype)).eps) / 2


def gamma(k: int, dtype, *, probabilistic: bool = False) -> float:
    """``γ_K = K·u/(1-K·u)``, or ``√K·u`` for the probabilistic bound; ``inf`` once ``K·u >= 1``.

    >>> round(gamma(4, "float32") / 2.0**-22, 6)
    1.0
    """
    u = unit_roundoff(dtype)
    if probabilistic:
        return math.sqrt(k) * u
    return math.inf if k * u >= 1 else k * u / (1 - k * u)


def dot_bound(x, w, dtype, *, bias=None, probabilistic: bool = False) -> np.ndarray:
    """Elementwise bound on the rounding error of ``x @ w (+ bias)`` computed in ``dtype``.

    ``γ_K · (|x| @ |w| + |bias|)`` with ``K = in + 1`` when there is a bias (one more addition),
    computed in float64.

    Shape:
        x ``(..., in)``, w ``(in, out)``, bias ``(out,)`` or None -> ``(..., out)``.

    >>> dot_bound(np.ones((2, 3)), np.ones((3, 4)), "float32").shape
    (2, 4)
    """
    x_abs = np.abs(np.asarray(x, np.float64))
    w_abs = np.abs(np.asarray(w, np.float64))
    k = w_abs.shape[0] + (bias is not None)
    magnitude = x_abs @ w_abs
    if bias is not None:
        magnitude = magnitude + np.abs(np.asarray(bias, np.float64))
    return gamma(k, dtype, probabilistic=probabilistic) * magnitude


@dataclass(frozen=True)
class Bound:
    """The rounding-error bound of one tensor: magnitude ``M`` per element, reduction length ``K``.

    Shape:
        magnitude: the tensor's shape (float64, ``Σ|x||w|`` per element); ``k`` a positive int.

    Raises:
        ValueError: a magnitude that is negative or NaN, ``k`` that is not a positive integer, or a
        ``dtype`` that is not a floating type.

    >>> b = Bound(np.array([1.0, 2.0]), k=16, dtype="float32")
    >>> float(b.probabilistic[1] / 2.0**-24)
    8.0
    """

    magnitude: np.ndarray
    k: int
    dtype: str

    def __post_init__(self):
        magnitude = np.asarray(self.magnitude, np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # two reductions; element tests only if they fail
            doubtful = magnitude.size > 0 and (np.isnan(np.sum(magnitude)) or np.min(magnitude) < 0)
        if doubtful and (np.isnan(magnitude).any() or (magnitude < 0).any()):
            raise ValueError(
                "Bound: magnitudes must be non-negative numbers (Σ|x||w| per element), got "
                f"{int(np.isnan(magnitude).sum())} NaN and {int((magnitude < 0).sum())} negative."
            )
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise ValueError(f"Bound: k must be a positive integer (a reduction length), got {self.k!r}.")
        unit_roundoff(self.dtype)  # raises for a dtype that is not floating
        object.__setattr__(self, "magnitude", magnitude)

    @property
    def deterministic(self) -> np.ndarray:
        """``γ_K · M``: holds for any summation order (``inf`` once ``K·u >= 1``, but 0 where ``M = 0``)."""
        return self._deterministic(self.magnitude)

    @property
    def probabilistic(self) -> np.ndarray:
        """``√K · u · M``: the typical size of an honest error."""
        return self._probabilistic(self.magnitude)

    def allowed(self, slack: float = SLACK) -> np.ndarray:
        """The verdict's allowance: ``min(c·√K·u, γ_K) · M``, never below zero."""
        return self.of(self.magnitude, slack)[2]

    def of(
        self, magnitude: np.ndarray, slack: float = SLACK, out: tuple | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(deterministic, probabilistic, allowed)`` for ``magnitude``, this bound's or a chunk of it:
        the same operations as the properties, element by element; ``out``: three float64 arrays of
        ``magnitude``'s shape to write them into (a chunked comparison reuses its buffers)."""
        into_deterministic, into_probabilistic, into_allowed = (None, None, None) if out is None else out
        deterministic = self._deterministic(magnitude, into_deterministic)
        probabilistic = self._probabilistic(magnitude, into_probabilistic)
        scaled = np.multiply(slack, probabilistic, out=into_allowed)
        return deterministic, probabilistic, np.minimum(scaled, deterministic, out=into_allowed)

    def _deterministic(self, magnitude: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        factor = gamma(self.k, self.dtype)
        if math.isfinite(factor):  # a finite γ times M = 0 is 0 already: one pass
            return np.multiply(factor, magnitude, out=out)
        return np.where(magnitude == 0, 0.0, factor * np.where(magnitude == 0, 1.0, magnitude))

    def _probabilistic(self, magnitude: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.multiply(gamma(self.k, self.dtype, probabilistic=True), magnitude, out=out)

    def describe(self) -> str:
        """The bound :meth:`allowed` applies, as a failure message names it: ``"bound c·√K·u·|x|·|W| with
        c=4, K=768, u=2^-24"``, or the rigorous ``γ_K`` where it is the smaller (``K < c²`` or so).

        >>> Bound(np.ones(1), 1, "float32").describe()
        'bound γ_K·|x|·|W| with K=1, u=2^-24 (γ_K = K·u/(1-K·u), tighter than c·√K·u with c=4 here)'
        """
        exponent = round(math.log2(unit_roundoff(self.dtype)))
        if gamma(self.k, self.dtype) < SLACK * gamma(self.k, self.dtype, probabilistic=True):
            return (
                f"bound γ_K·|x|·|W| with K={self.k}, u=2^{exponent} "
                f"(γ_K = K·u/(1-K·u), tighter than c·√K·u with c={SLACK:g} here)"
            )
        return f"bound c·√K·u·|x|·|W| with c={SLACK:g}, K={self.k}, u=2^{exponent}"
