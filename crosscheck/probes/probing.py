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

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from crosscheck.numerics import bits_of, ulp_distance
from crosscheck.probes.batch_sizes import BatchSizes, parse_batch_sizes  # noqa: F401 (part of this API)
from crosscheck.runtime.choices import DEFAULT_MAX_BATCH, DEFAULT_REPEATS

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


def available_memory() -> int:
    """Bytes this machine can still give a process (``MemAvailable``; all physical memory elsewhere)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def pool_bytes(rows: int, row_elements: int, out_elements: int, itemsize: int) -> int:
    """Memory the probe holds for a pool of ``rows``: the pool, a batch, the rows alone and batched,
    and the float64 allowance and gaps of the outputs."""
    return rows * (2 * row_elements * itemsize + out_elements * (3 * itemsize + 2 * 8))


def max_pool_rows(row_elements: int, out_elements: int, itemsize: int, memory: int | None = None) -> int:
    """The largest pool that fits in half of the available ``memory``."""
    memory = available_memory() if memory is None else memory
    return max(1, (memory // 2) // pool_bytes(1, row_elements, out_elements, itemsize))


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


def _row_bits(a: np.ndarray) -> np.ndarray:
    return bits_of(a).reshape(a.shape[0], -1)


def _allowance_ratio(out: np.ndarray, alone: np.ndarray, allowance: np.ndarray) -> float:
    """Largest ``|batched - alone| / allowance``; a gap over a zero allowance is ``inf``."""
    gap = np.abs(out.astype(np.float64) - alone.astype(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(gap == 0, 0.0, gap / np.where(allowance > 0, allowance, 0.0))
    return float(np.max(np.where(np.isnan(ratio), np.inf, ratio), initial=0.0))


@dataclass
class _Tally:
    compared: int = 0
    equal: int = 0
    worst_ulp: float = 0.0
    worst_ratio: float = 0.0


def _probe_size(forward, pool, alone, allowance, b: int, starts, tally: _Tally) -> dict:
    """Batches of size ``b`` at every start offset, compared with the rows alone; one per-batch record."""
    rows = pool.shape[0]
    differing, ulp = 0, 0.0
    for start in dict.fromkeys(s % rows for s in starts):
        index = (start + np.arange(b)) % rows
        out = np.asarray(forward(pool[index]))
        same = (_row_bits(out) == _row_bits(alone[index])).all(axis=1)
        tally.compared += b
        tally.equal += int(same.sum())
        differing += int((~same).sum())
        if not same.all():
            ulp = max(ulp, float(np.max(ulp_distance(out, alone[index]))))
            if allowance is not None:
                tally.worst_ratio = max(
                    tally.worst_ratio, _allowance_ratio(out, alone[index], allowance[index])
                )
    tally.worst_ulp = max(tally.worst_ulp, ulp)
    return {"batch_size": int(b), "rows_differing": differing, "max_ulp": ulp}


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

    Raises:
        ValueError: the pool has fewer rows than the largest batch.
    """
    rows = pool.shape[0]
    if max(batch_sizes) > rows:
        raise ValueError(f"probe: the pool has {rows} rows, fewer than the batch size {max(batch_sizes)}")
    alone = np.concatenate([np.asarray(forward(pool[i : i + 1])) for i in range(rows)])
    tally = _Tally()
    per_batch = [_probe_size(forward, pool, alone, allowance, b, starts, tally) for b in batch_sizes]
    largest = pool[: max(batch_sizes)]
    first = _row_bits(np.asarray(forward(largest)))
    deterministic = all(
        np.array_equal(first, _row_bits(np.asarray(forward(largest)))) for _ in range(repeats - 1)
    )
    return ProbeResult(
        batch_sizes=[int(b) for b in batch_sizes],
        differing_batch_sizes=[r["batch_size"] for r in per_batch if r["rows_differing"]],
        rows_compared=tally.compared,
        rows_bitwise_equal=tally.equal,
        max_ulp=tally.worst_ulp,
        max_error_over_allowance=tally.worst_ratio,
        repeats=repeats,
        deterministic=deterministic,
        per_batch=per_batch,
    )
