"""Distances between training runs, and the per-step verdict on two frameworks' trajectories.

Each parameter tensor (a torch ``state_dict`` key) is judged on its own, by the L2 norm of its
difference, in float64. For two runs ``a`` and ``b`` in the working dtype, and ``a64``, ``b64`` the
same runs in float64 from the same weights:

- **rounding tier**: ``|a - b| <= c·max(|a - a64|, |b - b64|) + n·u·|a64|``. By the triangle
  inequality ``|a - b| <= |a - a64| + |a64 - b64| + |b64 - b|``, so with ``c = 2`` two runs whose
  float64 versions agree can only fail by more than the floor: what fails is different math, however
  chaotically the rounding both make grows;
- **same-function tier**: ``|a64 - b64| <= C·(u64/u)·max(|a - a64|, |b - b64|) + n·u64·|a64|``: in
  float64 the same computation rounds ``u/u64`` (5·10^8 for float32) times less, so what remains is
  different math even where the working dtype's rounding would hide it.

A step passes when every tensor passes both tiers.

>>> t = np.linspace(1.0, 2.0, 5)[None, :] * np.ones((3, 1))
>>> wobble = np.array([0.0, 1e-7, 2e-7])[:, None]
>>> a, b = run_like(t + wobble), run_like(t - wobble)
>>> diverge(a, b, run_like(t), run_like(t), "float32").passed.tolist()
[True, True, True]
>>> off = t * (1 + np.array([0.0, 1e-3, 1e-3])[:, None])  # different math from step 1 on
>>> diverge(run_like(t), run_like(off), run_like(t), run_like(off), "float32").first_failure
1
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crosscheck.numerics import unit_roundoff

FACTOR = 2.0
"""``c``: the triangle inequality's factor; see the module docstring and docs/training.md."""

FLOOR_ULPS = 1.0
"""``n``: the floor, in ulps of the tensor's float64 norm."""

SAME_FUNCTION_FACTOR = 64.0
"""``C``: the float64 disagreement allowed, in units of the working-dtype distance scaled by ``u64/u``."""


def rule_record(dtype: str) -> dict:
    """The rule as every report records it."""
    return {
        "distance": "L2 norm of the difference, per parameter tensor (torch state_dict key), in float64",
        "rounding_tier": f"|a-b| <= c*max(|a-a64|, |b-b64|) + n*u*|a64|, c={FACTOR:g}, n={FLOOR_ULPS:g}, "
        f"u={unit_roundoff(dtype):.3g} ({dtype})",
        "same_function_tier": f"|a64-b64| <= C*(u64/u)*max(|a-a64|, |b-b64|) + n*u64*|a64|, "
        f"C={SAME_FUNCTION_FACTOR:g}",
        "step_passes": "every tensor passes both tiers",
        "c": FACTOR,
        "n": FLOOR_ULPS,
        "C": SAME_FUNCTION_FACTOR,
    }


@dataclass
class Divergence:
    """Per recorded step and parameter tensor: the distances, the allowances, the verdicts.

    Shape:
        ``steps (records,)``; every other array ``(records, tensors)`` in the order of ``keys``,
        but ``passed`` and the ratios, ``(records,)``.
    """

    keys: list[str]
    steps: np.ndarray
    cross: np.ndarray
    own_a: np.ndarray
    own_b: np.ndarray
    float64: np.ndarray
    scale: np.ndarray
    floor: np.ndarray
    allowance: np.ndarray
    float64_allowance: np.ndarray

    @property
    def ratio(self) -> np.ndarray:
        """The rounding tier's worst tensor at each step: distance over allowance (passes at <= 1)."""
        return _worst(self.cross, self.allowance)

    @property
    def float64_ratio(self) -> np.ndarray:
        """The same-function tier's worst tensor at each step (passes at <= 1)."""
        return _worst(self.float64, self.float64_allowance)

    @property
    def passed(self) -> np.ndarray:
        return (self.ratio <= 1) & (self.float64_ratio <= 1)

    @property
    def first_failure(self) -> int | None:
        """The first recorded step that fails, or ``None``."""
        failed = np.flatnonzero(~self.passed)
        return int(self.steps[failed[0]]) if failed.size else None

    def worst_key(self, index: int) -> str:
        """The tensor that fails (or comes closest to failing) at record ``index``."""
        both = np.maximum(
            _ratios(self.cross, self.allowance)[index], _ratios(self.float64, self.float64_allowance)[index]
        )
        return self.keys[int(np.argmax(both))]

    def totals(self) -> dict[str, np.ndarray]:
        """All tensors together (L2 over every parameter), for plots: ``(records,)`` each."""
        total = lambda a: np.sqrt(np.sum(np.square(a), axis=1))  # noqa: E731
        return {
            "cross": total(self.cross),
            "own_a": total(self.own_a),
            "own_b": total(self.own_b),
            "float64": total(self.float64),
            "allowance": FACTOR * np.maximum(total(self.own_a), total(self.own_b)) + total(self.floor),
        }


def _ratios(distance: np.ndarray, allowance: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(distance > 0, distance / allowance, 0.0)
    return np.where(np.isnan(ratio), np.inf, ratio)


def _worst(distance: np.ndarray, allowance: np.ndarray) -> np.ndarray:
    return _ratios(distance, allowance).max(axis=1)


def distances(a: dict[str, np.ndarray], b: dict[str, np.ndarray], keys: list[str]) -> np.ndarray:
    """The L2 norm of ``a[key] - b[key]`` at each record, in float64; a non-finite value gives an
    infinite distance (never a pass).

    Shape:
        ``a[key]``, ``b[key]`` ``(records, ...)`` -> ``(records, len(keys))``.
    """
    columns = []
    for key in keys:
        difference = np.asarray(a[key], np.float64) - np.asarray(b[key], np.float64)
        norm = np.sqrt(np.sum(np.square(difference.reshape(len(difference), -1)), axis=1))
        columns.append(np.where(np.isfinite(norm), norm, np.inf))
    return np.stack(columns, axis=1)


def diverge(a, b, a64, b64, dtype: str) -> Divergence:
    """The verdict on runs ``a`` and ``b`` (working ``dtype``), with their float64 runs ``a64``, ``b64``.

    Each argument has ``.steps`` and ``.params`` (:class:`~crosscheck.training.runs.Run`).

    Shape:
        each run's ``params[key] (records, ...)``, the same keys and records in all four.

    Raises:
        ValueError: the four runs did not record the same steps or the same tensors.
    """
    runs = (a, b, a64, b64)
    keys = list(a.params)
    if any(list(r.params) != keys or not np.array_equal(r.steps, a.steps) for r in runs):
        raise ValueError(
            "diverge: the four runs must record the same parameter tensors at the same steps; got "
            + "; ".join(f"{list(r.params)} at {len(r.steps)} steps" for r in runs)
        )
    zero = {key: np.zeros_like(value, np.float64) for key, value in a64.params.items()}
    cross, own_a = distances(a.params, b.params, keys), distances(a.params, a64.params, keys)
    own_b = distances(b.params, b64.params, keys)
    float64, scale = distances(a64.params, b64.params, keys), distances(a64.params, zero, keys)
    u, u64 = unit_roundoff(dtype), unit_roundoff("float64")
    own = np.maximum(own_a, own_b)
    floor = FLOOR_ULPS * u * scale
    float64_allowance = SAME_FUNCTION_FACTOR * (u64 / u) * own + FLOOR_ULPS * u64 * scale
    return Divergence(
        keys, a.steps, cross, own_a, own_b, float64, scale, floor, FACTOR * own + floor, float64_allowance
    )


@dataclass
class _Params:
    steps: np.ndarray
    params: dict[str, np.ndarray]


def run_like(values) -> _Params:
    """A stand-in for a run recorded at steps 0, 1, …: one tensor ``"weight"``, or a dict of them
    (for examples and tests).

    Shape:
        each array ``(records, ...)``.
    """
    params = {key: np.asarray(v) for key, v in values.items()} if isinstance(values, dict) else None
    params = params or {"weight": np.asarray(values)}
    return _Params(np.arange(len(next(iter(params.values())))), params)
