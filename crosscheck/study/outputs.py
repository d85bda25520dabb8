"""What the study writes: ``study.csv``, ``study.json``, ``study.md`` and the plots of :mod:`.plots`.

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
from crosscheck.study import names, parity, roofline, summary
from crosscheck.study.plots import draw

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
    "bytes",
    "footprint_bytes",
    "gbps",
    "bound",
    "roofline_fraction",
    "above_roofline",
    "equal",
    "dots",
    "one_batched_dot",
    "program",
    "note",
    "error",
)
MEASUREMENT_HEADERS = (
    "config",
    "impl",
    "median",
    "spread",
    "compile",
    "GFLOP/s",
    "GB/s",
    "% roofline (bound)",
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


def _roofline_cell(r: dict) -> str:
    if "roofline_fraction" not in r:
        return "–"
    flag = " **above the roofline**" if r.get("above_roofline") else ""
    return f"{r['roofline_fraction']:.0%} ({r['bound']}){flag}"


def _measurement_row(r: dict) -> tuple[str, ...]:
    if "median_s" not in r:
        return (str(r.get("config")), str(r.get("impl")), r.get("error", "–"), *[""] * 7)
    dot = {True: "yes", False: "no"}.get(r.get("one_batched_dot"), "–")
    return (
        r["config"],
        r["impl"],
        _ms(r["median_s"]),
        _ms(r["spread_s"]),
        _ms(r.get("compile_s")),
        f"{r['gflops']:.3g}" if "gflops" in r else "–",
        f"{r['gbps']:.3g}" if "gbps" in r else "–",
        _roofline_cell(r),
        dot,
        str(r.get("equal", "–")) if r.get("note") is None else "not compared",
    )


def _programs(records: list[dict]) -> list[str]:
    """The compiled program of every JAX block row: what fused and which copies remain."""
    rows = [
        (r["config"], r["impl"], f"`{r['program']}`")
        for r in records
        if r.get("study") == names.BLOCK and r.get("program")
    ]
    if not rows:
        return []
    return [
        "",
        "### Compiled programs of the block (XLA, in order)",
        "",
        *markdown_table(("config", "impl", "program"), rows),
    ]


LIMIT_LINES = (
    (
        "flops_per_s",
        "compute peak (best plain float32 GEMM: the peak shapes and kernel-parity GEMMs, faster framework)",
        "GFLOP/s",
    ),
    ("memory_bytes_per_s", "main-memory bandwidth (streaming read, faster framework)", "GB/s"),
    ("cache_bytes_per_s", "last-level-cache bandwidth (read of half the cache)", "GB/s"),
)


def _rate(value, unit: str) -> str:
    return "not measured" if value is None else f"{value / 1e9:.4g} {unit}"


def markdown(
    env: dict,
    records: list[dict],
    goals: list[dict],
    plots: list[str],
    *,
    quick: bool = False,
    parity_rows: list | None = None,
) -> str:
    """``study.md``: the command and machine, the targets (measured ones first, see
    :mod:`crosscheck.study.summary`), every row's kernel parity (:mod:`crosscheck.study.parity`), then
    one table per study, then the plots."""
    lines = ["# crosscheck study", "", f"`{env.get('command')}` · {env.get('timestamp')}", ""]
    lines += [f"{machine_line(env)} · versions {env.get('versions')}", ""]
    lines += summary.markdown_lines(goals, quick=quick)
    rows = parity.parity_rows(records) if parity_rows is None else parity_rows
    if section := parity.markdown_section(rows):
        lines += ["", *section]
    roof = roofline.limits(records)
    lines += ["", "## Roofline of this run", ""]
    lines += [f"- {label}: {_rate(roof[key], unit)}" for key, label, unit in LIMIT_LINES]
    for study in dict.fromkeys(r.get("study") for r in records):
        study_rows = [_measurement_row(r) for r in records if r.get("study") == study]
        lines += ["", f"## {study}", "", *markdown_table(MEASUREMENT_HEADERS, study_rows)]
        if study == names.BLOCK:
            lines += _programs(records)
    lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in plots]
    return "\n".join(lines) + "\n"


def write_outputs(
    out_dir: str, env: dict, records: list[dict], goals: list[dict], *, quick: bool = False
) -> list[str]:
    """``study.csv``, ``study.json``, ``study.md`` and the plots, in ``out_dir``; their paths. The
    per-round times (``samples_s``) are left out of ``study.json`` (over 100,000 numbers in a full run);
    the targets and the kernel-parity rows (``kernel_parity``) computed from them keep their intervals."""
    os.makedirs(out_dir, exist_ok=True)
    rows = parity.parity_rows(records)
    plots = draw(out_dir, records, roofline.limits(records), rows)
    measurements = [{k: v for k, v in r.items() if k != "samples_s"} for r in records]  # rounds: in memory
    document = {"environment": env, "quick": quick, "targets": goals, "measurements": measurements}
    document["kernel_parity"] = [row.as_dict() for row in rows]
    text = markdown(env, records, goals, plots, quick=quick, parity_rows=rows)
    paths = list(write_documents(out_dir, "study", document, text))
    atomic_write(os.path.join(out_dir, "study.csv"), csv_text(records))
    return paths + [os.path.join(out_dir, "study.csv")] + [os.path.join(out_dir, p) for p in plots]
