"""The speed claims of ``crosscheck run`` reports side by side, and where they disagree.

A claim is a ratio of times with its interval (:mod:`crosscheck.runtime.ratio_intervals`): each
answer's speed and each timed entry's torch/jax ratio; and the per-head answer's fastest sets. Two
reports' claims **contradict** when one is faster and the other slower (both intervals beyond 1 ± 5%,
on opposite sides), or when their fastest sets share no implementation; "within noise" contradicts
neither. A ratio **moved** when the two intervals do not overlap.

    python -m crosscheck.reporting.speed_diff run1/report.json run2/report.json ...

prints every claim of every report (a Markdown table), then the contradictions between any two of
them; exits 1 when there is one.

>>> answer = {"question": "pointwise", "speed": {"torch": {"ratio": 1.7, "interval": [1.6, 1.8],
...           "confidence": 0.95, "rounds": 5}}}
>>> noisy = {"question": "pointwise", "speed": {"torch": {"ratio": 0.97, "interval": [0.8, 1.1],
...          "confidence": 0.95, "rounds": 5}}}
>>> contradictions({"answers": [answer]}, {"answers": [noisy]})
[]
>>> flipped = {"ratio": 0.7, "interval": [0.6, 0.8], "confidence": 0.95, "rounds": 5}
>>> contradictions({"answers": [answer]}, {"answers": [answer | {"speed": {"torch": flipped}}]})
['pointwise, torch_ref: Conv1d / Linear time: 1.7 (1.6–1.8) -> 0.7 (0.6–0.8)']
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys

from crosscheck.runtime.ratio_intervals import RatioInterval

FRAMEWORKS = {"jax": "jaxlin", "torch": "torch_ref"}
MEANINGS = {
    "pooling": "pool last / pool first time",
    "pointwise": "Conv1d / Linear time",
    "batch_size": "BatchInvariantLinear / Linear time",
    "per_head": "torch_ref's fastest / jaxlin's fastest time",
}
ENTRY_RATIOS = {
    "speed_ratio": "torch/jax forward",
    "speed_ratio_forward_backward": "torch/jax forward+backward",
}


def speed_claims(report: dict) -> dict[str, RatioInterval]:
    """Every ratio with an interval in a parsed ``report.json``, by a name that says what it divides."""
    claims = {}
    for answer in report.get("answers", []):
        question, speed = answer["question"], answer.get("speed") or {}
        if "interval" in speed:
            claims[f"{question}: {MEANINGS[question]}"] = RatioInterval.from_dict(speed)
        for framework, ratio in speed.items():
            if isinstance(ratio, dict) and "interval" in ratio:
                where = f"{question}, {FRAMEWORKS[framework]}: {MEANINGS[question]}"
                claims[where] = RatioInterval.from_dict(ratio)
    for entry in report.get("timing", {}).get("entries", []):
        for key, meaning in ENTRY_RATIOS.items():
            if f"{key}_interval" in entry:
                low, high = (float(value) for value in entry[f"{key}_interval"])
                rounds = entry["timings"]["jax"]["forward"]["repeats"]
                claims[f"timing {entry['name']}: {meaning}"] = RatioInterval(
                    float(entry[key]), low, high, rounds
                )
    return claims


def fastest_sets(report: dict) -> dict[str, list[str]]:
    """The per-head answer's fastest implementations of each framework, with those within noise of it."""
    sets = {}
    for answer in report.get("answers", []):
        for framework, fastest in (answer.get("fastest") or {}).items():
            where = f"{answer['question']}: {FRAMEWORKS[framework]}'s fastest"
            sets[where] = fastest.get("within_noise") or [fastest["impl"]]
    return sets


def cell(ratio: RatioInterval) -> str:
    """``"1.7 (1.6–1.8)"``, with ``" ≈"`` after it when the interval is within noise."""
    return f"{ratio.ratio:.3g} ({ratio.low:.3g}–{ratio.high:.3g})" + (" ≈" if ratio.side == 0 else "")


def contradictions(before: dict, after: dict) -> list[str]:
    """The claims on which two parsed reports contradict each other (see the module docstring)."""
    found = []
    claims = [speed_claims(report) for report in (before, after)]
    for where in [where for where in claims[0] if where in claims[1]]:
        old, new = claims[0][where], claims[1][where]
        if old.side * new.side == -1:
            found.append(f"{where}: {cell(old)} -> {cell(new)}")
    sets = [fastest_sets(report) for report in (before, after)]
    for where in [where for where in sets[0] if where in sets[1]]:
        if not set(sets[0][where]) & set(sets[1][where]):
            found.append(f"{where}: {', '.join(sets[0][where])} -> {', '.join(sets[1][where])}")
    return found


def moved(before: dict, after: dict) -> list[tuple[str, RatioInterval, RatioInterval]]:
    """``(where, before, after)`` for every ratio whose two intervals do not overlap."""
    claims = [speed_claims(report) for report in (before, after)]
    return [
        (where, old, claims[1][where])
        for where, old in claims[0].items()
        if where in claims[1] and (old.high < claims[1][where].low or claims[1][where].high < old.low)
    ]


def claims_table(reports: list[dict]) -> list[str]:
    """A Markdown table: one row per claim, one column per report (each cell :func:`cell`)."""
    claims = [speed_claims(report) for report in reports]
    sets = [fastest_sets(report) for report in reports]
    names = list(dict.fromkeys(where for found in claims + sets for where in found))
    lines = ["| claim | " + " | ".join(f"run {i}" for i in range(1, len(reports) + 1)) + " |"]
    lines.append("|---" * (len(reports) + 1) + "|")
    for where in names:
        cells = [
            cell(found[where]) if where in found else ", ".join(tied.get(where, ["–"]))
            for found, tied in zip(claims, sets, strict=True)
        ]
        lines.append(f"| {where} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crosscheck.reporting.speed_diff", description=__doc__.split("\n")[0]
    )
    parser.add_argument("reports", nargs="+", metavar="REPORT")
    args = parser.parse_args(argv)
    reports = []
    for path in args.reports:
        with open(path) as file:
            reports.append(json.load(file))
    print(*claims_table(reports), sep="\n")
    found = [
        f"runs {i} and {j}: {text}"
        for (i, a), (j, b) in itertools.combinations(enumerate(reports, 1), 2)
        for text in contradictions(a, b)
    ]
    print(f"\ncontradictions between any two runs: {len(found)}", *found, sep="\n  ")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
