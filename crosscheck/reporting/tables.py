"""One table, two renderings: a rich table on the terminal, and Markdown.

>>> print("\\n".join(markdown_table(("a", "b"), [("1", "2")])))
| a | b |
|---|---|
| 1 | 2 |
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table


def print_table(
    console,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str = "",
    styles: Sequence[str | None] | None = None,
) -> None:
    """``rows`` under ``headers`` on a rich ``console``, each row in its style (``"red"``, ``None``)."""
    table = Table(*headers, title=title or None)
    for index, row in enumerate(rows):
        table.add_row(*row, style=styles[index] if styles else None)
    console.print(table)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The lines of a Markdown table."""
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + [
        "| " + " | ".join(row) + " |" for row in rows
    ]
