"""Batch-size invariance and run-to-run determinism: is a row's output the same in any batch?

For one forward function, :func:`probe` computes every row of a pool alone (batch 1), then in
batches of each size ``b`` starting at several offsets of the pool (so each row is seen at
several positions), and compares each batched row bitwise with the same row alone. It reports
the batch sizes where any row differs, the fraction of rows bitwise equal, the largest ULP
distance and the largest difference as a multiple of the row's rounding allowance (two honest
roundings of the same value differ by at most twice the allowance, so > 2 means different math,
not rounding). Determinism: the whole pool is run ``repeats`` times and must give the same bits.

>>> rows = np.arange(12.0, dtype=np.float32).reshape(4, 3)
>>> result = probe(lambda x: x * 2, rows, [1, 2, 4])
>>> result.differing_batch_sizes, result.fraction_bitwise_equal, result.deterministic
([], 1.0, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from crosscheck.compare import ulp_distance

DEFAULT_MAX_BATCH = 256
DEFAULT_REPEATS = 5
STARTS = (0, 1, 97)  # offsets into the pool; with wrap-around each row lands at several positions


def default_batch_sizes(max_batch: int = DEFAULT_MAX_BATCH) -> list[int]:
    """1, 2, 3, 4, 7, 8 and the powers of two up to ``max_batch``, then ``max_batch`` itself.

    >>> default_batch_sizes(100)
    [1, 2, 3, 4, 7, 8, 16, 32, 64, 100]
    """
    sizes = [b for b in (1, 2, 3, 4, 7) if b <= max_batch]
    power = 8
    while power <= max_batch:
        sizes.append(power)
        power *= 2
    return sorted({*sizes, max_batch})


def parse_batch_sizes(text: str) -> list[int]:
    """``"1,2,8"``, ``"1-4096"`` (every size) or a mix, as sorted unique positive sizes.

    >>> parse_batch_sizes("8,1-3")
    [1, 2, 3, 8]
    """
    sizes: set[int] = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ValueError(f"batch sizes: {part!r} is not a size or a range like 1-4096")
        first, last = int(low), int(high or low)
        if first < 1 or last < first:
            raise ValueError(f"batch sizes: {part!r} must be positive and increasing")
        sizes.update(range(first, last + 1))
    if not sizes:
        raise ValueError(f"batch sizes: {text!r} names no size")
    return sorted(sizes)


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(f"u{a.dtype.itemsize}").reshape(a.shape[0], -1)


@dataclass
class ProbeResult:
    """What the probe found for one forward function (one module × framework × dtype)."""

    batch_sizes: list[int]
    differing_batch_sizes: list[int]
    rows_compared: int
    rows_bitwise_equal: int
    max_ulp: float
    max_error_over_allowance: float
    repeats: int
    deterministic: bool
    per_batch: list[dict] = field(default_factory=list)

    @property
    def fraction_bitwise_equal(self) -> float:
        return self.rows_bitwise_equal / max(self.rows_compared, 1)

    @property
    def invariant(self) -> bool:
        return not self.differing_batch_sizes

    def as_dict(self) -> dict:
        return asdict(self) | {"fraction_bitwise_equal": self.fraction_bitwise_equal}


def probe(
    forward: Callable[[np.ndarray], np.ndarray],
    pool: np.ndarray,
    batch_sizes: Sequence[int],
    *,
    allowance: np.ndarray | None = None,
    repeats: int = DEFAULT_REPEATS,
    starts: Sequence[int] = STARTS,
) -> ProbeResult:
    """Compare ``forward`` on batches of every size with ``forward`` on each row alone.

    ``forward`` maps ``(b, *row)`` to ``(b, *out_row)``; ``allowance`` (the output's shape for the
    whole pool, float64) is each element's rounding allowance; without it the ratio is not computed.

    Shape:
        pool ``(rows, *row)`` with ``rows >= max(batch_sizes)``; allowance ``(rows, *out_row)``.
    """
    rows = pool.shape[0]
    if max(batch_sizes) > rows:
        raise ValueError(f"probe: the pool has {rows} rows, fewer than the batch size {max(batch_sizes)}")
    alone = np.concatenate([np.asarray(forward(pool[i : i + 1])) for i in range(rows)])
    alone_bits = _bits(alone)
    differing, per_batch = [], []
    compared = equal = 0
    worst_ulp = worst_ratio = 0.0
    for b in batch_sizes:
        batch_differing = batch_ulp = 0.0
        for start in dict.fromkeys(s % rows for s in starts):
            index = (start + np.arange(b)) % rows
            out = np.asarray(forward(pool[index]))
            same = (_bits(out) == alone_bits[index]).all(axis=1)
            compared += b
            equal += int(same.sum())
            batch_differing += int((~same).sum())
            if not same.all():
                batch_ulp = max(batch_ulp, float(np.max(ulp_distance(out, alone[index]))))
                if allowance is not None:
                    gap = np.abs(out.astype(np.float64) - alone[index].astype(np.float64))
                    limit = allowance[index]
                    with np.errstate(divide="ignore", invalid="ignore"):  # a gap over a zero allowance: inf
                        ratio = np.where(gap == 0, 0.0, gap / np.where(limit > 0, limit, 0.0))
                    worst_ratio = max(worst_ratio, float(np.nanmax(np.where(np.isnan(ratio), np.inf, ratio))))
        if batch_differing:
            differing.append(int(b))
        worst_ulp = max(worst_ulp, batch_ulp)
        per_batch.append({"batch_size": int(b), "rows_differing": int(batch_differing), "max_ulp": batch_ulp})
    largest = pool[: max(batch_sizes)]
    first = _bits(np.asarray(forward(largest)))
    again = (_bits(np.asarray(forward(largest))) for _ in range(repeats - 1))
    deterministic = all(np.array_equal(first, bits) for bits in again)
    return ProbeResult(
        batch_sizes=[int(b) for b in batch_sizes],
        differing_batch_sizes=differing,
        rows_compared=compared,
        rows_bitwise_equal=equal,
        max_ulp=worst_ulp,
        max_error_over_allowance=worst_ratio,
        repeats=repeats,
        deterministic=deterministic,
        per_batch=per_batch,
    )
