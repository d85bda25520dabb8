"""Comparing two reports' verdicts and ratios: what made sure the faster ``crosscheck run`` judges
exactly as the old one did (docs/crosscheck-run.md)."""

import copy
import json

from crosscheck.reporting.report_diff import compare_reports, main
from crosscheck.reporting.speed_diff import main as speed_main

TIER = {"passed": True, "actual_bound_ratio": 0.25, "expected_bound_ratio": 0.5, "max_abs": 1e-7}
ITEM = {"item": "output", "k": 33, "same_function": TIER, "rounding": TIER, "cross_bound_ratio": 0.1}
PROBE = {"module": "linear", "framework": "jaxlin", "mode": "jax.jit", "dtype": "float32", "passed": True}
REPORT = {
    "cases": [{"name": "linear", "dtype": "float32", "passed": True, "problems": [], "items": [ITEM]}],
    "batch_probe": {
        "records": [
            PROBE | {"verdict": "varies", "differing_batch_sizes": [2], "max_error_over_allowance": 0.04}
        ]
    },
}


def _write(tmp_path, name: str, report: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(report))
    return str(path)


def test_the_same_report_has_no_difference(tmp_path, capsys):
    difference = compare_reports(REPORT, copy.deepcopy(REPORT))
    assert difference.verdicts == [] and difference.ratios == [] and difference.largest_ratio_change == 0
    assert main([_write(tmp_path, "a.json", REPORT), _write(tmp_path, "b.json", REPORT)]) == 0
    assert "verdicts that differ: 0" in capsys.readouterr().out


def test_a_changed_verdict_fails_whatever_the_tolerance(tmp_path):
    failed = copy.deepcopy(REPORT)
    failed["cases"][0] |= {"passed": False, "problems": ["rounding"]}
    failed["cases"][0]["items"][0]["rounding"] = TIER | {"passed": False}
    difference = compare_reports(REPORT, failed)
    assert difference.verdicts == [
        "linear (float32): passed True -> False",
        "linear (float32): problems [] -> ['rounding']",
        "linear (float32) output: rounding.passed True -> False",
    ]
    argv = [_write(tmp_path, "a.json", REPORT), _write(tmp_path, "b.json", failed), "--ratio-tolerance", "1"]
    assert main(argv) == 1


def test_a_moved_ratio_is_measured_and_judged_against_the_tolerance(tmp_path):
    moved = copy.deepcopy(REPORT)
    moved["cases"][0]["items"][0]["rounding"] = TIER | {"expected_bound_ratio": 0.5 * (1 + 1e-12)}
    difference = compare_reports(REPORT, moved)
    assert difference.verdicts == [] and [r[0] for r in difference.ratios] == [
        "linear (float32) output rounding.expected_bound_ratio"
    ]
    assert abs(difference.largest_ratio_change - 1e-12) < 1e-15
    paths = [_write(tmp_path, "a.json", REPORT), _write(tmp_path, "b.json", moved)]
    assert main(paths) == 1 and main([*paths, "--ratio-tolerance", "1e-9"]) == 0


def test_probe_records_and_missing_cases_are_compared():
    other = copy.deepcopy(REPORT)
    other["batch_probe"]["records"][0]["differing_batch_sizes"] = []
    other["cases"].append({"name": "collapse", "dtype": "float32", "passed": True, "items": []})
    assert sorted(compare_reports(REPORT, other).verdicts) == [
        "collapse (float32): only in the second report",
        "probe linear jaxlin jax.jit float32: differing_batch_sizes [2] -> []",
    ]


def _speed(ratio: float, low: float, high: float) -> dict:
    return {"ratio": ratio, "interval": [low, high], "confidence": 0.95, "rounds": 10}


def _timed(answer: dict, entry_interval: list[float]) -> dict:
    timings = {"jax": {"forward": {"repeats": 10}}}
    entry = {"name": "linear", "speed_ratio": sum(entry_interval) / 2, "speed_ratio_interval": entry_interval}
    return REPORT | {
        "answers": [{"question": "pointwise", "speed": {"torch": answer}}],
        "timing": {"entries": [entry | {"timings": timings}]},
    }


def test_speed_ratios_move_only_when_their_intervals_part_and_contradict_only_across_one(tmp_path, capsys):
    before = _timed(_speed(1.5, 1.4, 1.6), [1.1, 1.3])
    overlapping = _timed(_speed(1.3, 1.0, 1.45), [1.25, 1.5])  # within noise now: no contradiction
    difference = compare_reports(before, overlapping)
    assert difference.speeds_moved == [] and difference.speed_contradictions == []
    flipped = _timed(_speed(0.8, 0.7, 0.9), [1.4, 1.6])
    difference = compare_reports(before, flipped)
    assert [where for where, _, _ in difference.speeds_moved] == [
        "pointwise, torch_ref: Conv1d / Linear time",
        "timing linear: torch/jax forward",
    ]
    assert difference.speed_contradictions == [
        "pointwise, torch_ref: Conv1d / Linear time: 1.5 (1.4–1.6) -> 0.8 (0.7–0.9)"
    ]
    paths = [_write(tmp_path, name, report) for name, report in (("a.json", before), ("b.json", flipped))]
    assert main(paths) == 0 and main([*paths, "--speed"]) == 1  # timed: a failure only when asked
    assert "speed claims that contradict: 1" in capsys.readouterr().out


def test_the_speed_table_of_several_runs(tmp_path, capsys):
    reports = [_timed(_speed(1.5, 1.4, 1.6), [1.1, 1.3]), _timed(_speed(1.2, 1.0, 1.3), [1.1, 1.2])]
    paths = [_write(tmp_path, f"{i}.json", report) for i, report in enumerate(reports)]
    assert speed_main(paths) == 0
    out = capsys.readouterr().out
    assert "| pointwise, torch_ref: Conv1d / Linear time | 1.5 (1.4–1.6) | 1.2 (1–1.3) ≈ |" in out
    assert "contradictions between any two runs: 0" in out
