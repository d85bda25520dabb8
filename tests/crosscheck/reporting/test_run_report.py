"""The report of ``crosscheck run``: strict JSON whatever the metrics, and atomic writes that leave a
previous report whole when anything fails."""

import json
import os

import pytest

from crosscheck.reporting import documents
from crosscheck.reporting import run_report as report


def _report() -> dict:
    return report.build_report({"command": "crosscheck run"}, [report.error_record("linear", "float32", "x")])


@pytest.mark.parametrize("crash", ["dumps", "fsync", "replace"])
def test_a_crash_while_writing_leaves_no_half_file(crash, tmp_path, monkeypatch):
    (tmp_path / "report.json").write_text('{"old": true}\n')  # a previous run's report survives whole

    def boom(*args, **kwargs):
        raise OSError("disk on fire")

    target = {"dumps": (documents.json, "dumps"), "fsync": (os, "fsync"), "replace": (os, "replace")}[crash]
    monkeypatch.setattr(*target, boom)
    with pytest.raises(OSError, match="disk on fire"):
        report.write_report(tmp_path, _report())
    assert sorted(os.listdir(tmp_path)) == ["report.json"]
    assert (tmp_path / "report.json").read_text() == '{"old": true}\n'


def test_report_json_is_strict_even_with_infinite_metrics(tmp_path):
    tier = {"passed": False, "actual_bound_ratio": float("inf"), "actual_max_error": float("nan")}
    record = report.error_record("a", "float32", "e")
    record["items"] = [
        {"item": "output", "k": 3, "same_function": tier, "rounding": tier, "cross_bound_ratio": 0.5}
    ]
    report.write_report(tmp_path, report.build_report({}, [record]))
    rounding = json.loads((tmp_path / "report.json").read_text())["cases"][0]["items"][0]["rounding"]
    assert rounding["actual_bound_ratio"] == "inf" and rounding["actual_max_error"] == "nan"
    assert "| a | float32 | inf× (nan) |" in (tmp_path / "report.md").read_text()
