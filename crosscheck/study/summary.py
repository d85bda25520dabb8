"""The study's targets as a reader meets them, in the terminal and in ``study.md``: what the run measured
(``--quick`` says what it covers), the measured targets first, the ones it did not measure collapsed into
one line at the end, and what a NOT MET target means (a speed goal, not a failed check: the exit status
is 0).

>>> goals = [
...     {"target": "a / b at x", "name": "a / b", "value": 1.2, "limit": 1.0, "met": False},
...     {"target": "c / d at (not measured)", "name": "c / d", "value": None, "limit": 1.0, "met": None},
...     {"target": "c / d at (not measured)", "name": "c / d", "value": None, "limit": 1.0, "met": None},
... ]
>>> [g["target"] for g in measured(goals)], unmeasured_names(goals)
(['a / b at x'], ['c / d (2 shapes)'])
"""

from __future__ import annotations

from crosscheck.reporting.tables import markdown_table
from crosscheck.study import configs, parity

NOT_MEASURED_SUFFIX = " at (not measured)"
TERMINAL_WORDS = {True: "met", False: "NOT MET"}
MARKDOWN_WORDS = {True: "yes", False: "**NOT MET**"}


def quick_scope() -> str:
    """What ``--quick`` runs and checks, from the quick grid itself.

    >>> "heads 4, 8" in quick_scope()
    True
    """
    grid = configs.QUICK
    rows = [batch * windows for batch, windows in grid["leading"]]
    join = lambda values: ", ".join(map(str, values))  # noqa: E731
    pooled = join(grid["pooled_lengths"])
    return (
        f"quick mode: every study once at small sizes (per-head: heads {join(grid['heads'])} × "
        f"in = out {join(grid['sizes'])} at {join(rows)} rows; pooled lengths {pooled}; "
        "one block, one pointwise shape), every formulation checked against the others before it is "
        "timed. The targets set at the full study's shapes (2048 rows, pooled length 2048) are not "
        "measured here: run without --quick for all of them."
    )


def measured(goals: list[dict]) -> list[dict]:
    """The targets this run measured, in the table's order."""
    return [goal for goal in goals if goal["met"] is not None]


def _name(goal: dict) -> str:
    """The target without its configuration (results written before goals had a ``name``: cut the
    not-measured suffix)."""
    return goal.get("name") or goal["target"].removesuffix(NOT_MEASURED_SUFFIX)


def unmeasured_names(goals: list[dict]) -> list[str]:
    """The targets this run did not measure, one entry per target (with how many shapes it has)."""
    counts: dict[str, int] = {}
    for goal in goals:
        if goal["met"] is None:
            counts[_name(goal)] = counts.get(_name(goal), 0) + 1
    return [name if count == 1 else f"{name} ({count} shapes)" for name, count in counts.items()]


def limit_text(goal: dict) -> str:
    """``≤ 1.05`` or ``≥ 30``: the side of the limit a met target is on.

    >>> limit_text({"limit": 30, "at_least": True}), limit_text({"limit": 1.05})
    ('≥ 30', '≤ 1.05')
    """
    return f"{'≥' if goal.get('at_least') else '≤'} {goal['limit']:g}"


def _value(goal: dict) -> str:
    """The measured value, with its 95% interval where the target has one: ``1.23 [1.1–1.31]``."""
    if "interval" in goal:
        low, high = goal["interval"]
        return f"{goal['value']:.3g} [{low:.3g}–{high:.3g}]"
    return f"{goal['value']:.3g}"


def parity_meaning(goals: list[dict]) -> str:
    """What kernel parity means, where the targets include the kernel-parity ones (else empty)."""
    return parity.MEANING if any(_name(g) in (parity.OWN_TEXT, parity.BEYOND_TEXT) for g in goals) else ""


def meaning_of_not_met(goals: list[dict]) -> str:
    """What the NOT MET rows mean for the user and why the exit status is still 0 (empty when none)."""
    missed = sum(goal["met"] is False for goal in goals)
    if not missed:
        return ""
    return (
        f"{missed} NOT MET: each is a speed goal this project sets itself (a ratio of two timings, or a "
        "fraction of this machine's roofline), missed on this machine in this run. It is not a "
        "correctness failure: every formulation was checked against the others before it was timed, "
        "and a disagreement (DISAGREES) is what makes the exit status 1. Small timings are noisy: "
        "read a ratio near its limit together with the spread in study.md."
    )


def _count_line(goals: list[dict]) -> str:
    done = measured(goals)
    missed = sum(goal["met"] is False for goal in done)
    return (
        f"targets measured in this run: {len(done)} of {len(goals)} "
        f"({len(done) - missed} met, {missed} NOT MET)"
    )


def terminal_lines(goals: list[dict], *, quick: bool) -> list[str]:
    """The command's report of the targets: scope, measured rows, the unmeasured in one line, meaning."""
    lines = [quick_scope(), ""] if quick else []
    lines.append(_count_line(goals))
    for goal in measured(goals):
        detail = f" ({goal['detail']})" if goal.get("detail") else ""
        word = TERMINAL_WORDS[goal["met"]]
        lines.append(f"{word:>9}  {_value(goal):>7} ({limit_text(goal)})  {goal['target']}{detail}")
    missing = unmeasured_names(goals)
    if missing:
        lines.append(f"not measured ({sum(g['met'] is None for g in goals)}): " + "; ".join(missing))
    if meaning := parity_meaning(goals):
        lines += ["", meaning]
    if meaning := meaning_of_not_met(goals):
        lines += ["", meaning]
    return lines


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def markdown_lines(goals: list[dict], *, quick: bool) -> list[str]:
    """``study.md``'s targets section: scope, the measured table, the unmeasured as one line, meaning."""
    lines = ["## Targets", ""]
    if quick:
        lines += [_sentence(quick_scope()), ""]
    lines += [_sentence(_count_line(goals)) + ".", ""]
    rows = []
    for goal in measured(goals):
        detail = f" ({goal['detail']})" if goal.get("detail") else ""
        rows.append(
            (f"{goal['target']}{detail}", _value(goal), limit_text(goal), MARKDOWN_WORDS[goal["met"]])
        )
    if rows:
        lines += markdown_table(("target", "measured", "limit", "met"), rows)
    missing = unmeasured_names(goals)
    if missing:
        count = sum(goal["met"] is None for goal in goals)
        lines += ["", f"Not measured in this run ({count}): " + "; ".join(missing) + "."]
    if meaning := parity_meaning(goals):
        lines += ["", meaning]
    if meaning := meaning_of_not_met(goals):
        lines += ["", meaning]
    return lines
