"""The study's pictures: a heatmap for the per-head question (here: the kernel parity and the two
targets of :mod:`.parity`), a roofline for the memory-bound studies (:mod:`.plot_roofline`), and one
chart per remaining study (:mod:`.plot_chart`).

matplotlib is the ``plot`` extra: :func:`draw` imports it when it runs.

>>> ratio_ticks(0.51, 1.14)
[0.51, 0.6, 0.7, 0.8, 0.9, 1, 1.14]
"""

from __future__ import annotations

import os

import numpy as np

from crosscheck.study import names, parity
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
    bar = figure.colorbar(image, ax=axes, shrink=0.6, boundaries=np.linspace(low, high, 256))
    labels = [f"{t:.2f}×" if t in (ticks[0], ticks[-1]) else f"{t:g}×" for t in ticks]
    bar.set_ticks(np.log2(ticks), labels=labels, fontsize=FONT_SIZE)
    bar.set_label("ratio (blue: below 1, red: above)", fontsize=FONT_SIZE)


PANELS = (
    ("parity", "kernel parity: the backends' GEMM gap\njax batched GEMM / torch.bmm", False),
    ("own", "target: ≤ 1.05 (what jaxlin controls)\njaxlin default / jax's fastest program", True),
    (
        "beyond_parity",
        "target: ≤ 1.05 (nothing beyond the gap)\n(jaxlin default / fastest torch) / parity",
        True,
    ),
)
"""The heatmap's columns of panels: the ``ParityRow`` field drawn, its title, whether it is a target."""


def _panel(axis, rows: list, field: str, target: bool, span: float, plt):
    """One heads × size panel of ``field``'s ratios; a target's NOT MET cells outlined in black, bold."""
    heads, sizes, grid = _grid({(r.sizes["heads"], r.sizes["size"]): getattr(r, field).ratio for r in rows})
    missed = {
        (r.sizes["heads"], r.sizes["size"]) for r in rows if target and not parity.met(getattr(r, field))
    }
    image = axis.imshow(np.log2(grid), cmap="RdBu_r", vmin=-span, vmax=span, aspect="auto", origin="lower")
    axis.set_facecolor("0.82")  # a cell not measured is grey and says so, never the white of 1.0
    for i, j in np.ndindex(grid.shape):
        if np.isnan(grid[i, j]):
            axis.text(j, i, "not measured", ha="center", va="center", fontsize=FONT_SIZE - 2, color="0.35")
            continue
        dark = abs(np.log2(grid[i, j])) > 0.6 * span  # white type on the deep colours
        bold = (heads[i], sizes[j]) in missed
        axis.text(
            j,
            i,
            f"{grid[i, j]:.2f}",
            ha="center",
            va="center",
            fontsize=FONT_SIZE,
            color="white" if dark else "black",
            fontweight="bold" if bold else "normal",
        )
        if bold:
            box = plt.Rectangle(
                (j - 0.46, i - 0.46), 0.92, 0.92, fill=False, edgecolor="black", linewidth=1.6
            )
            axis.add_patch(box)
    axis.set_xticks(range(len(sizes)), [str(s) for s in sizes])
    axis.set_yticks(range(len(heads)), heads)
    axis.set_xlabel("per-head in = out features", fontsize=FONT_SIZE)
    axis.set_ylabel("heads", fontsize=FONT_SIZE)
    return image


def per_head_heatmap(path: str, records: list[dict], plt, rows: list | None = None) -> bool:
    """Heads × size, one row of panels per row count: the kernel parity and the two targets, for jaxlin's
    default on heads-last input; NOT MET cells bold and outlined. ``rows``: the run's
    :class:`~crosscheck.study.parity.ParityRow` list (with intervals), else computed from ``records``."""
    if rows is None:
        rows = parity.parity_rows(timed(records, names.PER_HEAD))
    found = [r for r in rows if r.study == names.PER_HEAD and r.layout == parity.HEADS_LAST]
    counts = sorted({r.sizes["rows"] for r in found}, reverse=True)
    if not counts:
        return False
    values = [getattr(r, field).ratio for r in found for field, _, _ in PANELS]
    span = max(float(np.abs(np.log2(values)).max()), 0.1)  # symmetric in log2: 1.0 sits at the white centre
    figure, axes = plt.subplots(
        len(counts),
        len(PANELS),
        figsize=(5.2 * len(PANELS) + 1.6, 4.2 * len(counts) + 1.0),
        squeeze=False,
        layout="constrained",
    )
    for line, count in enumerate(counts):
        rows = [r for r in found if r.sizes["rows"] == count]
        for (field, title, target), axis in zip(PANELS, axes[line], strict=True):
            image = _panel(axis, rows, field, target, span, plt)
            axis.set_title(f"{title}\n{count} rows", fontsize=FONT_SIZE)
    _colour_bar(figure, image, axes.ravel().tolist(), values)
    figure.suptitle(
        "PerHeadLinear, heads-last input: the backends' GEMM gap (left) and what jaxlin adds (middle, right)"
        "\nbold and outlined: NOT MET (the whole 95% interval above 1.05)",
        fontsize=FONT_SIZE + 2,
    )
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def draw(out_dir: str, records: list[dict], limits: dict, parity_rows: list | None = None) -> list[str]:
    """Every plot of the run into ``out_dir``; their file names."""
    plt = _pyplot()
    drawn = []
    if per_head_heatmap(os.path.join(out_dir, "study-per-head.png"), records, plt, parity_rows):
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
