"""The batch-size probe's table, for the terminal and for Markdown, and ``probe.md``.

>>> rows = table_rows([{"module": "linear", "framework": "–", "mode": "–", "dtype": "float32",
...                     "passed": False, "verdict": "ERROR: boom"}])
>>> rows[0][-1]
'ERROR: boom'
"""

from __future__ import annotations

from crosscheck.reporting.environment import machine_line
from crosscheck.reporting.tables import markdown_table, print_table

HEADERS = (
    "module",
    "framework",
    "mode",
    "dtype",
    "batch sizes where rows differ",
    "bitwise equal",
    "max ULP",
    "max diff / allowance",
    "deterministic",
    "verdict",
)


def _sizes(sizes: list[int]) -> str:
    return "none" if not sizes else ", ".join(map(str, sizes))


def table_rows(records: list[dict]) -> list[tuple[str, ...]]:
    """One row per probe record under :data:`HEADERS`."""
    rows = []
    for r in records:
        head = (r["module"], r["framework"], r["mode"], r["dtype"])
        if "rows_compared" not in r:
            rows.append(head + ("–",) * 5 + (r["verdict"],))
            continue
        repeats = f"yes ({r['repeats']}×)" if r["deterministic"] else f"NO ({r['repeats']}×)"
        rows.append(
            head
            + (
                _sizes(r["differing_batch_sizes"]),
                f"{r['fraction_bitwise_equal']:.1%}",
                f"{float(r['max_ulp']):g}",
                f"{float(r['max_error_over_allowance']):.2g}",
                repeats,
                r["verdict"] if r["passed"] else f"FAIL: {r['verdict']}",
            )
        )
    return rows


def print_probe_table(console, records: list[dict], title: str) -> None:
    """The probe table on a rich console; failed rows in red."""
    styles = [None if record["passed"] else "red" for record in records]
    print_table(console, HEADERS, table_rows(records), title=title, styles=styles)


def probe_section(records: list[dict], batch_sizes: list[int]) -> list[str]:
    """The Markdown section: what was compared, then the table."""
    listed = _sizes(batch_sizes) if len(batch_sizes) <= 20 else f"{len(batch_sizes)} sizes"
    lines = [
        f"Each row of a pool of {max(batch_sizes)} was computed alone and in batches of {listed} at several "
        "positions; a row counts as equal only when every bit is. The last column fails a module that "
        "promises invariance and differs, differences beyond two rounding allowances, and repeated calls "
        "that differ.",
        "",
    ]
    return lines + markdown_table(HEADERS, table_rows(records))


def render_probe_document(env: dict, probe: dict) -> str:
    """``probe.md`` of ``crosscheck batch-probe``: the command, the machine, the table."""
    deterministic = "on" if env.get("torch_deterministic") else "off"
    lines = [
        "# crosscheck batch-probe",
        "",
        f"`{env.get('command', '')}` · {env.get('timestamp', '')}",
        "",
        f"{machine_line(env)} · torch deterministic algorithms {deterministic} · "
        f"versions {env.get('versions')}",
        "",
    ]
    return "\n".join(lines + probe_section(probe["records"], probe["batch_sizes"])) + "\n"
