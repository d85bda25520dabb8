"""The study's engine: a formulation that computes something else is flagged, and the HLO dot count
reads what it should. No timing is asserted (DESIGN.md)."""

import chex
import numpy as np
from flax import nnx

import jaxlin
from crosscheck.study import names
from crosscheck.study.engine import Config, Impl, dot_summary, run_config
from crosscheck.study.parity import HEADS_FIRST, HEADS_LAST, parity_rows
from crosscheck.study.per_head import per_head


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
    text = (
        "%a = f32[8,8] dot(%x, %y), lhs_contracting_dims={1}\n%b = f32[2,8,8] dot(%p, %q), lhs_batch_dims={0}"
    )
    assert dot_summary(text) == (2, True) and dot_summary("%c = f32[2] add(%a, %b)") == (0, False)


def test_the_per_head_studys_timed_calls_trace_once_each(monkeypatch):
    # Five jaxlin modules (auto, three impls and heads-first) and one nnx.vmap stack: one trace each covers
    # the check, the HLO and every timed round; a retrace is an error record or raises from the timing.
    chex.clear_trace_counter()
    for cls, modules in ((jaxlin.PerHeadLinear, 5), (nnx.Linear, 1)):
        monkeypatch.setattr(cls, "__call__", chex.assert_max_traces(cls.__call__, n=modules))
    records = run_config(per_head(4, 32, (2, 4), "cpu", compiled=False), repeats=3)
    assert [r["impl"] for r in records if "error" in r] == []
    assert all(r["equal"] and r["repeats"] == 3 for r in records)
    # kernel parity: both frameworks' plain batched GEMM, checked equal (bias added back), for both layouts
    assert {names.JAX_BMM, names.TORCH_BMM} <= {r["impl"] for r in records}
    assert [row.layout for row in parity_rows(records)] == [HEADS_LAST, HEADS_FIRST]
