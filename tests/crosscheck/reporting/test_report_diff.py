"""Comparing two reports' verdicts and ratios: what made sure the faster ``crosscheck run`` judges
exactly as the old one did (docs/crosscheck-run.md)."""

import copy
import json

from crosscheck.reporting.report_diff import compare_reports, main

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
