"""The report of a ``crosscheck run``: a JSON document and its Markdown summary, written atomically.

The JSON schema is documented in ``docs/report-schema.md``. Non-finite numbers are written as the
strings ``"inf"``, ``"-inf"`` and ``"nan"`` so the file stays strict JSON. Both files are first
written to a temporary file in the output directory, flushed to disk, and moved into place with
``os.replace``: a crash leaves the previous file (or none), never half of one.

>>> report = build_report({"command": "crosscheck run"}, [case_record("linear", "float32", error="boom")])
>>> report["summary"]
{'cases': 1, 'passed': 0, 'failed': 1, 'skipped': 0}
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import platform
import subprocess
import tempfile
from importlib import metadata

SCHEMA = 1
PACKAGES = ("jax", "jaxlib", "flax", "torch", "numpy")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """``git rev-parse HEAD`` of the checkout this package runs from, or ``None`` outside git."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def environment(command: str, *, device: dict, precision: dict) -> dict[str, object]:
    """Versions, machine, precision, XLA flags, git commit, command line and UTC timestamp."""
    versions = {"python": platform.python_version()} | {name: _version(name) for name in PACKAGES}
    return {
        "versions": versions,
        "device": device,
        "precision": precision,
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "git_commit": git_commit(),
        "command": command,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _jsonable(value):
    """Plain JSON values: floats stay floats unless non-finite (then "inf"/"-inf"/"nan")."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return number


def _comparison(comparison) -> dict[str, object]:
    return {"passed": bool(comparison.passed), **comparison.metrics}


def case_record(name: str, dtype: str, *, result=None, timings=None, error=None, skipped=None) -> dict:
    """One entry of ``report["cases"]`` from a :class:`crosscheck.check.CaseResult` and its timings.

    ``error`` (a message) marks a case that raised; ``skipped`` (a note) one that was not run.
    """
    record: dict[str, object] = {"name": name, "dtype": dtype, "passed": False, "items": []}
    if skipped is not None:
        return record | {"passed": None, "skipped": skipped}
    if result is not None:
        record["passed"] = bool(result.passed) and error is None
        record["items"] = [
            {
                "item": item.item,
                "k": int(item.k),
                "same_function": _comparison(item.same_function),
                "rounding": _comparison(item.rounding),
                "cross_bound_ratio": item.cross_bound_ratio,
            }
            for item in result.items
        ]
        record["failures"] = result.failures()
    if error is not None:
        record["error"] = error
    if timings is not None:
        record |= timing_fields(timings)
    return record


def timing_fields(timings) -> dict:
    """``timings`` (from :func:`crosscheck.timing.measure_case`) and the torch/jax speed ratios."""
    ratio = {
        kind: timings["torch"][kind].median_s / timings["jax"][kind].median_s
        for kind in ("forward", "forward_backward")
    }
    return {
        "timings": {
            framework: {kind: timing.as_dict() for kind, timing in kinds.items()}
            for framework, kinds in timings.items()
        },
        "speed_ratio": ratio["forward"],
        "speed_ratio_forward_backward": ratio["forward_backward"],
    }


def build_report(env: dict, records: list[dict], probe: dict | None = None) -> dict:
    """The whole report: ``{"schema", "environment", "cases", "summary"}`` and, when the batch-size
    probe ran, ``"batch_probe": {"batch_sizes", "records"}`` (see docs/report-schema.md)."""
    run = [r for r in records if "skipped" not in r]
    passed = sum(1 for r in run if r["passed"])
    summary = {
        "cases": len(run),
        "passed": passed,
        "failed": len(run) - passed,
        "skipped": len(records) - len(run),
    }
    report = {"schema": SCHEMA, "environment": env, "cases": records, "summary": summary}
    if probe is not None:
        summary["probe_failed"] = sum(1 for r in probe["records"] if not r["passed"])
        report["batch_probe"] = probe
    return _jsonable(report)


# ---- the summary table (shared by the console and the Markdown) --------------------------------

HEADERS = (
    "case", "dtype", "jaxlin err vs f64", "torch_ref err vs f64", "cross / bound", "verdict",
    "jax fwd", "torch fwd", "torch/jax",
)  # fmt: skip


def _number(value) -> float:
    return float(value)  # also reads the "inf" and "nan" strings of the JSON


def _worst(record: dict, tier: str, key: str) -> float:
    return max((_number(item[tier].get(key, 0.0)) for item in record["items"]), default=0.0)


def _seconds(value: float) -> str:
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def verdict(record: dict) -> str:
    """``pass``, ``FAIL (same function, rounding)``, ``ERROR`` or ``skipped``."""
    if "skipped" in record:
        return "skipped"
    if "error" in record:
        return "ERROR"
    tiers = [
        label
        for label, tier in (("same function", "same_function"), ("rounding", "rounding"))
        if not all(item[tier]["passed"] for item in record["items"])
    ]
    return "pass" if not tiers else f"FAIL ({', '.join(tiers)})"


def summary_rows(report: dict) -> list[tuple[str, ...]]:
    """One row per case under :data:`HEADERS`; errors as ``×bound (absolute)``."""
    rows = []
    for record in report["cases"]:
        cells = [record["name"], record["dtype"]]
        if record["items"]:
            for side in ("actual", "expected"):
                ratio = _worst(record, "rounding", f"{side}_bound_ratio")
                cells.append(f"{ratio:.2g}× ({_worst(record, 'rounding', f'{side}_max_error'):.1e})")
            cross = max(_number(item["cross_bound_ratio"]) for item in record["items"])
            cells.append(f"{cross:.2g}×")
        else:
            cells += ["–"] * 3
        cells.append(verdict(record))
        timings = record.get("timings")
        if timings:
            cells += [_seconds(timings[f]["forward"]["median_s"]) for f in ("jax", "torch")]
            cells.append(f"{_number(record['speed_ratio']):.2g}×")
        else:
            cells += ["–"] * 3
        rows.append(tuple(cells))
    return rows


def title(report: dict) -> str:
    """The machine and precision line printed above the summary table."""
    env = report["environment"]
    device, precision = env.get("device", {}), env.get("precision", {})
    return (
        f"{device.get('cpu_model')} · {device.get('cpu_cores')} cores · jax {device.get('jax_backend')} "
        f"({device.get('jax_device')}) · torch {device.get('torch_device')} · "
        f"precision {precision.get('mode')}"
    )


def print_summary(console, report: dict) -> None:
    """The summary table on a rich ``console``: green rows pass, red rows fail."""
    from rich.table import Table

    table = Table(*HEADERS, title=title(report))
    styles = {"pass": "green", "skipped": "dim"}
    for row in summary_rows(report):
        table.add_row(*row, style=styles.get(row[5], "red"))
    console.print(table)


def render_markdown(report: dict) -> str:
    """``report.md``: the environment, the summary counts, the table, failures and skipped cases."""
    env, summary = report["environment"], report["summary"]
    lines = ["# crosscheck run", "", f"`{env.get('command', '')}` · {env.get('timestamp', '')}", ""]
    lines += ["## Environment", "", "| key | value |", "|---|---|"]
    flat = dict(env.get("versions", {}))
    flat |= {f"device.{k}": v for k, v in env.get("device", {}).items()}
    flat |= {f"precision.{k}": v for k, v in env.get("precision", {}).items()}
    flat |= {"git_commit": env.get("git_commit")}
    lines += [f"| {key} | {'–' if value is None else value} |" for key, value in flat.items()]
    lines += ["", "## Summary", "", title(report), ""]
    lines.append(
        f"{summary['cases']} cases: {summary['passed']} passed, {summary['failed']} failed"
        + (f", {summary['skipped']} skipped" if summary.get("skipped") else "")
        + ". Errors against float64 are the worst over the output and every gradient, as a multiple of"
        " the allowed rounding error (c·√K·u·|x|·|W|), with the absolute error in brackets. Times are"
        " medians of the steady state; torch/jax > 1 means jaxlin is faster."
    )
    lines += ["", "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(report)]
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
        from crosscheck.batch_probe import markdown

        probe = report["batch_probe"]
        lines += ["", "## Batch-size probe", ""] + markdown(probe["records"], probe["batch_sizes"])
    return "\n".join(lines).rstrip() + "\n"


def _atomic_write(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_documents(out_dir: str | os.PathLike, stem: str, data: dict, markdown: str) -> tuple[str, str]:
    """Write ``out_dir/stem.json`` (strict JSON of ``data``) and ``out_dir/stem.md`` atomically.

    Both texts are rendered before either file is touched, so a failure while rendering writes nothing.
    """
    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    json_text = json.dumps(_jsonable(data), indent=2, allow_nan=False) + "\n"
    json_path, md_path = os.path.join(out, f"{stem}.json"), os.path.join(out, f"{stem}.md")
    _atomic_write(json_path, json_text)
    _atomic_write(md_path, markdown)
    return json_path, md_path


def write_report(out_dir: str | os.PathLike, report: dict) -> tuple[str, str]:
    """Write ``out_dir/report.json`` and ``out_dir/report.md`` atomically; return their paths."""
    return write_documents(out_dir, "report", report, render_markdown(report))
