"""The study's pictures: a heatmap for the per-head question, a roofline for the memory-bound studies,
and one chart per remaining study with a distinct colour and marker for every implementation.

matplotlib is the ``plot`` extra: :func:`draw` imports it when it runs.
"""

from __future__ import annotations

import os

import numpy as np

from crosscheck.study import names

MARKERS = "osD^vP*Xh<>p"


def _pyplot():
    import matplotlib  # the plot extra: imported only when plots are drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _timed(records: list[dict], study: str) -> list[dict]:
    return [r for r in records if r.get("study") == study and "median_s" in r]


def _style(index: int, plt) -> dict:
    colours = plt.get_cmap("tab20").colors
    return {"color": colours[index % len(colours)], "marker": MARKERS[index % len(MARKERS)]}


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


def per_head_heatmap(path: str, records: list[dict], plt) -> bool:
    """One heatmap per row count: jaxlin's default over the fastest torch, heads × size."""
    rows = _timed(records, names.PER_HEAD)
    counts = sorted({r["rows"] for r in rows}, reverse=True)
    maps = [(count, default_over_best_torch([r for r in rows if r["rows"] == count])) for count in counts]
    maps = [(count, ratios) for count, ratios in maps if ratios]
    if not maps:
        return False
    values = np.log2([v for _, ratios in maps for v in ratios.values()])
    span = max(float(np.abs(values).max()), 0.1)  # symmetric in log2: 1.0 sits at the white centre
    figure, axes = plt.subplots(1, len(maps), figsize=(6.5 * len(maps), 4.6), squeeze=False)
    for axis, (count, ratios) in zip(axes[0], maps, strict=True):
        heads = sorted({h for h, _ in ratios})
        sizes = sorted({s for _, s in ratios})
        grid = np.full((len(heads), len(sizes)), np.nan)
        for (h, s), ratio in ratios.items():
            grid[heads.index(h), sizes.index(s)] = ratio
        image = axis.imshow(
            np.log2(grid), cmap="RdBu_r", vmin=-span, vmax=span, aspect="auto", origin="lower"
        )
        for i, j in np.ndindex(grid.shape):
            if not np.isnan(grid[i, j]):
                axis.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=9)
        axis.set_xticks(range(len(sizes)), [str(s) for s in sizes])
        axis.set_yticks(range(len(heads)), heads)
        axis.set_xlabel("per-head in = out features")
        axis.set_ylabel("heads")
        axis.set_title(f"{count} rows")
    bar = figure.colorbar(image, ax=axes[0].tolist(), shrink=0.85)
    ticks = [t for t in (0.25, 0.5, 0.8, 1, 1.25, 2, 4) if abs(np.log2(t)) <= span]
    bar.set_ticks(np.log2(ticks), labels=[f"{t:g}×" for t in ticks])
    bar.set_label("jaxlin default / fastest torch (blue: jaxlin faster)")
    figure.suptitle("PerHeadLinear: jaxlin's default against the fastest PyTorch formulation")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return True


ROOFLINE_STUDIES = (names.BANDWIDTH, names.POOLED, names.LINEAR_ROWS, names.BLOCK)


def roofline_plot(path: str, records: list[dict], limits: dict, plt) -> bool:
    """GFLOP/s against arithmetic intensity (FLOPs per byte moved), under the measured roofs."""
    rows = [r for s in ROOFLINE_STUDIES for r in _timed(records, s) if r.get("bytes") and r.get("gflops")]
    peak, memory, cache = (limits.get(k) for k in ("flops_per_s", "memory_bytes_per_s", "cache_bytes_per_s"))
    if not rows or not peak or not memory:
        return False
    figure, axis = plt.subplots(figsize=(10, 6.5))
    intensity = np.array([r["flops"] / r["bytes"] for r in rows])
    x = np.logspace(np.log10(intensity.min() / 2), np.log10(max(intensity.max() * 2, 2 * peak / memory)), 200)
    axis.plot(
        x, np.minimum(peak, x * memory) / 1e9, color="black", lw=2, label="roof: main memory, GEMM peak"
    )
    if cache:
        axis.plot(x, np.minimum(peak, x * cache) / 1e9, color="grey", lw=1.5, ls="--", label="roof: cache")
    for index, impl in enumerate(dict.fromkeys(f"{r['study']}: {r['impl']}" for r in rows)):
        mine = [r for r in rows if f"{r['study']}: {r['impl']}" == impl]
        axis.scatter(
            [r["flops"] / r["bytes"] for r in mine],
            [r["gflops"] for r in mine],
            label=impl,
            s=36,
            **_style(index, plt),
        )
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("arithmetic intensity (FLOPs per byte it must move)")
    axis.set_ylabel("GFLOP/s (median)")
    axis.set_title("Roofline of this run: the memory-bound studies, the Linear row sweep and the block")
    axis.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return True


def study_chart(path: str, records: list[dict], study: str, plt) -> bool:
    """Median time and % of roofline per configuration, one colour and marker per implementation."""
    rows = _timed(records, study)
    if not rows:
        return False
    configs = list(dict.fromkeys(r["config"] for r in rows))
    crowded = len(configs) > 3 or max(map(len, configs)) > 12
    figure, (time_axis, roof_axis) = plt.subplots(1, 2, figsize=(13, 5))
    for index, impl in enumerate(dict.fromkeys(r["impl"] for r in rows)):
        points = [(configs.index(r["config"]), r) for r in rows if r["impl"] == impl]
        xs = [i for i, _ in points]
        style = _style(index, plt) | {"label": impl, "ls": "-" if len(xs) > 1 else "none"}
        time_axis.plot(xs, [r["median_s"] * 1e3 for _, r in points], **style)
        roof_axis.plot(xs, [100 * r.get("roofline_fraction", np.nan) for _, r in points], **style)
    for axis, label in ((time_axis, "median time (ms, log)"), (roof_axis, "% of this run's roofline")):
        axis.set_xticks(
            range(len(configs)),
            configs,
            rotation=30 if crowded else 0,
            ha="right" if crowded else "center",
            fontsize=7,
        )
        axis.set_ylabel(label)
    time_axis.set_yscale("log")
    roof_axis.set_ylim(0, 110)
    roof_axis.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.suptitle(f"crosscheck study: {study}")
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
