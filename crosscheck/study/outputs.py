"""What the study writes: ``study.csv``, ``study.json``, ``study.md`` and one PNG per study.

>>> "gflops" in FIELDS
True
"""

from __future__ import annotations

import csv
import io
import os

from crosscheck.atomic import atomic_write
from crosscheck.reporting.documents import write_documents
from crosscheck.reporting.environment import machine_line
from crosscheck.reporting.tables import markdown_table

FIELDS = (
    "study",
    "config",
    "impl",
    "framework",
    "heads",
    "size",
    "rows",
    "length",
    "n",
    "flops",
    "median_s",
    "spread_s",
    "min_s",
    "max_s",
    "compile_s",
    "repeats",
    "gflops",
    "peak_fraction",
    "equal",
    "dots",
    "one_batched_dot",
    "error",
)
MEASUREMENT_HEADERS = (
    "config",
    "impl",
    "median",
    "spread",
    "compile",
    "GFLOP/s",
    "% peak",
    "one batched dot",
    "equal",
)


def csv_text(records: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def _ms(value) -> str:
    return "–" if value is None else f"{value * 1e3:.3g} ms"


def _measurement_row(r: dict) -> tuple[str, ...]:
    if "median_s" not in r:
        return (str(r.get("config")), str(r.get("impl")), r.get("error", "–"), *[""] * 6)
    dot = {True: "yes", False: "no"}.get(r.get("one_batched_dot"), "–")
    peak = f"{r['peak_fraction']:.0%}" if r.get("peak_fraction") else "–"
    return (
        r["config"],
        r["impl"],
        _ms(r["median_s"]),
        _ms(r["spread_s"]),
        _ms(r.get("compile_s")),
        f"{r['gflops']:.3g}",
        peak,
        dot,
        str(r.get("equal")),
    )


def markdown(env: dict, records: list[dict], goals: list[dict], plots: list[str]) -> str:
    """``study.md``: the command and machine, the targets, then one table per study, then the plots."""
    lines = ["# crosscheck study", "", f"`{env.get('command')}` · {env.get('timestamp')}", ""]
    lines += [f"{machine_line(env)} · versions {env.get('versions')}", "", "## Targets", ""]
    rows = []
    for goal in goals:
        value = "–" if goal["value"] is None else f"{goal['value']:.3g}"
        met = {True: "yes", False: "**no**", None: "not measured"}[goal["met"]]
        detail = f" ({goal['detail']})" if goal["detail"] else ""
        rows.append((f"{goal['target']}{detail}", value, str(goal["limit"]), met))
    lines += markdown_table(("target", "measured", "limit", "met"), rows)
    for study in dict.fromkeys(r.get("study") for r in records):
        study_rows = [_measurement_row(r) for r in records if r.get("study") == study]
        lines += ["", f"## {study}", "", *markdown_table(MEASUREMENT_HEADERS, study_rows)]
    lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in plots]
    return "\n".join(lines) + "\n"


def plot(out_dir: str, records: list[dict]) -> list[str]:
    """One PNG per study: time and % of peak per implementation; returns the file names."""
    import matplotlib  # the plot extra: imported only when plots are drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    for study in dict.fromkeys(r.get("study") for r in records if "median_s" in r):
        rows = [r for r in records if r.get("study") == study and "median_s" in r]
        figure, (time_axis, peak_axis) = plt.subplots(1, 2, figsize=(13, 5))
        configs = list(dict.fromkeys(r["config"] for r in rows))
        for impl in dict.fromkeys(r["impl"] for r in rows):
            points = [(configs.index(r["config"]), r) for r in rows if r["impl"] == impl]
            xs = [i for i, _ in points]
            time_axis.plot(xs, [r["median_s"] * 1e3 for _, r in points], marker="o", label=impl)
            peak_axis.plot(xs, [100 * r.get("peak_fraction", 0) for _, r in points], marker="o", label=impl)
        for axis, label in ((time_axis, "median time (ms, log)"), (peak_axis, "% of measured GEMM peak")):
            axis.set_xticks(range(len(configs)), configs, rotation=90, fontsize=6)
            axis.set_ylabel(label)
        time_axis.set_yscale("log")
        peak_axis.legend(fontsize=6, loc="best")
        figure.suptitle(f"crosscheck study: {study}")
        figure.tight_layout()
        name = f"study-{study}.png"
        figure.savefig(os.path.join(out_dir, name), dpi=110)
        plt.close(figure)
        names.append(name)
    return names


def write_outputs(out_dir: str, env: dict, records: list[dict], goals: list[dict]) -> list[str]:
    """``study.csv``, ``study.json``, ``study.md`` and the plots, in ``out_dir``; their paths."""
    os.makedirs(out_dir, exist_ok=True)
    plots = plot(out_dir, records)
    document = {"environment": env, "targets": goals, "measurements": records}
    paths = list(write_documents(out_dir, "study", document, markdown(env, records, goals, plots)))
    atomic_write(os.path.join(out_dir, "study.csv"), csv_text(records))
    return paths + [os.path.join(out_dir, "study.csv")] + [os.path.join(out_dir, p) for p in plots]
