"""What ``crosscheck run`` times: one entry per distinct computation, at the seed shapes, each entry
chosen when a case it covers is checked."""

import pytest

from crosscheck.suite import cases, seed_shapes
from crosscheck.suite.seed_timing import MIN_ROUNDS, rounds_for

DEFAULT = [
    "linear",
    "batch-invariant-linear",
    "pointwise-matmul",
    "pointwise-conv",
    "pooled-output-linear-full-reorder",
    "pooled-output-linear-full-literal",
    "perhead-einsum-bmm",
    "perhead-vmap-vmap",
]


def test_the_default_run_times_one_entry_per_distinct_computation():
    chosen = seed_shapes.timed_entries(list(cases.all_cases()), probe=True)
    assert [entry.name for entry in chosen] == DEFAULT


def test_every_case_is_covered_and_entries_cover_only_real_cases():
    names = set(cases.all_cases())
    covered = {name for entry in seed_shapes.all_timed_entries() for name in entry.covers}
    assert covered == names  # every check case has its computation timed somewhere
    pooled = {e.name: set(e.covers) for e in seed_shapes.all_timed_entries() if e.name.startswith("pooled-")}
    first, last = pooled["pooled-output-linear-full-reorder"], pooled["pooled-output-linear-full-literal"]
    assert not first & last and len(first) == len(last) == 12
    assert (
        "pooled-hidden-relu-full-reorder" in last
    )  # computes at the hidden stage: projector on every position


@pytest.mark.parametrize(
    ("checked", "probe", "timed"),
    [
        (["pooled-input-relu-masked-literal"], False, ["pooled-output-linear-full-reorder"]),
        (["perhead-loop-loop"], False, ["perhead-einsum-bmm"]),  # the loops are checked, not timed
        (["perhead-einsum-vmap"], False, ["perhead-einsum-bmm", "perhead-vmap-vmap"]),
        (["collapse"], False, ["linear"]),
        ([], True, ["linear", "batch-invariant-linear"]),  # the probe's question: Linear and its fix
        ([], False, []),
    ],
)
def test_an_entry_is_timed_when_a_case_it_covers_is_checked(checked, probe, timed):
    assert [entry.name for entry in seed_shapes.timed_entries(checked, probe=probe)] == timed


def test_the_entries_run_at_the_seed_shapes(rng):
    shapes = {}
    for entry in seed_shapes.all_timed_entries():
        (x,) = entry.case.make_inputs(rng)
        (one,) = entry.dispatch_inputs(rng)
        assert x.dtype == one.dtype == "float32" and x.min() < 0 < x.max()  # never zeros
        heads = 16 if entry.name.startswith("perhead-") else 1
        assert one.size == heads * one.shape[-1]  # one row: what a call costs beyond its arithmetic
        shapes[entry.name] = x.shape
    assert shapes["pooled-output-linear-full-literal"] == (16, 2048, 512)  # the study's pooled rows
    assert shapes["perhead-einsum-bmm"] == (32, 64, 16, 128)  # 32×64 rows, 16 heads, 128 features
    assert shapes["linear"] == shapes["pointwise-conv"] == (16, 1024, 256)


def test_slow_rounds_get_fewer_rounds_but_never_fewer_than_the_engine_takes():
    assert rounds_for(1e-4, 10) == 10 and rounds_for(10.0, 10) == MIN_ROUNDS and rounds_for(10.0, 2) == 2


def test_the_entries_one_answer_compares_are_timed_in_the_same_rounds():
    group = {entry.name: entry.group for entry in seed_shapes.all_timed_entries()}
    assert group["linear"] == group["pointwise-conv"] == group["batch-invariant-linear"] != ""
    assert group["pooled-output-linear-full-reorder"] == group["pooled-output-linear-full-literal"] != ""
    assert group["perhead-einsum-bmm"] == group["perhead-vmap-vmap"] != ""
    assert len(set(group.values())) == 3


def test_a_group_gets_the_rounds_of_its_entries_budgets():
    assert rounds_for(0.2, 10, entries=4) == 8 and rounds_for(0.2, 10, entries=1) == MIN_ROUNDS
