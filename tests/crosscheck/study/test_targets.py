"""The study's targets: a declarative table over named constants, each read from one run's records."""

from crosscheck.study import names
from crosscheck.study.plan import plan
from crosscheck.study.target_kinds import FASTEST_TORCH, Ratio, WorstRatio, evaluate
from crosscheck.study.targets import TARGETS, named_impls


def test_targets_report_unmeasured_ones_as_such():
    goals = evaluate(TARGETS, [])
    assert goals and all(
        g["met"] is None and g["value"] is None for g in goals if "PerHeadLinear" in g["target"]
    )


def test_every_implementation_a_target_reads_is_built_by_the_full_plan():
    built = set()
    for step in plan(quick=False, device="cpu", compiled=True):
        cheap = {names.POINTWISE, names.POOLED, names.INVARIANT, names.CALL_PATH, names.BIAS, names.BLOCK}
        if step.study in cheap | {names.LINEAR_ROWS, names.BANDWIDTH}:
            built |= {impl.name for impl in step.build().impls}
    built |= {getattr(names, n) for n in dir(names) if n.isupper() and isinstance(getattr(names, n), str)}
    assert named_impls() <= built


def _record(config, impl, median, **sizes):
    return {
        "study": "s",
        "config": config,
        "impl": impl,
        "framework": "torch" if impl.startswith("t") else "jax",
        "median_s": median,
        **sizes,
    }


def test_a_ratio_is_read_by_sizes_and_names_not_by_display_text():
    records = [
        _record("any label", "ours", 2.0, rows=8),
        _record("any label", "base", 4.0, rows=8),
        _record("other", "ours", 9.0, rows=9),
        _record("other", "base", 1.0, rows=9),
    ]
    [goal] = evaluate([Ratio("ours / base", "s", "ours", "base", 1.0, {"rows": 8})], records)
    assert goal["value"] == 0.5 and goal["met"] and goal["target"] == "ours / base at any label"


def test_fastest_torch_is_the_fastest_correct_torch_impl_in_the_common_layout():
    records = [
        _record("c", "jaxlin", 2.0),
        _record("c", "torch slow", 4.0),
        _record("c", "torch fast", 1.0),
        _record("c", "torch heads-first", 0.1),
        dict(_record("c", "torch wrong", 0.01), equal=False),
    ]
    [goal] = evaluate([Ratio("jaxlin / fastest", "s", "jaxlin", FASTEST_TORCH, 1.0)], records)
    assert goal["value"] == 2.0 and not goal["met"] and goal["detail"] == "fastest torch: torch fast"


def test_a_worst_ratio_over_distinct_programs_skips_configs_where_both_compiled_the_same():
    records = [
        dict(_record("same", "auto", 1.2), program="a → b"),
        dict(_record("same", "loop", 1.0), program="a → b"),
        dict(_record("differs", "auto", 1.1), program="a → b"),
        dict(_record("differs", "loop", 1.0), program="slice → a"),
    ]
    every, distinct = (
        WorstRatio("auto / fastest", "s", ("auto",), ("loop",), 1.05, distinct_programs=flag)
        for flag in (False, True)
    )
    worst, worst_distinct = evaluate([every, distinct], records)
    assert round(worst["value"], 6) == 1.2 and worst["detail"] == "auto at same vs loop"
    assert round(worst_distinct["value"], 6) == 1.1 and worst_distinct["detail"] == "auto at differs vs loop"
