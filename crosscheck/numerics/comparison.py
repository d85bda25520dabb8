"""What a comparison found: the metrics, the verdict, the worst element, and the torch-style message.

>>> result = Comparison(False, {}, (2,), "float32", 1, (1,), 0.5, 1e-3, "given bound")
>>> print(result.message("outputs", "['output']"))
outputs are not close (float32)
Mismatched elements: 1 / 2 (50.0%)
Greatest absolute difference: 5.0e-01 at index (1,) (up to 1.0e-03 allowed; given bound)
The failure occurred for item ['output']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


class Worst(NamedTuple):
    """The element that is furthest beyond its allowance."""

    ratio: float
    error: float
    index: tuple[int, ...]
    allowed: float


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
    nonfinite: tuple[str, ...] = ()  # e.g. "actual has 2 NaN, first at index (0, 7)"
    details: tuple[str, ...] = ()  # a whole-tensor rule says what it measured instead of counting elements

    def message(self, what: str, item: str = "", header: str = "") -> str:
        """The torch-style failure text, with the non-finite values, the item path and the bound."""
        total = max(int(np.prod(self.shape)), 1)
        title = f"{what} are not close ({self.dtype})"
        lines = [f"{header}: {title}" if header else title]
        if not self.details:
            lines.append(
                f"Mismatched elements: {self.mismatched} / {total} ({100 * self.mismatched / total:.1f}%)"
            )
        lines += [f"Non-finite values: {note}" for note in self.nonfinite]
        lines += list(self.details) or [
            f"Greatest absolute difference: {self.worst_error:.1e} at index {self.worst_index} "
            f"(up to {self.worst_allowed:.1e} allowed; {self.bound_text})"
        ]
        if item:
            lines.append(f"The failure occurred for item {item}")
        return "\n".join(lines)


class AssertionMismatch(AssertionError):
    """Raised by :func:`assert_close`; carries the :class:`Comparison`."""

    __module__ = "crosscheck"

    def __init__(self, message: str, comparison: Comparison):
        super().__init__(message)
        self.comparison = comparison
