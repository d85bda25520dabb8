"""``study-roofline.png``: GFLOP/s against arithmetic intensity under the roofs measured in the same run,
one panel per study (each with its own short legend), the other studies' rows in grey for context.

>>> ROOFLINE_STUDIES[0]
'bandwidth'
"""

from __future__ import annotations

import math

import numpy as np

from crosscheck.study import names
from crosscheck.study.plot_style import FONT_SIZE, style, timed

ROOFLINE_STUDIES = (names.BANDWIDTH, names.POOLED, names.LINEAR_ROWS, names.BLOCK)
CONTEXT_GREY = "#c8c8c8"
ROOF_STYLES = {"memory": {"color": "black", "lw": 2}, "cache": {"color": "dimgrey", "lw": 1.5, "ls": "--"}}


def _rows(records: list[dict]) -> dict[str, list[dict]]:
    """The rows with a byte count and a rate, per study (studies with none left out)."""
    found = {
        study: [r for r in timed(records, study) if r.get("bytes") and r.get("gflops")]
        for study in ROOFLINE_STUDIES
    }
    return {study: rows for study, rows in found.items() if rows}


def _intensity(row: dict) -> float:
    return row["flops"] / row["bytes"]


def _roofs(axis, x: np.ndarray, peak: float, memory: float, cache: float | None) -> None:
    axis.plot(x, np.minimum(peak, x * memory) / 1e9, **ROOF_STYLES["memory"])
    if cache:
        axis.plot(x, np.minimum(peak, x * cache) / 1e9, **ROOF_STYLES["cache"])


def _key(figure, cache: float | None, plt) -> None:
    """One legend for what every panel shares: the roofs and the grey rows of the other studies."""
    handles = [plt.Line2D([], [], **ROOF_STYLES["memory"], label="roof: main memory, GEMM peak")]
    if cache:
        handles.append(plt.Line2D([], [], **ROOF_STYLES["cache"], label="roof: last-level cache"))
    handles.append(
        plt.Line2D([], [], ls="none", marker="o", color=CONTEXT_GREY, label="the other studies' rows")
    )
    figure.legend(
        handles=handles, loc="outside lower center", ncols=len(handles), fontsize=FONT_SIZE, frameon=False
    )


def _panel(axis, study: str, rows: list[dict], others: list[dict], plt) -> None:
    """One study's rows, coloured per implementation, over the other studies' rows in grey."""
    axis.scatter(
        [_intensity(r) for r in others],
        [r["gflops"] for r in others],
        s=14,
        color=CONTEXT_GREY,
    )
    for index, impl in enumerate(dict.fromkeys(r["impl"] for r in rows)):
        mine = [r for r in rows if r["impl"] == impl]
        points = ([_intensity(r) for r in mine], [r["gflops"] for r in mine])
        axis.scatter(
            *points, s=48, alpha=0.85, edgecolors="white", linewidths=0.5, label=impl, **style(index, plt)
        )
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_title(study, fontsize=FONT_SIZE + 2)
    axis.set_xlabel("arithmetic intensity (FLOPs per byte it must move)", fontsize=FONT_SIZE)
    axis.set_ylabel("GFLOP/s (median)", fontsize=FONT_SIZE)
    axis.grid(alpha=0.3, which="major")
    axis.legend(fontsize=FONT_SIZE - 1, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)


def roofline_plot(path: str, records: list[dict], limits: dict, plt) -> bool:
    """The roofline figure at ``path``; ``False`` (nothing drawn) without rows or limits."""
    by_study = _rows(records)
    peak, memory, cache = (limits.get(k) for k in ("flops_per_s", "memory_bytes_per_s", "cache_bytes_per_s"))
    if not by_study or not peak or not memory:
        return False
    every = [r for rows in by_study.values() for r in rows]
    intensity = np.array([_intensity(r) for r in every])
    x = np.logspace(np.log10(intensity.min() / 2), np.log10(max(intensity.max() * 2, 2 * peak / memory)), 200)
    rates = [r["gflops"] for r in every]
    y_limits = (min(rates) / 2, max(rates + [peak / 1e9]) * 2)
    columns = min(2, len(by_study))
    rows_of_panels = math.ceil(len(by_study) / columns)
    figure, axes = plt.subplots(
        rows_of_panels,
        columns,
        figsize=(7.5 * columns, 6.4 * rows_of_panels),
        squeeze=False,
        layout="constrained",
    )
    for axis, (study, rows) in zip(axes.flat, by_study.items(), strict=False):
        _roofs(axis, x, peak, memory, cache)
        _panel(axis, study, rows, [r for r in every if r["study"] != study], plt)
        axis.set_ylim(*y_limits)
    for axis in axes.flat[len(by_study) :]:
        axis.set_visible(False)
    _key(figure, cache, plt)
    figure.suptitle(
        "Roofline of this run: each study under the compute peak and bandwidths it measured", fontsize=13
    )
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
