"""The study's pictures: a heatmap for the per-head question (here), a roofline for the memory-bound
studies (:mod:`.plot_roofline`), and one chart per remaining study (:mod:`.plot_chart`).

matplotlib is the ``plot`` extra: :func:`draw` imports it when it runs.

>>> ratio_ticks(0.51, 1.14)
[0.51, 0.6, 0.7, 0.8, 0.9, 1, 1.14]
"""

from __future__ import annotations

import os

import numpy as np

from crosscheck.study import names
from crosscheck.study.plot_chart import study_chart
from crosscheck.study.plot_roofline import roofline_plot
from crosscheck.study.plot_style import FONT_SIZE, timed

ROUND_RATIOS = (
    0.1,
    0.2,
    0.25,
    0.33,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.9,
    1,
    1.1,
    1.25,
    1.5,
    1.75,
    2,
    2.5,
    3,
    4,
    5,
    8,
    10,
)


def _pyplot():
    import matplotlib  # the plot extra: imported only when plots are drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def default_over_best_torch(rows: list[dict]) -> dict[tuple[int, int], float]:
    """``{(heads, size): jaxlin default / fastest correct torch}`` at one row count.

    >>> rows = [
    ...     {"heads": 4, "size": 32, "impl": names.JAXLIN_AUTO, "framework": "jax", "median_s": 2.0},
    ...     {"heads": 4, "size": 32, "impl": names.TORCH_REF_BMM, "framework": "torch", "median_s": 4.0},
    ... ]
    >>> default_over_best_torch(rows)
    {(4, 32): 0.5}
    """
    ratios = {}
    for key in sorted({(r["heads"], r["size"]) for r in rows}):
        at = [r for r in rows if (r["heads"], r["size"]) == key]
        ours = [r["median_s"] for r in at if r["impl"] == names.JAXLIN_AUTO]
        torch = [
            r["median_s"]
            for r in at
            if r["framework"] == "torch" and "heads-first" not in r["impl"] and r.get("equal", True)
        ]
        if ours and torch:
            ratios[key] = ours[0] / min(torch)
    return ratios


def ratio_ticks(low: float, high: float, most: int = 9) -> list[float]:
    """Colour-bar ticks from the lowest ratio to the highest: both (to two decimals), and the round
    ratios between them (1 among them) that keep a readable distance from every other tick."""
    low, high = round(low, 2), round(high, 2)
    if high <= low:
        return [low]
    gap = (np.log2(high) - np.log2(low)) / (most + 1)
    ticks = [low, high]
    for candidate in ROUND_RATIOS:
        if low < candidate < high and all(abs(np.log2(candidate / t)) >= gap for t in ticks):
            ticks.append(candidate)
    return sorted(ticks)


def _grid(ratios: dict[tuple[int, int], float]) -> tuple[list[int], list[int], np.ndarray]:
    """Heads, sizes and the ratios as a heads × sizes array (NaN where not measured)."""
    heads = sorted({h for h, _ in ratios})
    sizes = sorted({s for _, s in ratios})
    grid = np.full((len(heads), len(sizes)), np.nan)
    for (h, s), ratio in ratios.items():
        grid[heads.index(h), sizes.index(s)] = ratio
    return heads, sizes, grid


def _colour_bar(figure, image, axes, values: list[float]) -> None:
    """The colour bar over the measured range only, ticked from its lowest to its highest ratio."""
    ticks = ratio_ticks(min(values), max(values))
    low, high = np.log2(ticks[0]) - 0.02, np.log2(ticks[-1]) + 0.02
    bar = figure.colorbar(image, ax=axes, shrink=0.85, boundaries=np.linspace(low, high, 256))
    labels = [f"{t:.2f}×" if t in (ticks[0], ticks[-1]) else f"{t:g}×" for t in ticks]
    bar.set_ticks(np.log2(ticks), labels=labels, fontsize=FONT_SIZE)
    bar.set_label("jaxlin default / fastest torch (blue: jaxlin faster)", fontsize=FONT_SIZE)


def per_head_heatmap(path: str, records: list[dict], plt) -> bool:
    """One heatmap per row count: jaxlin's default over the fastest torch, heads × size."""
    rows = timed(records, names.PER_HEAD)
    counts = sorted({r["rows"] for r in rows}, reverse=True)
    maps = [(count, default_over_best_torch([r for r in rows if r["rows"] == count])) for count in counts]
    maps = [(count, ratios) for count, ratios in maps if ratios]
    if not maps:
        return False
    values = [v for _, ratios in maps for v in ratios.values()]
    span = max(float(np.abs(np.log2(values)).max()), 0.1)  # symmetric in log2: 1.0 sits at the white centre
    figure, axes = plt.subplots(1, len(maps), figsize=(6.5 * len(maps), 4.6), squeeze=False)
    for axis, (count, ratios) in zip(axes[0], maps, strict=True):
        heads, sizes, grid = _grid(ratios)
        image = axis.imshow(
            np.log2(grid), cmap="RdBu_r", vmin=-span, vmax=span, aspect="auto", origin="lower"
        )
        for i, j in np.ndindex(grid.shape):
            if not np.isnan(grid[i, j]):
                dark = abs(np.log2(grid[i, j])) > 0.6 * span  # white type on the deep colours
                colour = "white" if dark else "black"
                axis.text(
                    j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=FONT_SIZE, color=colour
                )
        axis.set_xticks(range(len(sizes)), [str(s) for s in sizes])
        axis.set_yticks(range(len(heads)), heads)
        axis.set_xlabel("per-head in = out features", fontsize=FONT_SIZE)
        axis.set_ylabel("heads", fontsize=FONT_SIZE)
        axis.set_title(f"{count} rows")
    _colour_bar(figure, image, axes[0].tolist(), values)
    figure.suptitle("PerHeadLinear: jaxlin's default against the fastest PyTorch formulation")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return True


def draw(out_dir: str, records: list[dict], limits: dict) -> list[str]:
    """Every plot of the run into ``out_dir``; their file names."""
    plt = _pyplot()
    drawn = []
    if per_head_heatmap(os.path.join(out_dir, "study-per-head.png"), records, plt):
        drawn.append("study-per-head.png")
    if roofline_plot(os.path.join(out_dir, "study-roofline.png"), records, limits, plt):
        drawn.append("study-roofline.png")
    for study in dict.fromkeys(r.get("study") for r in records if "median_s" in r):
        if study in (names.PER_HEAD, names.PEAK, names.BANDWIDTH):
            continue
        name = f"study-{study}.png"
        if study_chart(os.path.join(out_dir, name), records, study, plt):
            drawn.append(name)
    return drawn
