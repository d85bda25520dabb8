"""The batch-size probe's table, for the terminal and for Markdown, and ``probe.md``.

>>> rows = table_rows([{"module": "linear", "framework": "–", "mode": "–", "dtype": "float32",
...                     "passed": False, "verdict": "ERROR: boom"}])
>>> rows[0][-1]
'ERROR: boom'

A module whose rows never differed reads "no difference seen (batch ≤ N)": a finding at the sizes tried,
not a guarantee. The records keep the verdict ``"invariant"`` (probe.json, report.json).

>>> shown_verdict({"verdict": "invariant", "passed": True, "batch_sizes": [1, 2, 16]})
'no difference seen (batch ≤ 16)'
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


LEGEND = (
    "max ULP: the largest gap from the row computed alone, in units in the last place of the working dtype; "
    "outputs near zero have tiny ULPs, so it runs large (10^5 and more) for differences that are still "
    "rounding. max diff / allowance: the largest gap over the rounding allowance min(4·√K·u, γ_K)·Σ|x||w| — "
    'the number the verdict uses (rounding up to 2; above 2, different math). "no difference seen (batch '
    '≤ N)": every row bitwise equal at the sizes tried, not a promise for other sizes or machines.'
)
"""What the table's columns and verdict words mean; printed under the table and in probe.md."""


def shown_verdict(record: dict) -> str:
    """The verdict as the table shows it: ``"invariant"`` as what was seen, with the largest batch size."""
    if record["verdict"] == "invariant" and record.get("batch_sizes"):
        return f"no difference seen (batch ≤ {max(record['batch_sizes'])})"
    return record["verdict"]


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
                shown_verdict(r) if r["passed"] else f"FAIL: {r['verdict']}",
            )
        )
    return rows


def print_probe_table(console, records: list[dict], title: str) -> None:
    """The probe table on a rich console; failed rows in red."""
    styles = [None if record["passed"] else "red" for record in records]
    print_table(console, HEADERS, table_rows(records), title=title, styles=styles)
    console.print(LEGEND, style="dim", highlight=False)


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
    return lines + markdown_table(HEADERS, table_rows(records)) + ["", LEGEND]


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
