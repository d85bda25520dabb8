"""The report of a ``crosscheck run``: records, the summary table, the Markdown and the files.

The JSON schema is documented in ``docs/report-schema.md``.

>>> report = build_report({"command": "crosscheck run"}, [error_record("linear", "float32", "boom")])
>>> report["summary"]
{'cases': 1, 'passed': 0, 'failed': 1, 'skipped': 0}
"""

from __future__ import annotations

import os

from crosscheck.reporting.answer_lines import answer_lines
from crosscheck.reporting.documents import SCHEMA, jsonable, write_documents
from crosscheck.reporting.environment import machine_line
from crosscheck.reporting.probe_report import probe_section
from crosscheck.reporting.speed_report import HEADERS as SPEED_HEADERS
from crosscheck.reporting.speed_report import NOTE as SPEED_NOTE
from crosscheck.reporting.speed_report import speed_rows
from crosscheck.reporting.tables import markdown_table, print_table


def _comparison(comparison) -> dict[str, object]:
    return {"passed": bool(comparison.passed), **comparison.metrics}


def error_record(name: str, dtype: str, error: str) -> dict:
    """The record of a case that raised."""
    return {"name": name, "dtype": dtype, "passed": False, "items": [], "error": error}


def case_record(run) -> dict:
    """One entry of ``report["cases"]`` from a :class:`crosscheck.suite.check_groups.CaseRun`."""
    record: dict[str, object] = {"name": run.name, "dtype": run.dtype, "passed": False, "items": []}
    if run.skipped is not None:
        return record | {"passed": None, "skipped": run.skipped}
    if run.result is not None:
        record["passed"] = bool(run.result.passed) and run.error is None
        record["items"] = [
            {
                "item": item.item,
                "k": int(item.k),
                "same_function": _comparison(item.same_function),
                "rounding": _comparison(item.rounding),
                "cross_bound_ratio": item.cross_bound_ratio,
            }
            for item in run.result.items
        ]
        record["problems"] = run.result.problems()
        record["failures"] = run.result.failures()
    if run.error is not None:
        record["error"] = run.error
    return record


def build_report(
    env: dict,
    records: list[dict],
    probe: dict | None = None,
    weights: dict | None = None,
    *,
    timing: list[dict] | None = None,
    answers: list[dict] | None = None,
) -> dict:
    """The whole report: ``{"schema", "environment", "cases", "summary"}``; with the four answers,
    ``"answers"``; with timed entries, ``"timing": {"entries", "note"}``; with the batch-size probe,
    ``"batch_probe": {"batch_sizes", "records"}``; with ``--weights``, ``"weights"`` (the file and its
    non-finite values per key). See docs/report-schema.md."""
    run = [r for r in records if "skipped" not in r]
    passed = sum(1 for r in run if r["passed"])
    summary = {
        "cases": len(run),
        "passed": passed,
        "failed": len(run) - passed,
        "skipped": len(records) - len(run),
    }
    report = {"schema": SCHEMA, "environment": env, "cases": records, "summary": summary}
    if answers is not None:
        report["answers"] = answers
    if timing is not None:
        report["timing"] = {"entries": timing, "note": SPEED_NOTE}
        summary["timing_failed"] = sum(1 for entry in timing if "error" in entry)
    if probe is not None:
        summary["probe_failed"] = sum(1 for r in probe["records"] if not r["passed"])
        report["batch_probe"] = probe
    if weights is not None:
        report["weights"] = weights
    return jsonable(report)


HEADERS = ("case", "dtype", "jaxlin err vs f64", "torch_ref err vs f64", "cross / bound", "verdict")


def _worst(record: dict, tier: str, key: str) -> float:
    return max((float(item[tier].get(key, 0.0)) for item in record["items"]), default=0.0)


def verdict(record: dict) -> str:
    """``pass``, ``FAIL (same function, rounding, non-finite output)``, ``ERROR`` or ``skipped``."""
    if "skipped" in record:
        return "skipped"
    if "error" in record:
        return "ERROR"
    problems = record.get("problems", [])
    return "pass" if record["passed"] else f"FAIL ({', '.join(problems)})"


def summary_rows(report: dict) -> list[tuple[str, ...]]:
    """One row per case under :data:`HEADERS`; errors as ``×bound (absolute)``."""
    rows = []
    for record in report["cases"]:
        cells = [record["name"], record["dtype"]]
        if record["items"]:
            for side in ("actual", "expected"):
                ratio = _worst(record, "rounding", f"{side}_bound_ratio")
                cells.append(f"{ratio:.2g}× ({_worst(record, 'rounding', f'{side}_max_error'):.1e})")
            cells.append(f"{max(float(item['cross_bound_ratio']) for item in record['items']):.2g}×")
        else:
            cells += ["–"] * 3
        cells.append(verdict(record))
        rows.append(tuple(cells))
    return rows


def print_summary(console, report: dict) -> None:
    """The four answers, then the summary table on a rich ``console`` (green rows pass, red rows fail),
    then the timed entries."""
    for text in answer_lines(report.get("answers", [])):
        console.print(text, highlight=False, markup=False, soft_wrap=True)  # one line each, however long
    rows = summary_rows(report)
    styles = [{"pass": "green", "skipped": "dim"}.get(row[5], "red") for row in rows]
    print_table(console, HEADERS, rows, title=machine_line(report["environment"]), styles=styles)
    entries = report.get("timing", {}).get("entries")
    if entries:
        print_table(console, SPEED_HEADERS, speed_rows(entries), title="speed at the seed shapes (float32)")


def summary_line(report: dict) -> str:
    """``"4 cases: 4 passed, 0 failed; batch-size probe: 0 failed"``, with the weights file's
    non-finite values when it holds any."""
    summary = report["summary"]
    line = f"{summary['cases']} cases: {summary['passed']} passed, {summary['failed']} failed"
    line += f", {summary['skipped']} skipped" if summary.get("skipped") else ""
    line += f"; batch-size probe: {summary['probe_failed']} failed" if "probe_failed" in summary else ""
    line += f"; timing: {summary['timing_failed']} failed" if summary.get("timing_failed") else ""
    nonfinite = (report.get("weights") or {}).get("nonfinite") or {}
    if nonfinite:
        listed = ", ".join(f"{key} ({count})" for key, count in nonfinite.items())
        line += f"; the weights file holds NaN/inf in {listed}"
    return line


def render_markdown(report: dict) -> str:
    """``report.md``: the environment, the summary counts, the table, failures and skipped cases."""
    env = report["environment"]
    lines = ["# crosscheck run", ""]
    lines += [f"{text}" for text in answer_lines(report.get("answers", []))]
    lines += ["", f"`{env.get('command', '')}` · {env.get('timestamp', '')}", ""]
    flat = dict(env.get("versions", {}))
    flat |= {f"device.{k}": v for k, v in env.get("device", {}).items()}
    flat |= {f"precision.{k}": v for k, v in env.get("precision", {}).items()}
    flat |= {"git_commit": env.get("git_commit")}
    rows = [(key, "–" if value is None else str(value)) for key, value in flat.items()]
    lines += ["## Environment", "", *markdown_table(("key", "value"), rows)]
    lines += ["", "## Summary", "", machine_line(env), "", summary_line(report) + "."]
    lines.append(
        "Errors against float64 are the worst over the output and every gradient, as a multiple of"
        " the allowed rounding error (c·√K·u·|x|·|W|), with the absolute error in brackets."
    )
    lines += ["", *markdown_table(HEADERS, summary_rows(report))]
    timing = report.get("timing")
    if timing and timing["entries"]:
        lines += ["", "## Speed at the seed shapes", "", timing["note"], ""]
        lines += markdown_table(SPEED_HEADERS, speed_rows(timing["entries"]))
    failed = [r for r in report["cases"] if r.get("failures") or r.get("error")]
    if failed:
        lines += ["", "## Failures", ""]
        for record in failed:
            messages = ([record["error"]] if record.get("error") else []) + record.get("failures", [])
            lines += ["```text", *messages, "```", ""]
    skipped = [r for r in report["cases"] if "skipped" in r]
    if skipped:
        lines += ["", "## Skipped", ""] + [f"- {r['name']} ({r['dtype']}): {r['skipped']}" for r in skipped]
    if "batch_probe" in report:
        probe = report["batch_probe"]
        lines += ["", "## Batch-size probe", "", *probe_section(probe["records"], probe["batch_sizes"])]
    return "\n".join(lines).rstrip() + "\n"


def write_report(out_dir: str | os.PathLike, report: dict) -> tuple[str, str]:
    """Write ``out_dir/report.json`` and ``out_dir/report.md`` atomically; return their paths."""
    return write_documents(out_dir, "report", report, render_markdown(report))
