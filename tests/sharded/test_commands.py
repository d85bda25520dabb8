"""``crosscheck run --mesh data=2,heads=4`` checks the per-head and linear cases sharded against
torch_ref on one device and float64 truth, and records the mesh; the study adds its scaling rows."""

import json

from crosscheck.cli import main as cli_main


def test_run_on_the_mesh_passes_and_records_it(tmp_path, capsys):
    argv = ["run", "--mesh", "data=2,heads=4", "--cases", "linear,perhead-einsum-*,pointwise-*", "--dtype", "float32",
            "--no-probe", "--repeats", "2", "--workers", "0", "--out", str(tmp_path)]  # fmt: skip
    assert cli_main(argv) == 0
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["environment"]["mesh"] == {"data": 2, "heads": 4}
    assert data["summary"]["passed"] == data["summary"]["cases"] == 6
    assert "6 cases: 6 passed, 0 failed" in capsys.readouterr().out


def test_the_study_checks_the_sharded_rows_agree_before_timing_them():
    from crosscheck.study import names
    from crosscheck.study.engine import run_config
    from crosscheck.study.sharded import sharded_per_head

    records = run_config(sharded_per_head(8, 32, (2, 4), 8), repeats=2)
    assert [r["impl"] for r in records] == [names.sharded_per_head(n) for n in (1, 2, 4, 8)]
    assert all(r["equal"] and r["median_s"] > 0 for r in records)
