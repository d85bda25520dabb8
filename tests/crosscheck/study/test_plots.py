"""The study's plots read at a glance: the roofline one panel per study with a short legend in readable
type, one configuration drawn as labelled bars (no markers stacked on one vertical line), several as
lines dodged sideways, and the heatmap's colour bar ticked from its lowest ratio to its highest."""

import numpy as np
import pytest

from crosscheck.study import names
from crosscheck.study.plot_chart import NO_ROOF, study_chart
from crosscheck.study.plot_roofline import roofline_plot
from crosscheck.study.plot_style import FONT_SIZE, dodge
from crosscheck.study.plots import PANELS, per_head_heatmap, ratio_ticks

pytest.importorskip("matplotlib")


class KeptFigures:
    """matplotlib's pyplot, except that closing a figure keeps it for the test to read."""

    def __init__(self):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        self._plt, self.figures = plt, []

    def __getattr__(self, name):
        return getattr(self._plt, name)

    def close(self, figure):
        self.figures.append(figure)


def _row(study, config, impl, median_s, framework="jax"):
    return {"study": study, "config": config, "impl": impl, "framework": framework, "median_s": median_s}


def test_colour_bar_ticks_run_from_the_lowest_ratio_to_the_highest():
    assert ratio_ticks(0.51, 1.14) == [0.51, 0.6, 0.7, 0.8, 0.9, 1, 1.14]
    ticks = ratio_ticks(0.79, 1.86)
    assert ticks[0] == 0.79 and ticks[-1] == 1.86 and 1 in ticks and len(ticks) >= 5
    assert all(np.log2(b / a) >= np.log2(1.86 / 0.79) / 10 for a, b in zip(ticks, ticks[1:], strict=False))
    assert ratio_ticks(1.2, 1.2) == [1.2]


def test_the_heatmap_shows_kernel_parity_and_both_targets_its_colour_bar_labelled_at_both_ends(tmp_path):
    rows = []
    for (heads, size), ours in {(4, 32): 0.51, (4, 64): 1.14, (8, 32): 0.9, (8, 64): 1.0}.items():
        common = {
            "study": names.PER_HEAD,
            "heads": heads,
            "size": size,
            "rows": 64,
            "config": f"h{heads} {size}",
        }
        for impl, framework, median in (
            (names.JAXLIN_AUTO, "jax", ours),
            (names.JAX_BMM, "jax", ours),
            (names.TORCH_REF_BMM, "torch", 1.0),
            (names.TORCH_BMM, "torch", 1.0),
        ):
            rows.append(common | {"impl": impl, "framework": framework, "median_s": median})
    plt = KeptFigures()
    assert per_head_heatmap(str(tmp_path / "h.png"), rows, plt)
    *panels, bar = plt.figures[0].axes
    titles = [axis.get_title() for axis in panels]
    assert [t.split("\n")[0] for t in titles] == [title.split("\n")[0] for _, title, _ in PANELS]
    assert "kernel parity" in titles[0]
    assert "jax's fastest program" in titles[1] and "/ parity" in titles[2]
    labels = [t.get_text() for t in bar.get_yticklabels()]
    assert labels[0] == "0.51×" and labels[-1] == "1.14×" and "1×" in labels and len(labels) >= 5


def _roofline_rows():
    rows = []
    for study, impls in ((names.POOLED, 5), (names.LINEAR_ROWS, 4), (names.BLOCK, 5), (names.BANDWIDTH, 4)):
        for i in range(impls):
            rows.append(
                {"study": study, "config": "c", "impl": f"{study} impl {i}", "median_s": 1.0}
                | {"flops": 1e9 * (i + 1), "bytes": 1e8, "gflops": 10.0 + i}
            )
    return rows


def test_the_roofline_has_a_panel_per_study_each_with_a_short_legend_in_readable_type(tmp_path):
    plt = KeptFigures()
    limits = {"flops_per_s": 1e11, "memory_bytes_per_s": 1e10, "cache_bytes_per_s": 4e10}
    assert roofline_plot(str(tmp_path / "r.png"), _roofline_rows(), limits, plt)
    panels = [axis for axis in plt.figures[0].axes if axis.get_visible()]
    assert [axis.get_title() for axis in panels] == [
        names.BANDWIDTH,
        names.POOLED,
        names.LINEAR_ROWS,
        names.BLOCK,
    ]
    for axis in panels:
        legend = axis.get_legend()
        assert len(legend.get_texts()) <= 5 and legend.get_texts()[0].get_fontsize() >= FONT_SIZE - 1
        assert all(axis.get_title() in text.get_text() for text in legend.get_texts())
    shared = plt.figures[0].legends[0]  # the roofs and the grey context, once for every panel
    assert [t.get_text() for t in shared.get_texts()][0] == "roof: main memory, GEMM peak"


def test_one_configuration_is_drawn_as_labelled_bars_fastest_on_top(tmp_path):
    rows = [_row(names.POINTWISE, "(128, 8, 256)→32", f"impl {i}", 1e-3 * (9 - i)) for i in range(9)]
    plt = KeptFigures()
    assert study_chart(str(tmp_path / "p.png"), rows, names.POINTWISE, plt)
    time_axis = plt.figures[0].axes[0]
    assert len(time_axis.patches) == 9  # one bar each, nothing stacked on one vertical line
    labels = [t.get_text() for t in time_axis.get_yticklabels()]
    assert labels[-1] == "impl 8" and labels[0] == "impl 0"  # barh draws bottom-up: fastest on top
    assert "2" in [t.get_text().strip() for t in time_axis.texts]  # its value beside the bar (ms)


def test_rows_without_a_roofline_say_why_in_the_empty_panel_and_rows_with_one_do_not(tmp_path):
    bfloat16 = [_row(names.BF16_LINEAR, "(2048, 64)→512, bfloat16", f"impl {i}", 1e-3) for i in range(2)]
    plt = KeptFigures()
    assert study_chart(str(tmp_path / "b.png"), bfloat16, names.BF16_LINEAR, plt)
    assert [t.get_text() for t in plt.figures[0].axes[1].texts] == [NO_ROOF]
    measured = [row | {"roofline_fraction": 0.5} for row in bfloat16]
    assert study_chart(str(tmp_path / "m.png"), measured, names.BF16_LINEAR, plt)
    assert NO_ROOF not in [t.get_text() for t in plt.figures[1].axes[1].texts]


def test_bars_a_hundred_times_apart_get_a_log_time_axis_so_the_fast_ones_show(tmp_path):
    rows = [_row(names.BLOCK, "h4", "jax block", 1e-4), _row(names.BLOCK, "h4", "torch block", 1e-2, "torch")]
    plt = KeptFigures()
    assert study_chart(str(tmp_path / "b.png"), rows, names.BLOCK, plt)
    assert plt.figures[0].axes[0].get_xscale() == "log"


def test_many_configurations_are_lines_with_each_implementation_dodged_sideways(tmp_path):
    configs = [f"rows {n}" for n in (1, 2, 4, 8)]
    rows = [_row(names.LINEAR_ROWS, c, f"impl {i}", 1e-3) for c in configs for i in range(3)]
    plt = KeptFigures()
    assert study_chart(str(tmp_path / "l.png"), rows, names.LINEAR_ROWS, plt)
    lines = plt.figures[0].axes[0].get_lines()
    first_points = sorted(line.get_xdata()[0] for line in lines)
    assert len(set(first_points)) == 3  # three implementations, three positions at the first config
    assert dodge(3, 0.3) == [-0.15, 0.0, 0.15]
