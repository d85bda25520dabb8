"""Batch sizes as the user writes them (``"1,2,8"``, ``"1-4096"``), kept as ranges until the memory
they need is known — plain Python, so the command line parses them without loading NumPy or JAX.

>>> sizes = BatchSizes.parse("8,1-3")
>>> sizes.largest, sizes.expand()
(8, [1, 2, 3, 8])
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchSizes:
    """Batch sizes as ranges ``(first, last)``, both included."""

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, text: str) -> BatchSizes:
        """``"1,2,8"``, ``"1-4096"`` (every size) or a mix; ValueError naming the part that is not."""
        ranges = []
        for part in (p.strip() for p in text.split(",") if p.strip()):
            low, _, high = part.partition("-")
            if not low.isdigit() or (high and not high.isdigit()):
                raise ValueError(f"batch sizes: {part!r} is not a size or a range like 1-4096")
            first, last = int(low), int(high or low)
            if first < 1 or last < first:
                raise ValueError(f"batch sizes: {part!r} must be positive and increasing")
            ranges.append((first, last))
        if not ranges:
            raise ValueError(f"batch sizes: {text!r} names no size")
        return cls(tuple(ranges))

    @property
    def largest(self) -> int:
        return max(last for _, last in self.ranges)

    def expand(self) -> list[int]:
        """Every size, sorted and unique (expand only once the memory they need is known to fit)."""
        return sorted({size for first, last in self.ranges for size in range(first, last + 1)})


def parse_batch_sizes(text: str) -> list[int]:
    """``"1,2,8"``, ``"1-4096"`` (every size) or a mix, as sorted unique positive sizes.

    >>> parse_batch_sizes("8,1-3")
    [1, 2, 3, 8]
    """
    return BatchSizes.parse(text).expand()
