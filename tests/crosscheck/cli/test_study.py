"""``crosscheck study --quick``: it runs, every formulation agrees, every output is written. No timing
is asserted (DESIGN.md)."""

import contextlib
import csv
import io
import json

import pytest

from crosscheck.cli import main as cli_main
from crosscheck.study import plan

pytestmark = pytest.mark.slow  # deselect with -m "not slow" (README)


def test_one_quick_study_runs_agrees_writes_its_files_and_reports_what_it_measured(tmp_path, monkeypatch):
    """One test, not one per property: the study takes about two minutes on two cores, and tests sharing
    a module-scoped run are split across the two test workers, each making the run again. What is
    tested is what runs and what is written, not the numbers: each call is timed its minimum rounds
    (the budget's own rule has its tests in tests/crosscheck/runtime)."""
    monkeypatch.setattr(plan, "QUICK_BUDGET_S", 1e-3)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = cli_main(["study", "--quick", "--out", str(tmp_path)])
    (tmp_path / "terminal.txt").write_text(printed.getvalue())
    _every_formulation_agrees(status, tmp_path)
    _writes_csv_json_markdown_and_plots(tmp_path)
    _reports_what_it_measured_first_and_what_a_not_met_means(status, tmp_path)


def _every_formulation_agrees(status, out):
    assert status == 0
    data = json.loads((out / "study.json").read_text())
    records = data["measurements"]
    assert {r["study"] for r in records} == {
        "peak",
        "bandwidth",
        "per-head",
        "block",
        "pointwise",
        "pooled",
        "invariant",
        "call-path",
        "bias",
        "linear-rows",
        "bf16-per-head",
        "bf16-linear",
    }
    errors = [r for r in records if "error" in r]
    assert errors == []
    assert all(r["equal"] for r in records if "note" not in r)
    assert {r["impl"] for r in records if "note" in r and r["study"] != "bias"} == {
        "jnp.mean over the sequence (the bare mean, for scale)",
        "jax x + 1 (read and write)",
        "torch x + 1 (read and write)",
        "jax GEMM then batched GEMM, no copy, kernel parity",  # the block's two plain GEMMs: its kernel parity
        "torch.mm then torch.bmm, no copy, kernel parity",
    }
    per_head = [r for r in records if r["study"] == "per-head"]
    impls = {r["impl"] for r in per_head}
    assert {
        "jaxlin auto (the default)",
        "jaxlin einsum",
        "jaxlin vmap",
        "jaxlin loop",
        "jax.vmap (pure function)",
        "nnx.vmap stack (nnx.jit)",
        "einsum ...hi,hio->...ho",
        "torch_ref bmm",
        "torch_ref vmap",
        "torch_ref loop",
    } <= impls
    for r in per_head:
        assert r["median_s"] > 0 and r["spread_s"] >= 0 and r["repeats"] >= 3 and r["compile_s"] > 0
        assert (
            r["gflops"] > 0
            and r["gbps"] > 0
            and 0 < r["roofline_fraction"]
            and r["bound"] in ("compute", "memory")
        )
    bf16 = [r for r in records if r["study"] in ("bf16-per-head", "bf16-linear")]
    assert [r["impl"] for r in bf16 if r["framework"] == "jax"][:2] == [
        "jaxlin PerHeadLinear float32 (the check’s reference)",  # every bfloat16 output checked against it
        "jaxlin PerHeadLinear auto (the default), bfloat16",
    ]
    assert all(r["equal"] and "roofline_fraction" not in r for r in bf16)  # the roofline is float32's
    einsum = [r for r in per_head if r["impl"] in ("jaxlin einsum", "jaxlin vmap")]
    assert all(r["one_batched_dot"] for r in einsum)  # the compiled HLO holds one batched dot
    assert all(r["dots"] > 1 for r in per_head if r["impl"] == "jaxlin loop")


def _writes_csv_json_markdown_and_plots(out):
    rows = list(csv.DictReader((out / "study.csv").open()))
    assert rows and {"study", "impl", "median_s", "gflops", "one_batched_dot"} <= set(rows[0])
    markdown = (out / "study.md").read_text()
    assert (
        markdown.startswith("# crosscheck study") and "## Targets" in markdown and "## per-head" in markdown
    )
    assert {p.name for p in out.glob("*.png")} >= {
        "study-per-head.png",
        "study-roofline.png",
        "study-pointwise.png",
        "study-block.png",
        "study-linear-rows.png",
    }
    assert "## Roofline of this run" in markdown and "### Compiled programs of the block" in markdown
    assert "## Kernel parity" in markdown  # every per-head row in both layouts, and the block
    parity_rows = json.loads((out / "study.json").read_text())["kernel_parity"]
    assert len(parity_rows) == 11  # and the two bfloat16 rows, each with its bfloat16 GEMMs
    assert [row["study"] for row in parity_rows if "bfloat16" in row["config"]] == [
        "bf16-per-head",
        "bf16-linear",
    ]
    assert "study-bf16-per-head.png" in {p.name for p in out.glob("*.png")}
    goals = json.loads((out / "study.json").read_text())["targets"]
    assert any(g["target"].startswith("recommended call path") and g["value"] > 0 for g in goals)


def _reports_what_it_measured_first_and_what_a_not_met_means(status, out):
    lines = (out / "terminal.txt").read_text().splitlines()
    assert lines[0].startswith("quick mode: every study once at small sizes")
    assert lines[2].startswith("targets measured in this run: ")
    verdicts = [i for i, line in enumerate(lines) if line.lstrip().startswith(("met ", "NOT MET "))]
    unmeasured = [i for i, line in enumerate(lines) if line.startswith("not measured (")]
    assert verdicts and len(unmeasured) == 1 and unmeasured[0] > max(verdicts)
    assert "PooledHead reorder speed-up" in lines[unmeasured[0]]
    if any("NOT MET " in lines[i] for i in verdicts):  # timings decide; the explanation must follow
        assert status == 0 and any("not a correctness failure" in line for line in lines)
    markdown = (out / "study.md").read_text()
    targets = markdown[markdown.index("## Targets") : markdown.index("## Roofline of this run")]
    assert targets.index("Quick mode:") < targets.index("| target |") < targets.index("Not measured in")
    assert "| – |" not in targets  # no unmeasured row in the table
