"""The report of ``locate``: a record per layer (strict JSON), the table, ``locate.md``.

>>> from crosscheck.porting.locating import LocateResult
>>> locate_record(LocateResult("m", "float32", [], [], []))["passed"]
True
"""

from __future__ import annotations

from crosscheck.porting.locating import HEADERS
from crosscheck.reporting.environment import machine_line
from crosscheck.reporting.tables import markdown_table, print_table


def first_failure_text(result) -> str:
    """The first failure as the table names it: a path, ``(model)``, or ``none``."""
    path = result.first_failure
    return "none" if path is None else (path or "(model)")


def locate_record(result) -> dict:
    """The result as plain data: every layer with its items' tiers, and what matched nothing."""
    layers = []
    for layer in result.layers:
        items = [{"item": item.item, "rule": item.rule, "passed": item.passed,
                  "same_function": {"passed": item.same_function.passed, **item.same_function.metrics},
                  "rounding": {"passed": item.rounding.passed, **item.rounding.metrics}}
                 for item in layer.items]  # fmt: skip
        layers.append({"path": layer.path, "jax_path": layer.jax_path, "torch_type": layer.torch_type,
                       "jax_type": layer.jax_type, "inputs": layer.inputs, "passed": layer.passed,
                       "judged": layer.error is None, "error": layer.error, "failure": layer.failure,
                       "layouts": layer.layouts, "notes": layer.notes, "stood_in": layer.stood_in,
                       "items": items})  # fmt: skip
    return {"name": result.name, "dtype": result.dtype, "passed": result.passed,
            "first_failure": result.first_failure, "layers": layers, "torch_only": result.torch_only,
            "jax_only": result.jax_only, "mode": result.mode, "switched": result.switched,
            "differing_weights": result.differing_weights, "not_judged": result.not_judged,
            "truth_notes": result.truth_notes}  # fmt: skip


def _mode_line(result) -> str:
    switched = (
        f"; switched from training mode and restored: {', '.join(result.switched)}" if result.switched else ""
    )
    return f"Both models ran in {result.mode} mode{switched}."


def _style(row: tuple, first: str) -> str | None:
    verdict = row[-1]
    if verdict.startswith("pass"):
        return None
    if verdict.startswith("not judged"):
        return "yellow"
    return "bold red" if row[0] == first else "red"


def print_locate(console, result, title: str = "") -> None:
    """The table on a rich console: failing layers in red, the first failure in bold."""
    rows = result.rows()
    first = first_failure_text(result)
    styles = [_style(row, first) for row in rows]
    print_table(console, HEADERS, rows, title=title, styles=styles)


def render_locate(env: dict, result) -> str:
    """``locate.md``: the command, the machine, the table, the first failure, the unmatched modules."""
    lines = ["# crosscheck locate", "", f"`{env.get('command', '')}` · {env.get('timestamp', '')}", ""]
    lines += [machine_line(env), "", *markdown_table(HEADERS, result.rows()), ""]
    lines.append(f"First failure: **{first_failure_text(result)}**")
    lines += ["", _mode_line(result)]
    if result.not_judged:
        lines += ["", "Not judged (never counted as failures):", *[f"- {row}" for row in result.not_judged]]
    if result.truth_notes:
        lines += ["", "The float64 truth:", *[f"- {note}" for note in result.truth_notes]]
    if result.differing_weights:
        lines += ["", f"Weights that differ between the two models: {'; '.join(result.differing_weights)}"]
    for side, paths in (("torch", result.torch_only), ("JAX", result.jax_only)):
        if paths:
            lines += ["", f"Only in {side} (judged inside their parents): {', '.join(paths)}"]
    return "\n".join(lines) + "\n"
