"""Metrics, size-aware verdicts and the mismatch message.

A verdict never uses one fixed tolerance. Each element gets its own allowance from its
rounding-error bound (:mod:`crosscheck.bounds`): ``c · √K · u · M`` where ``M`` is the element's
magnitude ``Σ|x||w|`` evaluated in float64, ``K`` the reduction length and ``u`` the unit
roundoff of the dtype, capped by the rigorous ``γ_K · M``. ``c = 4`` (:data:`SLACK`): under the
random-rounding model an honest sum's error has a spread of at most about ``√K·u·M/3`` (the
worst case, sequential summation of same-sign terms), so ``4·√K·u·M`` sits beyond 10 spreads —
no false alarm in the sweep from K=8 to 65,536 — while errors of different math (a wrong
weight, a lost bias, bfloat16 inside a float32 layer at K ≥ 8... see the tests) land far above it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import ml_dtypes
import numpy as np

from crosscheck.bounds import gamma, unit_roundoff

SLACK = 4.0
"""c: allowed error as a multiple of the probabilistic bound ``√K·u·M``."""


@dataclass(frozen=True)
class Bound:
    """The rounding-error bound of one tensor: magnitude ``M`` per element, reduction length ``K``.

    Shape:
        magnitude: the tensor's shape (float64, ``Σ|x||w|`` per element); ``k`` a positive int.

    >>> b = Bound(np.array([1.0, 2.0]), k=16, dtype="float32")
    >>> float(b.probabilistic[1] / 2.0**-24)
    8.0
    """

    magnitude: np.ndarray
    k: int
    dtype: str

    @property
    def deterministic(self) -> np.ndarray:
        """``γ_K · M``: holds for any summation order (``inf`` once ``K·u >= 1``, but 0 where ``M = 0``)."""
        magnitude = np.asarray(self.magnitude, np.float64)
        return np.where(
            magnitude == 0, 0.0, gamma(self.k, self.dtype) * np.where(magnitude == 0, 1.0, magnitude)
        )

    @property
    def probabilistic(self) -> np.ndarray:
        """``√K · u · M``: the typical size of an honest error."""
        return gamma(self.k, self.dtype, probabilistic=True) * np.asarray(self.magnitude, np.float64)

    def allowed(self, slack: float = SLACK) -> np.ndarray:
        """The verdict's allowance: ``min(c·√K·u, γ_K) · M``, never below zero."""
        return np.minimum(slack * self.probabilistic, self.deterministic)

    def describe(self) -> str:
        exponent = round(math.log2(unit_roundoff(self.dtype)))
        return f"bound c·√K·u·|x|·|W| with c={SLACK:g}, K={self.k}, u=2^{exponent}"


def _as_float64(a) -> np.ndarray:
    return np.asarray(a).astype(np.float64)


def ulp_distance(a, b) -> np.ndarray:
    """Number of representable values of ``a``'s dtype between ``a`` and ``b`` (as float64 counts).

    Both are rounded to ``a``'s floating dtype first; NaN anywhere gives ``inf``.

    >>> int(ulp_distance(np.float32(1.0), np.nextafter(np.float32(1.0), np.float32(2.0))))
    1
    """
    a = np.asarray(a)
    dtype = a.dtype if a.dtype.kind == "f" or a.dtype == ml_dtypes.bfloat16 else np.dtype(np.float64)
    bits = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}[dtype.itemsize]
    ia = np.asarray(a, dtype).view(bits).astype(np.float64)
    ib = np.asarray(b).astype(dtype).view(bits).astype(np.float64)
    # Map sign-magnitude to a monotone integer line so -0.0 and +0.0 are 0 apart.
    top = float(2 ** (8 * dtype.itemsize - 1))
    ia = np.where(ia < 0, -top - ia, ia)
    ib = np.where(ib < 0, -top - ib, ib)
    distance = np.abs(ia - ib)
    nan = np.isnan(_as_float64(a)) | np.isnan(np.asarray(b).astype(np.float64))
    return np.where(nan, np.inf, distance)


@dataclass
class Comparison:
    """Metrics of ``actual`` against ``expected`` (and each against ``reference``) and the verdict."""

    passed: bool
    metrics: dict[str, float]
    shape: tuple[int, ...]
    dtype: str
    mismatched: int
    worst_index: tuple[int, ...]
    worst_error: float
    worst_allowed: float
    bound_text: str
    extra: dict[str, float] = field(default_factory=dict)

    def message(self, what: str, item: str = "", header: str = "") -> str:
        """The torch-style failure text, with the item path and the bound."""
        total = max(int(np.prod(self.shape)), 1)
        lines = [
            f"{header}: {what} are not close ({self.dtype})"
            if header
            else f"{what} are not close ({self.dtype})"
        ]
        lines.append(
            f"Mismatched elements: {self.mismatched} / {total} ({100 * self.mismatched / total:.1f}%)"
        )
        lines.append(
            f"Greatest absolute difference: {self.worst_error:.1e} at index {self.worst_index} "
            f"(up to {self.worst_allowed:.1e} allowed; {self.bound_text})"
        )
        if item:
            lines.append(f"The failure occurred for item {item}")
        return "\n".join(lines)


def _finite_mismatch(actual: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Where one side is NaN/Inf and the other is not the same non-finite value."""
    finite = np.isfinite(actual) & np.isfinite(reference)
    if finite.all():
        return ~finite
    same_nonfinite = (np.isnan(actual) & np.isnan(reference)) | (
        np.isinf(actual) & np.isinf(reference) & (np.sign(actual) == np.sign(reference))
    )
    return ~finite & ~same_nonfinite


def _default_allowed(expected: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """torch.testing.assert_close's default tolerances, for comparisons without a bound."""
    rtol, atol = {2: (1e-3, 1e-5), 4: (1.3e-6, 1e-5), 8: (1e-7, 1e-7)}.get(dtype.itemsize, (1.3e-6, 1e-5))
    if dtype == ml_dtypes.bfloat16:
        rtol = 1.6e-2
    return atol + rtol * np.abs(expected)


def compare(
    actual, expected, *, reference=None, bound: Bound | np.ndarray | float | None = None
) -> Comparison:
    """Compare ``actual`` with ``expected``; with a ``reference`` (float64 truth), judge each against it.

    - ``reference=None``: passes when ``|actual - expected| <= allowed`` element by element, where
      ``allowed`` is ``bound.allowed()`` doubled (both sides round) for a :class:`Bound`, the given
      array or number, or torch.testing's default rtol/atol for the dtype when ``bound=None``.
    - with ``reference``: passes when both ``|actual - reference|`` and ``|expected - reference|``
      are within ``allowed`` (each framework against the truth); ``cross_bound_ratio`` reports
      ``|actual - expected|`` as a fraction of both sides' allowance.
    NaN or Inf where the other side (or the reference) is finite never passes.

    Shape:
        ``actual``, ``expected``, ``reference`` and array bounds share one shape.

    >>> r = compare(np.float32([1, 2]), np.float32([1, 2.0000002]), bound=Bound(np.ones(2), 4, "float32"))
    >>> r.passed, r.metrics["max_ulp"]
    (True, 1.0)
    """
    raw_actual, raw_expected = np.asarray(actual), np.asarray(expected)
    if raw_actual.shape != raw_expected.shape:
        raise ValueError(
            f"compare: actual has shape {raw_actual.shape}, expected {raw_expected.shape}; they must match."
        )
    a, e = _as_float64(raw_actual), _as_float64(raw_expected)
    deterministic = probabilistic = None
    if isinstance(bound, Bound):
        deterministic, probabilistic = bound.deterministic, bound.probabilistic
        allowed = np.minimum(SLACK * probabilistic, deterministic) * (1 if reference is not None else 2)
        bound_text = bound.describe()
    elif bound is None:
        allowed = _default_allowed(e, raw_expected.dtype)
        bound_text = "torch.testing default rtol/atol"
    else:
        allowed = np.asarray(bound, np.float64)
        bound_text = "given bound"
    allowed = np.broadcast_to(allowed, a.shape)
    ulp = ulp_distance(raw_actual, raw_expected)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.abs(a - e)  # inf - inf is NaN here; such elements are judged by _finite_mismatch
        metrics = {
            "max_abs": _nanmax(diff),
            "max_rel": _nanmax(diff / np.where(e == 0, 1.0, np.abs(e))),
            "max_ulp": float(np.max(ulp, initial=0.0)),
            "median_ulp": float(np.median(ulp)) if a.size else 0.0,
            "bitwise_equal": float(np.mean(_bits(raw_actual) == _bits(raw_expected))) if a.size else 1.0,
        }
    judged = [(a, "actual")] if reference is None else [(a, "actual"), (e, "expected")]
    target = e if reference is None else _as_float64(reference)
    if reference is not None:
        metrics["cross_bound_ratio"] = _ratio(diff, 2 * allowed, _finite_mismatch(a, e))
    bad = np.zeros(a.shape, bool)
    worst = (-1.0, 0.0, (), 0.0)  # ratio, error, index, allowed
    for values, label in judged:
        with np.errstate(invalid="ignore"):
            error = diff if reference is None else np.abs(values - target)
        nonfinite = _finite_mismatch(values, target)
        ratio = _ratio_array(error, allowed, nonfinite)
        bad |= ratio > 1
        metrics[f"{label}_max_error"] = float(np.max(np.where(nonfinite, np.inf, error), initial=0.0))
        metrics[f"{label}_bound_ratio"] = float(np.max(ratio, initial=0.0))
        if deterministic is not None:
            metrics[f"{label}_det_ratio"] = _ratio(error, deterministic, nonfinite)
            metrics[f"{label}_prob_ratio"] = _ratio(error, probabilistic, nonfinite)
        if ratio.size and metrics[f"{label}_bound_ratio"] > worst[0]:
            index = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
            shown = np.inf if nonfinite[index] else float(error[index])
            worst = (float(ratio[index]), shown, tuple(int(i) for i in index), float(allowed[index]))
    return Comparison(
        passed=not bool(bad.any()),
        metrics=metrics,
        shape=a.shape,
        dtype=str(raw_actual.dtype),
        mismatched=int(bad.sum()),
        worst_index=worst[2],
        worst_error=worst[1],
        worst_allowed=worst[3],
        bound_text=bound_text,
    )


def _ratio_array(error: np.ndarray, allowed: np.ndarray, nonfinite: np.ndarray) -> np.ndarray:
    """``error / allowed`` with 0/0 = 0, x/0 = inf, and inf wherever the values are not both finite."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = error / allowed
    ratio[error == 0] = 0.0
    ratio[nonfinite] = np.inf
    return ratio


def _bits(a: np.ndarray) -> np.ndarray:
    bits = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    return np.ascontiguousarray(a).view(bits)


def _nanmax(a: np.ndarray) -> float:
    if a.size == 0:
        return 0.0
    return float("nan") if np.isnan(a).any() else float(np.max(a))


def _ratio(error: np.ndarray, bound: np.ndarray, nonfinite: np.ndarray) -> float:
    return float(np.max(_ratio_array(error, np.broadcast_to(bound, error.shape), nonfinite), initial=0.0))


class AssertionMismatch(AssertionError):
    """Raised by :func:`assert_close`; carries the :class:`Comparison`."""

    def __init__(self, message: str, comparison: Comparison):
        super().__init__(message)
        self.comparison = comparison


def assert_close(
    actual, expected, *, reference=None, bound=None, what: str = "outputs", item: str = "", header: str = ""
) -> Comparison:
    """:func:`compare`, raising ``AssertionError`` with the torch-style message when it fails.

    >>> assert_close(np.float32([1.0]), np.float32([1.5]), bound=1e-3, item="['output']")
    Traceback (most recent call last):
    ...
    crosscheck.compare.AssertionMismatch: outputs are not close (float32)
    Mismatched elements: 1 / 1 (100.0%)
    Greatest absolute difference: 5.0e-01 at index (0,) (up to 1.0e-03 allowed; given bound)
    The failure occurred for item ['output']
    """
    result = compare(actual, expected, reference=reference, bound=bound)
    if not result.passed:
        raise AssertionMismatch(result.message(what, item, header), result)
    return result
