"""docs/scripts/xla_cpu_flags.py: its measuring core in-process on tiny shapes (no subprocess, no timed
assertion), and its report from stub results."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "xla_cpu_flags", ROOT / "docs" / "scripts" / "xla_cpu_flags.py"
)
flags = importlib.util.module_from_spec(_spec)
sys.modules["xla_cpu_flags"] = flags  # dataclasses look their module up
_spec.loader.exec_module(flags)

TINY = {
    "gemm": ((8, 4, 4),),
    "batched": ((2, 4),),
    "per_head": ((2, 4),),
    "invariant": ((8, 4, 4),),
    "rows": 8,
    "leading": (2, 4),
}


def test_the_fingerprint_of_the_compiled_programs_is_the_same_twice():
    assert flags.programs_fingerprint(TINY, ("float32",)) == flags.programs_fingerprint(TINY, ("float32",))


def test_every_case_runs_in_both_dtypes_with_an_interval_per_ratio():
    records, kept = flags.run_setting(TINY, repeats=2)
    cases = {(r["dtype"], r["case"]) for r in records}
    assert len(cases) == 2 * 5  # per dtype: 1 GEMM, 1 batched, 2 per-head layouts, 1 Linear pair
    for record in records:
        for ratio in record["ratios"].values():
            low, high = ratio["interval"]
            assert ratio["rounds"] == 2 and 0 <= low <= high
    per_head = next(r for r in records if r["case"].startswith("PerHeadLinear") and r["dtype"] == "bfloat16")
    assert set(per_head["ratios"]) == {f"jaxlin {i} / best torch_ref" for i in ("loop", "einsum", "vmap")}
    assert per_head["best_torch"] in ("torch_ref bmm", "torch_ref vmap")
    assert "impl=auto takes" in per_head["note"]
    assert all(rows.dtype == np.float32 and rows.shape[0] <= flags.KEPT_ROWS for rows in kept.values())


def _stub(slug, flags_, diff):
    ratio = {"ratio": 1.2, "interval": [1.1, 1.3], "confidence": 0.95, "rounds": 5, "denominator": "t"}
    records = [
        {"dtype": d, "case": "GEMM 8×4×4", "group": "gemm", "median_ms": {"jnp.matmul": 1.0, "t": 0.8},
         "best_torch": "t", "ratios": {"jax / torch": ratio}, "rounds": 5}
        for d in flags.DTYPES
    ]  # fmt: skip
    rows = {f"{d}|GEMM 8×4×4|jnp.matmul": np.full((2, 4), 1.0 + diff, np.float32) for d in flags.DTYPES}
    programs = {d: "ynn_fusion" for d in flags.DTYPES}
    return {"flags": flags_, "status": "ok", "records": records, "programs": programs, "kept": rows}


def test_the_report_names_the_machine_and_each_settings_difference_from_the_default(tmp_path):
    results = {
        "default": _stub("default", "", 0.0),
        "ynn-dot": _stub("ynn-dot", "--xla_cpu_experimental_ynn_fusion_type=dot", 0.5),
        "bad": {"flags": "--xla_cpu_nope=1", "status": "not accepted"},
        "same": {"flags": "--xla_cpu_use_onednn=true", "status": flags.SAME, "records": [], "programs": {}},
    }
    flags.differences(results)
    assert results["ynn-dot"]["max_abs_diff_vs_default"] == {"float32": 0.5, "bfloat16": 0.5}
    assert "kept" not in results["default"]
    report = {
        "machine": {"cpu": "AMD EPYC 7B13", "cores": 2, "cpu_flags": ["avx512_bf16"], "python": "3.11"},
        "command": "python docs/scripts/xla_cpu_flags.py",
        "date": "2026-12-05 13:15 UTC",
        "wall_s": 600.0,
        "load_start": [1.0, 1.0, 1.0],
        "load_end": [2.0, 1.5, 1.0],
        "repeats": 5,
        "versions": {"jax": "0.10.2"},
        "settings": results,
    }
    json_path, md_path = flags.write_report(report, tmp_path)
    assert json_path.name == "amd-epyc-2cores.json" and md_path.name == "amd-epyc-2cores.md"
    assert json.loads(json_path.read_text())["settings"]["bad"]["status"] == "not accepted"
    text = md_path.read_text()
    assert "AMD EPYC 7B13, 2 cores" in text and "load average at start [1.0, 1.0, 1.0]" in text
    assert "| GEMM 8×4×4 | jax / torch | 1.20 [1.10–1.30] | 1.20 [1.10–1.30] |" in text
    assert "| bad | `--xla_cpu_nope=1` | not accepted |" in text
    assert f"| same | `--xla_cpu_use_onednn=true` | {flags.SAME} |" in text  # no column of its own
    assert "0.5 (1)" in text  # the difference beside the output's scale
    assert "| float32 | gemm | 1.00 (1.00) | 1.00 (1.00) |" in text  # each setting over the default


@pytest.mark.parametrize(
    "cpu, slug",
    [
        ("AMD EPYC 9R14 96-Core Processor", "amd-epyc-2cores"),
        ("Intel(R) Xeon(R) Platinum 8488C", "intel-xeon-2cores"),
    ],
)
def test_machine_slug(cpu, slug):
    assert flags.machine_slug({"cpu": cpu, "cores": 2}) == slug
