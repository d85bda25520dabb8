"""Compare the verdicts and ratios of two ``crosscheck run`` reports (``report.json``).

Every case, by ``(name, dtype)``: whether it passed, its problems and error, and for each item its
``K``, both tiers' verdicts and every ratio to the bound (``*_ratio``: the bound, deterministic and
probabilistic ratios of each side, ``cross_bound_ratio``). Every batch-size probe record, by
``(module, framework, mode, dtype)``: verdict, differing batch sizes, largest difference in
allowances. Verdicts must be equal; ratios are reported by their largest relative change. Speed
ratios (timed, so never the same twice) are compared by their intervals
(:mod:`crosscheck.reporting.speed_diff`): one moved when the two intervals do not overlap, and two
claims contradict when one says faster and the other slower.

    python -m crosscheck.reporting.report_diff before/report.json after/report.json

exits 0 when every verdict is the same and no ratio moved by more than ``--ratio-tolerance``
(relative; default 0: bit for bit), and with ``--speed`` no speed claim contradicts the other
report's, else 1, listing what differs.

>>> case = {"name": "a", "dtype": "float32", "passed": True, "items": [
...     {"item": "output", "k": 3, "same_function": {"passed": True, "actual_bound_ratio": 0.5},
...      "rounding": {"passed": True}, "cross_bound_ratio": 0.1}]}
>>> moved = {**case, "items": [{**case["items"][0], "cross_bound_ratio": 0.1000001}]}
>>> difference = compare_reports({"cases": [case]}, {"cases": [moved]})
>>> difference.verdicts, f"{difference.largest_ratio_change:.0e}"
([], '1e-06')
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field

from crosscheck.reporting import speed_diff
from crosscheck.runtime.ratio_intervals import RatioInterval

VERDICT_KEYS = ("passed", "problems", "error", "skipped")
PROBE_KEYS = ("passed", "verdict", "differing_batch_sizes")


@dataclass
class Difference:
    """What differs between two reports: verdicts in words, ratio changes ``(where, before, after)``,
    speed ratios whose intervals do not overlap, and speed claims that contradict each other."""

    verdicts: list[str] = field(default_factory=list)
    ratios: list[tuple[str, float, float]] = field(default_factory=list)
    speeds_moved: list[tuple[str, RatioInterval, RatioInterval]] = field(default_factory=list)
    speed_contradictions: list[str] = field(default_factory=list)

    @property
    def largest_ratio_change(self) -> float:
        """The largest ``|after - before| / max(|before|, tiny)`` over every ratio (0 when none moved)."""
        return max((_relative(a, b) for _, a, b in self.ratios), default=0.0)


def _number(value) -> float:
    """A ratio as JSON holds it: a number, or ``"inf"``/``"nan"`` (strict JSON has no such numbers)."""
    return float(value)


def _relative(before: float, after: float) -> float:
    if before == after or (math.isnan(before) and math.isnan(after)):
        return 0.0
    return abs(after - before) / max(abs(before), 1e-300)


def _ratios(item: dict) -> dict[str, float]:
    found = {"cross_bound_ratio": _number(item["cross_bound_ratio"])}
    for tier in ("same_function", "rounding"):
        found |= {f"{tier}.{k}": _number(v) for k, v in item[tier].items() if k.endswith("_ratio")}
    return found


def _compare_case(where: str, before: dict, after: dict, difference: Difference) -> None:
    for key in VERDICT_KEYS:
        if before.get(key) != after.get(key):
            difference.verdicts.append(f"{where}: {key} {before.get(key)!r} -> {after.get(key)!r}")
    items_before = {item["item"]: item for item in before.get("items", [])}
    items_after = {item["item"]: item for item in after.get("items", [])}
    if list(items_before) != list(items_after):
        difference.verdicts.append(f"{where}: items {list(items_before)} -> {list(items_after)}")
    for name in [name for name in items_before if name in items_after]:
        old, new = items_before[name], items_after[name]
        for key in ("k", "same_function.passed", "rounding.passed"):
            tier, _, leaf = key.rpartition(".")
            values = [(item[tier] if tier else item)[leaf] for item in (old, new)]
            if values[0] != values[1]:
                difference.verdicts.append(f"{where} {name}: {key} {values[0]!r} -> {values[1]!r}")
        ratios_after = _ratios(new)
        for key, value in _ratios(old).items():
            if key in ratios_after and _relative(value, ratios_after[key]) > 0:
                difference.ratios.append((f"{where} {name} {key}", value, ratios_after[key]))


def _probe_records(report: dict) -> dict[tuple, dict]:
    records = report.get("batch_probe", {}).get("records", [])
    return {(r["module"], r["framework"], r["mode"], r["dtype"]): r for r in records}


def compare_reports(before: dict, after: dict) -> Difference:
    """Every verdict and ratio of ``before`` against ``after`` (two parsed report.json documents)."""
    difference = Difference()
    cases = [{(c["name"], c["dtype"]): c for c in report["cases"]} for report in (before, after)]
    for key in sorted(cases[0].keys() | cases[1].keys()):
        where = f"{key[0]} ({key[1]})"
        if key not in cases[0] or key not in cases[1]:
            difference.verdicts.append(
                f"{where}: only in the {'second' if key in cases[1] else 'first'} report"
            )
        else:
            _compare_case(where, cases[0][key], cases[1][key], difference)
    probes = [_probe_records(report) for report in (before, after)]
    for key in sorted(probes[0].keys() | probes[1].keys()):
        old, new = probes[0].get(key, {}), probes[1].get(key, {})
        where = "probe " + " ".join(key)
        for name in PROBE_KEYS:
            if old.get(name) != new.get(name):
                difference.verdicts.append(f"{where}: {name} {old.get(name)!r} -> {new.get(name)!r}")
        if "max_error_over_allowance" in old and "max_error_over_allowance" in new:
            values = [_number(r["max_error_over_allowance"]) for r in (old, new)]
            if _relative(*values) > 0:
                difference.ratios.append((f"{where} max_error_over_allowance", *values))
    difference.speeds_moved = speed_diff.moved(before, after)
    difference.speed_contradictions = speed_diff.contradictions(before, after)
    return difference


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crosscheck.reporting.report_diff", description=__doc__.split("\n")[0]
    )
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument(
        "--ratio-tolerance", type=float, default=0.0, metavar="R", help="relative (default 0)"
    )
    parser.add_argument("--speed", action="store_true", help="fail too when a speed claim contradicts")
    args = parser.parse_args(argv)
    reports = []
    for path in (args.before, args.after):
        with open(path) as file:
            reports.append(json.load(file))
    difference = compare_reports(*reports)
    moved = [r for r in difference.ratios if _relative(r[1], r[2]) > args.ratio_tolerance]
    cases, probed = len(reports[0]["cases"]), len(_probe_records(reports[0]))
    print(f"{cases} cases and {probed} probe records compared")
    print(f"verdicts that differ: {len(difference.verdicts)}", *difference.verdicts, sep="\n  ")
    largest = difference.largest_ratio_change
    print(f"ratios that moved: {len(difference.ratios)}; largest relative change {largest:.3g}")
    for where, old, new in sorted(moved, key=lambda r: -_relative(r[1], r[2]))[:20]:
        print(f"  {where}: {old:.17g} -> {new:.17g}")
    print(f"speed ratios whose intervals do not overlap: {len(difference.speeds_moved)}")
    for where, old, new in difference.speeds_moved:
        print(f"  {where}: {speed_diff.cell(old)} -> {speed_diff.cell(new)}")
    contradicting = difference.speed_contradictions
    print(f"speed claims that contradict: {len(contradicting)}", *contradicting, sep="\n  ")
    return 1 if difference.verdicts or moved or (args.speed and contradicting) else 0


if __name__ == "__main__":
    sys.exit(main())
