"""``study-<study>.png`` for the studies without a picture of their own: median time and % of the
roofline for every implementation.

Up to three configurations (``--quick`` has one for most studies): a row of panels per configuration,
a horizontal bar per implementation, fastest on top, labelled with its value and coloured by framework.
More configurations (the Linear row sweep): one line per implementation across them, the
implementations side by side at each configuration so no marker hides another, and the legend under
the panels in readable type.
"""

from __future__ import annotations

import numpy as np

from crosscheck.study.plot_style import FONT_SIZE, FRAMEWORK_COLOURS, dodge, style, timed

TIME_LABEL = "median time (ms)"
ROOF_LABEL = "% of this run's roofline"
NO_ROOF = "no roofline for these rows:\nthe run measures the GEMM peak\nin float32 only"
LOG_SPREAD = 20
"""A configuration whose slowest bar is this many times its fastest gets a log time axis."""
MOST_BAR_CONFIGS = 3
"""Up to this many configurations a study is drawn as bars (one panel row each), beyond it as lines."""


def _save(figure, path: str, plt) -> None:
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _bars(time_axis, roof_axis, rows: list[dict]) -> None:
    """One configuration's bars, fastest on top, each with its value written beside it."""
    rows = sorted(rows, key=lambda r: r["median_s"], reverse=True)  # barh draws bottom-up
    places = np.arange(len(rows))
    colours = [FRAMEWORK_COLOURS.get(r.get("framework"), "tab:grey") for r in rows]
    times = [r["median_s"] * 1e3 for r in rows]
    roofs = [100 * r.get("roofline_fraction", np.nan) for r in rows]
    time_axis.barh(places, times, color=colours)
    roof_axis.barh(places, roofs, color=colours)
    for place, (t, roof) in enumerate(zip(times, roofs, strict=True)):
        time_axis.text(t, place, f" {t:.3g}", va="center", fontsize=FONT_SIZE - 1)
        if not np.isnan(roof):
            roof_axis.text(roof, place, f" {roof:.0f}%", va="center", fontsize=FONT_SIZE - 1)
    if np.isnan(roofs).all():  # no FLOP count: a bfloat16 row, and the run's peak is float32's
        roof_axis.text(0.5, 0.5, NO_ROOF, transform=roof_axis.transAxes, ha="center", va="center",
                       fontsize=FONT_SIZE - 1, color="dimgrey")  # fmt: skip
    time_axis.set_yticks(places, [r["impl"] for r in rows], fontsize=FONT_SIZE)
    roof_axis.set_yticks(places, [""] * len(rows))
    if max(times) > LOG_SPREAD * min(times):  # a linear axis would leave the fast bars invisible
        time_axis.set_xscale("log")
        time_axis.set_xlim(min(times) / 2, max(times) * 3)
        time_axis.text(
            1, 1.01, "log scale", transform=time_axis.transAxes, ha="right", fontsize=FONT_SIZE - 1
        )
    else:
        time_axis.set_xlim(0, max(times) * 1.18)
    roof_axis.set_xlim(0, 115)
    time_axis.set_title(rows[0]["config"], fontsize=FONT_SIZE + 1, loc="left")
    for axis in (time_axis, roof_axis):
        axis.grid(alpha=0.3, axis="x")


def bar_chart(path: str, rows: list[dict], study: str, plt) -> None:
    """A few configurations: one row of panels each, a bar per implementation, coloured by framework."""
    configs = list(dict.fromkeys(r["config"] for r in rows))
    groups = [[r for r in rows if r["config"] == config] for config in configs]
    heights = [1.0 + 0.42 * len(group) for group in groups]
    figure, axes = plt.subplots(
        len(groups),
        2,
        figsize=(13, sum(heights) + 0.6),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"height_ratios": heights, "width_ratios": (3, 2)},
    )
    for (time_axis, roof_axis), group in zip(axes, groups, strict=True):
        _bars(time_axis, roof_axis, group)
    axes[-1][0].set_xlabel(TIME_LABEL + ", fastest on top", fontsize=FONT_SIZE)
    axes[-1][1].set_xlabel(ROOF_LABEL, fontsize=FONT_SIZE)
    present = [name for name in FRAMEWORK_COLOURS if any(r.get("framework") == name for r in rows)]
    handles = [plt.Rectangle((0, 0), 1, 1, color=FRAMEWORK_COLOURS[name]) for name in present]
    axes[0][1].legend(handles, present, fontsize=FONT_SIZE - 1, loc="lower right")
    figure.suptitle(f"crosscheck study: {study}", fontsize=FONT_SIZE + 2)
    _save(figure, path, plt)


def line_chart(path: str, rows: list[dict], study: str, plt) -> None:
    """Several configurations: one line per implementation, dodged sideways at each configuration."""
    configs = list(dict.fromkeys(r["config"] for r in rows))
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    crowded = len(configs) > 3 or max(map(len, configs)) > 12
    figure, (time_axis, roof_axis) = plt.subplots(1, 2, figsize=(14, 6), layout="constrained")
    for index, (impl, offset) in enumerate(
        zip(impls, dodge(len(impls), 0.3 if len(impls) > 2 else 0.1), strict=True)
    ):
        points = [(configs.index(r["config"]) + offset, r) for r in rows if r["impl"] == impl]
        xs = [x for x, _ in points]
        line = style(index, plt) | {"label": impl, "ls": "-" if len(xs) > 1 else "none", "alpha": 0.85}
        time_axis.plot(xs, [r["median_s"] * 1e3 for _, r in points], **line)
        roof_axis.plot(xs, [100 * r.get("roofline_fraction", np.nan) for _, r in points], **line)
    for axis, label in ((time_axis, TIME_LABEL + ", log"), (roof_axis, ROOF_LABEL)):
        rotation, align = (25, "right") if crowded else (0, "center")
        axis.set_xticks(range(len(configs)), configs, rotation=rotation, ha=align, fontsize=FONT_SIZE - 1)
        axis.set_ylabel(label, fontsize=FONT_SIZE)
        axis.grid(alpha=0.3)
    time_axis.set_yscale("log")
    roof_axis.set_ylim(0, 110)
    handles, labels = time_axis.get_legend_handles_labels()
    columns = 3 if len(impls) > 4 else len(impls)
    figure.legend(
        handles, labels, loc="outside lower center", ncols=columns, fontsize=FONT_SIZE - 1, frameon=False
    )
    figure.suptitle(f"crosscheck study: {study}", fontsize=FONT_SIZE + 2)
    _save(figure, path, plt)


def study_chart(path: str, records: list[dict], study: str, plt) -> bool:
    """The chart of ``study`` at ``path``: bars for a few configurations, lines for more; ``False``
    when the study has no timed row."""
    rows = timed(records, study)
    if not rows:
        return False
    if len({r["config"] for r in rows}) <= MOST_BAR_CONFIGS:
        bar_chart(path, rows, study, plt)
    else:
        line_chart(path, rows, study, plt)
    return True
