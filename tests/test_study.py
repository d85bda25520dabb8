"""``crosscheck study --quick``: it runs, checks its formulations agree, writes every output, and
the HLO and target bookkeeping read what they should. No timing is asserted (DESIGN.md)."""

import csv
import json

import numpy as np
import pytest

from crosscheck import cli
from crosscheck.study import Config, Impl, dot_summary, run_config
from crosscheck.study_report import targets


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    status = cli.main(["study", "--quick", "--out", str(out)])
    return status, out


def test_quick_study_runs_and_every_formulation_agrees(quick_study):
    status, out = quick_study
    assert status == 0
    data = json.loads((out / "study.json").read_text())
    records = data["measurements"]
    assert {r["study"] for r in records} == {"peak", "per-head", "pointwise", "pooled", "invariant", "call-path", "bias"}
    errors = [r for r in records if "error" in r]
    assert errors == []
    assert all(r["equal"] for r in records)
    per_head = [r for r in records if r["study"] == "per-head"]
    impls = {r["impl"] for r in per_head}
    assert {"jaxlin einsum", "jaxlin vmap", "jaxlin loop", "jax.vmap (pure function)", "nnx.vmap stack (nnx.jit)",
            "einsum ...hi,hio->...ho", "torch_ref bmm", "torch_ref vmap", "torch_ref loop"} <= impls
    for r in per_head:
        assert r["median_s"] > 0 and r["spread_s"] >= 0 and r["repeats"] >= 3 and r["compile_s"] > 0
        assert r["gflops"] > 0 and r["peak_fraction"] > 0
    einsum = [r for r in per_head if r["impl"] in ("jaxlin einsum", "jaxlin vmap")]
    assert all(r["one_batched_dot"] for r in einsum)  # the compiled HLO holds one batched dot
    assert all(r["dots"] > 1 for r in per_head if r["impl"] == "jaxlin loop")


def test_quick_study_writes_csv_json_markdown_and_plots(quick_study):
    _, out = quick_study
    rows = list(csv.DictReader((out / "study.csv").open()))
    assert rows and {"study", "impl", "median_s", "gflops", "one_batched_dot"} <= set(rows[0])
    markdown = (out / "study.md").read_text()
    assert markdown.startswith("# crosscheck study") and "## Targets" in markdown and "## per-head" in markdown
    assert {p.name for p in out.glob("*.png")} >= {"study-per-head.png", "study-pointwise.png", "study-peak.png"}
    goals = json.loads((out / "study.json").read_text())["targets"]
    assert any(g["target"].startswith("recommended call path") and g["value"] > 0 for g in goals)


def test_a_formulation_that_computes_something_else_is_flagged_not_timed_as_equal():
    def make(seed, impl):
        return (np.random.default_rng(seed).standard_normal((4, 3)).astype(np.float32),)

    w = np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32)
    right = Impl("right", "jax", lambda x: x @ w)
    wrong = Impl("wrong", "jax", lambda x: x @ w * 1.001)
    magnitude = lambda inputs: np.abs(inputs[0].astype(np.float64)) @ np.abs(w)  # noqa: E731
    config = Config("demo", "4x3", {}, 24.0, make, [right, wrong], magnitude, k=3)
    first, second = run_config(config, repeats=3)
    assert first["equal"] and not second["equal"]
    assert second["error"] == "output differs from the first implementation beyond rounding"


def test_dot_summary_counts_dots_and_batch_dimensions():
    text = "%a = f32[8,8] dot(%x, %y), lhs_contracting_dims={1}\n%b = f32[2,8,8] dot(%p, %q), lhs_batch_dims={0}"
    assert dot_summary(text) == (2, True) and dot_summary("%c = f32[2] add(%a, %b)") == (0, False)


def test_targets_report_unmeasured_ones_as_such():
    goals = targets([])
    assert goals and all(g["met"] is None and g["value"] is None for g in goals if "PerHeadLinear" in g["target"])
