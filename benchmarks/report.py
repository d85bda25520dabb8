"""The rows of :mod:`benchmarks.scale` as a Markdown table and a log–log plot of peak memory and wall time
against parameter count, with the physical floor (both models' float32 weights plus the largest layer in
float64) and the unavoidable work drawn.

>>> row = {"size": "bert-tiny", "job": "check", "parameters": 75648, "weight_bytes": 302592,
...        "largest_layer_float64_bytes": 267776, "wall_s": 7.0, "job_peak_bytes": 800_000_000,
...        "unavoidable": {"cold_s": 5.0, "warm_s": 1.0}, "status": "ok"}
>>> derived(row)["overhead"], round(derived(row)["peak_per_weights"])
(1.4, 2644)
>>> derived(row | {"unavoidable": {"cold_s": 5.0, "widen_s": 0.6}})["overhead_widened"]
1.25
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.sizes import BERT, DECODER
from benchmarks.worker import JOBS

GB = 1e9


def derived(row: dict) -> dict:
    """The row with its ratios: ``overhead`` (job wall / unavoidable work, cold: forward+backward, or the
    forward alone for a job without gradients where it was measured), ``overhead_warm``,
    ``overhead_widened`` (job wall / the cold unavoidable work plus moving both models' weights to
    float64, where that was timed: a float64 pass starts from float32 models, and a job widens both too),
    ``peak_per_weights`` (job peak / one model's float32 weights) and ``floor_bytes``."""
    unavoidable = row.get("unavoidable") or {}
    forward = not row.get("job", "").endswith("-grads") and unavoidable.get("forward_cold_s") is not None
    prefix = "forward_" if forward else ""
    wall, cold, warm = (
        row.get("wall_s"),
        unavoidable.get(prefix + "cold_s"),
        unavoidable.get(prefix + "warm_s"),
    )
    widen = unavoidable.get("widen_s")
    weights = row.get("weight_bytes")
    peak = row.get("job_peak_bytes") or (
        unavoidable.get("peak_bytes") if row.get("job") == "unavoidable" else None
    )
    extra = {
        "unavoidable_cold_s": cold,
        "unavoidable_warm_s": warm,
        "unavoidable_forward": forward,
        "overhead": wall / cold if wall and cold else None,
        "overhead_warm": wall / warm if wall and warm else None,
        "overhead_widened": wall / (cold + widen) if wall and cold and widen is not None else None,
        "peak_per_weights": peak / weights if peak and weights else None,
        "floor_bytes": 2 * weights + row["largest_layer_float64_bytes"] if weights else None,
    }
    return row | extra


def filled(rows: list[dict]) -> list[dict]:
    """``rows``, each lacking the unavoidable work (its process was stopped in that phase) given the one
    measured by the same size's ``unavoidable`` job, marked ``unavoidable_elsewhere``."""
    alone = {
        row["size"]: row["unavoidable"]
        for row in rows
        if row["job"] == "unavoidable" and row.get("unavoidable")
    }
    return [
        row | {"unavoidable": alone[row["size"]], "unavoidable_elsewhere": True}
        if not row.get("unavoidable") and row["size"] in alone
        else row
        for row in rows
    ]


def load(path: Path) -> list[dict]:
    """The rows of a JSON-lines file, the last one of each ``(size, job)`` kept (except a failed one after
    one that finished: that is kept, the failure noted as ``later_failure``), in the order of the sizes
    (BERT, then the decoder, small to large) and of the jobs."""
    rows: dict[tuple, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                key = (row["size"], row["job"])
                earlier = rows.get(key)
                if earlier and earlier.get("status") == "ok" and row.get("status") == "failed":
                    rows[key] = earlier | {"later_failure": row.get("reason")}  # stopped: other work's memory
                else:
                    rows[key] = row
    names = [*BERT, *DECODER]

    def order(row: dict) -> tuple[int, int]:
        return names.index(row["size"]) if row["size"] in names else len(names), JOBS.index(row["job"])

    return sorted(rows.values(), key=order)


def _fmt(value, spec: str = ".3g", scale: float = 1.0) -> str:
    return "–" if value is None else format(value if scale == 1 else value / scale, spec)


COLUMNS = (
    "size", "params (M)", "weights f32 (GB)", "job", "verdict", "items (judged)", "wall (s)",
    "unavoidable cold / warm (s)", "overhead cold / warm", "widening to f64 (s)",
    "overhead with widening", "RSS built (GB)",
    "peak (GB)", "peak / weights", "floor (GB)", "code commit",
)  # fmt: skip
"""The table's columns (docs/scale.md says what each means)."""


def _commit(commit: str | None) -> str:
    return "–" if not commit else commit[:8] + ("+dirty" if commit.endswith("+dirty") else "")


def _cells(row: dict) -> list[str]:
    verdict = row.get("status", "ok")
    if "passed" in row:
        verdict = "pass" if row["passed"] else "FAIL"
    items = _fmt(row.get("items"), "d") + (f" ({row['judged']})" if "judged" in row else "")
    return [
        row["size"],
        _fmt(row.get("parameters"), ".3g", 1e6),
        _fmt(row.get("weight_bytes"), ".3g", GB),
        row["job"],
        verdict,
        items,
        _fmt(row.get("wall_s"), ".1f"),
        f"{_fmt(row['unavoidable_cold_s'], '.1f')} / {_fmt(row['unavoidable_warm_s'], '.2f')}"
        + (" fwd" if row["unavoidable_forward"] else "")
        + (" †" if row.get("unavoidable_elsewhere") else ""),
        f"{_fmt(row['overhead'], '.2f')} / {_fmt(row['overhead_warm'], '.3g')}",
        _fmt((row.get("unavoidable") or {}).get("widen_s"), ".2f"),
        _fmt(row["overhead_widened"], ".2f"),
        _fmt(row.get("rss_built_bytes"), ".3g", GB),
        _fmt(row.get("job_peak_bytes"), ".3g", GB),
        _fmt(row["peak_per_weights"], ".3g"),
        _fmt(row["floor_bytes"], ".3g", GB),
        _commit(row.get("code_commit") or row.get("git_commit")),
    ]


def table(rows: list[dict]) -> str:
    """The Markdown table of ``rows``, then one line per row that did not finish, with its reason."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cells(derived(row))) + " |" for row in filled(rows)]
    failures = [f"- {row['size']} {row['job']}: {row['reason']}" for row in rows if row.get("reason")]
    failures += [
        f"- {row['size']} {row['job']}, a later run: {row['later_failure']}"
        for row in rows
        if row.get("later_failure")
    ]
    if any(row.get("unavoidable_elsewhere") for row in filled(rows)):
        failures.append("- †: the unavoidable work of the same size's `unavoidable` job (its own process)")
    return "\n".join(lines + ([""] + failures if failures else [])) + "\n"
