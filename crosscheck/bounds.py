"""Rounding-error bounds for sums and dot products (Higham, *Accuracy and Stability*, §3.1).

A length-K dot product computed in precision u satisfies
``|fl(x·w) - x·w| <= γ_K · Σ|x_i||w_i|`` with ``γ_K = K·u / (1 - K·u)`` whatever the order of
the additions; under the usual random-rounding model the error grows like ``√K·u`` instead.
Bounds are evaluated in float64 from ``|x|`` and ``|W|`` so they are exact to many digits.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np


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
