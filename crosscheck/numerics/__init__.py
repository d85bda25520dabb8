"""Numerics, NumPy only: rounding-error bounds, bit views, and the size-aware comparison.

:mod:`~crosscheck.numerics.bounds` (``γ_K``, ``u``, :class:`Bound`), :mod:`~crosscheck.numerics.bits`
(bits and ULPs), :mod:`~crosscheck.numerics.closeness` (``compare``, ``assert_close``),
:mod:`~crosscheck.numerics.judging` (element by element), :mod:`~crosscheck.numerics.comparison`
(the result and its message).
"""

from crosscheck.numerics.bits import bits_of, is_floating, ulp_distance
from crosscheck.numerics.bounds import SLACK, Bound, dot_bound, gamma, unit_roundoff
from crosscheck.numerics.closeness import assert_close, compare
from crosscheck.numerics.comparison import AssertionMismatch, Comparison

__all__ = [
    "SLACK",
    "AssertionMismatch",
    "Bound",
    "Comparison",
    "assert_close",
    "bits_of",
    "compare",
    "dot_bound",
    "gamma",
    "is_floating",
    "ulp_distance",
    "unit_roundoff",
]
