"""Progress of a long ``locate``: layers done of total, elapsed, estimate — on standard error when it is
a terminal, nothing otherwise (a log or CI stays clean), or reported to a callable of the caller's.

>>> seen = []
>>> with layer_progress(3, "locate", lambda done, total: seen.append((done, total))) as advance:
...     for _ in range(3):
...         advance()
>>> seen
[(0, 3), (1, 3), (2, 3), (3, 3)]
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Report = bool | Callable[[int, int], None] | None


@contextlib.contextmanager
def layer_progress(total: int, what: str, report: Report = None):
    """Yields ``advance()``, called once per layer done. ``report``: ``None`` a bar when standard error
    is a terminal, ``False`` nothing, ``True`` a bar always, or ``report(done, total)``."""
    if callable(report):
        done = [0]
        report(0, total)

        def advance() -> None:
            done[0] += 1
            report(done[0], total)

        yield advance
        return
    if report is False or (report is None and not sys.stderr.isatty()):
        yield lambda: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda: bar.advance(task)
