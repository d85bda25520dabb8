"""benchmarks/scale.py end to end at the tiny decoder (one job in its own process, then the table and the
plot), and its report on rows made up here: the fields are there and sane, the ratios computed, a job
that died is a row with its reason."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.report import derived, load, table

ROOT = Path(__file__).resolve().parents[2]
ROW = {
    "size": "decoder-small", "family": "decoder", "job": "locate-grads", "parameters": 31_000_000,
    "weight_bytes": 124_000_000, "largest_layer_float64_bytes": 131_000_000, "wall_s": 30.0,
    "job_peak_bytes": 2_000_000_000, "rss_built_bytes": 1_000_000_000, "items": 45, "judged": 45,
    "passed": True, "unavoidable": {"cold_s": 10.0, "warm_s": 2.0}, "status": "ok",
}  # fmt: skip


def test_the_ratios_and_the_table_of_a_row_and_of_a_failed_one(tmp_path):
    row = derived(ROW)
    assert (row["overhead"], row["overhead_warm"]) == (3.0, 15.0)
    assert row["peak_per_weights"] == pytest.approx(2e9 / 124e6)
    assert row["floor_bytes"] == 2 * 124_000_000 + 131_000_000
    killed = {"size": "decoder-1b", "job": "check", "status": "failed", "reason": "killed by SIGKILL"}
    path = tmp_path / "rows.jsonl"
    stopped = {"size": "decoder-small", "job": "check", "status": "failed", "reason": "stopped: memory"}
    later = (ROW, killed, ROW | {"wall_s": 20.0}, ROW | {"job": "check"}, stopped)
    path.write_text("".join(json.dumps(r) + "\n" for r in later))
    rows = load(path)
    assert [r["wall_s"] for r in rows if r["size"] == "decoder-small"] == [
        30.0,
        20.0,
    ]  # check, then locate-grads: its later row kept
    assert "- decoder-small check, a later run: stopped: memory" in table(rows)  # but not over a finished one
    text = table(rows)
    assert (
        "| decoder-small | 31 | 0.124 | locate-grads | pass | 45 (45) | 20.0 | 10.0 / 2.00 | 2.00 / 10 | – |"
        in text
    )
    assert (
        "| decoder-1b | – | – | check | failed |" in text and "- decoder-1b check: killed by SIGKILL" in text
    )


@pytest.mark.slow  # ~40 s: a fresh process imports jax, torch and transformers, builds, runs, compiles
def test_one_tiny_job_end_to_end(tmp_path):
    pytest.importorskip("transformers", reason="the hf extra (pip install -e '.[hf]') is not installed")
    command = [
        sys.executable,
        "-m",
        "benchmarks.scale",
        "--quick",
        "--sizes",
        "decoder-tiny",
        "--jobs",
        "check",
    ]
    done = subprocess.run(
        [*command, "--out", str(tmp_path), "--machine", "test"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    (row,) = [json.loads(line) for line in (tmp_path / "test.jsonl").read_text().splitlines()]
    assert row["status"] == "ok" and row["passed"] and row["items"] == 1
    assert row["wall_s"] > 0 and row["build_s"] > 0 and row["unavoidable"]["cold_s"] > 0
    assert set(row["unavoidable"]["passes"]) == {
        "torch_float32",
        "jax_float32",
        "jax_float64",
        "torch_float64",
    }
    assert row["unavoidable"]["widen_s"] > 0 and row["unavoidable"]["passes"]["jax_float64"]["widen_s"] > 0
    assert row["job_peak_bytes"] >= row["rss_built_bytes"] >= row["weight_bytes"] > 0
    assert row["lifetime_peak_bytes"] >= row["job_peak_bytes"]
    ratios = derived(row)
    assert ratios["overhead"] > 0 and ratios["overhead_warm"] > 0 and ratios["peak_per_weights"] >= 1
    assert "| decoder-tiny |" in (tmp_path / "test.md").read_text()
    if (tmp_path / "test.png").exists():  # the plot extra
        assert (tmp_path / "test.png").stat().st_size > 10_000


def test_a_row_stopped_in_the_unavoidable_work_borrows_it_from_the_unavoidable_job(tmp_path):
    partial = ROW | {"size": "decoder-1b", "job": "check", "status": "partial", "reason": "stopped"}
    del partial["unavoidable"]
    alone = {"size": "decoder-1b", "job": "unavoidable", "status": "ok", "unavoidable": {"cold_s": 15.0}}
    text = table([partial, alone])
    assert "| 15.0 / – † | 2.00 / – |" in text and "- †: the unavoidable work of" in text


def test_the_overhead_with_widening_adds_the_time_both_models_took_to_reach_float64():
    timed = ROW | {"unavoidable": {"cold_s": 10.0, "warm_s": 2.0, "widen_s": 2.0}}
    assert derived(timed)["overhead_widened"] == 2.5 and derived(ROW)["overhead_widened"] is None
    assert "| 3.00 / 15 | 2.00 | 2.50 |" in table([timed]) and "| 3.00 / 15 | – | – |" in table([ROW])


def test_a_job_without_gradients_is_set_against_the_forward_passes_alone():
    unavoidable = {"cold_s": 10.0, "warm_s": 2.0, "forward_cold_s": 4.0, "forward_warm_s": 0.5}
    row = derived(ROW | {"job": "locate", "unavoidable": unavoidable})
    assert (row["overhead"], row["overhead_warm"], row["unavoidable_forward"]) == (7.5, 60.0, True)
    assert "| 4.0 / 0.50 fwd | 7.50 / 60 |" in table([ROW | {"job": "locate", "unavoidable": unavoidable}])


def test_xla_memory_reports_both_programs_of_a_check_of_the_tiny_decoder():
    from benchmarks.xla_memory import program_memory

    parameters, rows = program_memory("decoder-tiny")
    assert parameters == 21_792  # the tiny decoder: 0.0218 M in docs/scale.md
    assert len(rows) == 1  # the suite runs in 64-bit mode: the working and float64 runs share a program
    assert rows[0]["argument_bytes"] >= 4 * parameters and rows[0]["output_bytes"] > 0
    assert rows[0]["temp_bytes"] >= 0
