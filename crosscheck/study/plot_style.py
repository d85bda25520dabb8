"""What the study's plots share: the timed rows of a study, one colour and marker per implementation,
the colour of each framework, and side-by-side offsets so points at one configuration do not stack.

Nothing here imports matplotlib: the functions that need it take ``plt``.

>>> dodge(3, width=0.4)
[-0.2, 0.0, 0.2]
"""

from __future__ import annotations

MARKERS = "osD^vP*Xh<>p"
FRAMEWORK_COLOURS = {"jax": "tab:blue", "torch": "tab:orange"}
FONT_SIZE = 10
"""The type size of legends, labels and direct labels: readable without zooming at the saved DPI."""


def timed(records: list[dict], study: str) -> list[dict]:
    """The rows of ``study`` that were timed (a row that could not be built has no median)."""
    return [r for r in records if r.get("study") == study and "median_s" in r]


def style(index: int, plt) -> dict:
    """The ``index``-th implementation's colour and marker (tab10 first: its colours are distinct)."""
    colours = plt.get_cmap("tab10").colors
    return {"color": colours[index % len(colours)], "marker": MARKERS[index % len(MARKERS)]}


def dodge(count: int, width: float = 0.5) -> list[float]:
    """``count`` offsets spread over ``width`` around 0, one per implementation at a configuration."""
    if count < 2:
        return [0.0]
    step = width / (count - 1)
    return [round(-width / 2 + i * step, 10) for i in range(count)]
