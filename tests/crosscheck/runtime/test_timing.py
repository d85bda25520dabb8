"""The one timing engine: the first call apart, inputs rotating, calls interleaved round by round."""

import time

import chex
import jax
import numpy as np
import pytest

from crosscheck.porting.evaluate import cast_inputs
from crosscheck.runtime.timing import ROTATE, measure, prepare, prepare_pair, time_call
from crosscheck.suite.cases import all_cases
from crosscheck.suite.pairs import build_pair


def test_time_call_rotates_inputs_and_reports_the_first_call_apart():
    seen = []
    timing = time_call(
        lambda x: seen.append(float(x[0])), lambda i: (np.full(2, i + 1.0),), sync=lambda r: r, repeats=4
    )
    # the first call (input set 0), the warm-up round (set 1), then four rounds rotating over the sets
    assert seen == [1.0, 2.0, 1.0, 2.0, 3.0, 1.0] and timing.repeats == 4 and timing.compile_s > 0


def test_measure_interleaves_the_calls_one_group_after_the_other_in_every_round():
    order = []
    prepared = {
        (group, name): prepare(
            lambda x, tag=(group, name): order.append(tag), lambda i: (i,), sync=lambda r: r, group=group
        )
        for group in ("jax", "torch")
        for name in ("a", "b")
    }
    order.clear()
    timings = measure(prepared, repeats=3)
    rounds = [order[i : i + 4] for i in range(4, len(order), 4)]  # after the warm-up round
    assert len(rounds) == 3 and all(
        {t[0] for t in r[:2]} == {"jax"} and {t[0] for t in r[2:]} == {"torch"} for r in rounds
    )
    assert all(t.repeats == 3 and t.min_s <= t.median_s <= t.max_s for t in timings.values())
    assert all(len(t.samples_s) == 3 and min(t.samples_s) == t.min_s for t in timings.values())
    assert "samples_s" not in timings["jax", "a"].as_dict()  # the summary alone; the rounds apart


def test_without_a_number_of_rounds_the_budget_decides_within_its_limits():
    timing = time_call(lambda x: x, lambda i: (i,), sync=lambda r: r)
    assert 5 <= timing.repeats <= 200 and ROTATE == 3


def test_a_smaller_budget_takes_fewer_rounds_but_never_fewer_than_five():
    def rounds(budget_s: float) -> int:
        prepared = {0: prepare(lambda x: time.sleep(0.002), lambda i: (i,), sync=lambda r: r)}
        return measure(prepared, budget_s=budget_s)[0].repeats

    assert rounds(0.001) == 5 and 5 < rounds(0.05) < rounds(0.2)


def test_a_budget_that_is_not_above_zero_is_refused():
    prepared = {0: prepare(lambda x: x, lambda i: (i,), sync=lambda r: r)}
    with pytest.raises(ValueError, match="measure: budget_s must be above 0 seconds, got 0.0"):
        measure(prepared, budget_s=0.0)


def test_zero_rounds_is_refused():
    with pytest.raises(ValueError, match="measure: repeats must be at least 1, got 0"):
        time_call(lambda x: x, lambda i: (i,), sync=lambda r: r, repeats=0)


# One case per jaxlin module and impl (the torch side and the other pooled variants trace the same way).
TRACED_CASES = [
    "linear",
    "pointwise-matmul",
    "pointwise-conv",
    "pooled-hidden-relu-masked-reorder",
    "pooled-output-linear-full-literal",
    "perhead-einsum-bmm",
    "perhead-vmap-bmm",
    "perhead-loop-bmm",
    "collapse",
]


@pytest.mark.slow  # deselect with -m "not slow" (README)
@pytest.mark.parametrize("name", TRACED_CASES)
def test_crosscheck_runs_timed_jax_calls_trace_once_each(monkeypatch, name):
    # The forward through jaxlin.jitted and the jitted gradient: two traces of the module, then none.
    case = all_cases()[name]
    pair = build_pair(case, "float32")
    cls = type(pair.jax)
    chex.clear_trace_counter()
    monkeypatch.setattr(cls, "__call__", chex.assert_max_traces(cls.__call__, n=2))
    argsets = [
        cast_inputs(case.make_inputs(np.random.default_rng(i)), np.dtype("float32")) for i in range(ROTATE)
    ]
    torch_argsets = [case.torch_inputs(args) for args in argsets]
    prepared = prepare_pair(
        pair.jax, pair.torch, argsets, torch_argsets, device=jax.devices("cpu")[0], torch_device="cpu"
    )
    assert all(t.repeats == 4 for t in measure(prepared, repeats=4).values())
