"""The four questions the project exists for, answered from one run's own measurements.

- **pooling**: does it matter where the mean over the sequence goes relative to the two linear
  layers? The float64 outputs of the pooled head that pools first (``reorder``) and of the one that
  pools last, on the same weights and inputs, compared within the float64 bound; the same with a
  relu between the layers (pool at the input against pool at the output); their forward times.
- **pointwise**: is ``Conv1d(kernel_size=1)`` the same as ``Linear``? Their float64 outputs (the
  ``pointwise-conv`` case, torch_ref's ``nn.Conv1d`` path, and ``linear`` hold the same weights and
  inputs); their forward times.
- **batch_size**: why does a Linear's output differ with batch size 1? The batch-size probe's
  records of ``Linear`` and ``BatchInvariantLinear``; their forward times.
- **per_head**: h independent per-head linear layers in one pass: the per-head cases' same-function
  tier (every jaxlin formulation against every torch_ref one); the fastest formulation of each, with
  those within noise of it, and the fastest of torch_ref against the fastest of jaxlin.

Every speed is a ratio of two calls timed in the same interleaved rounds, paired round by round, with
its bootstrap interval (:mod:`crosscheck.runtime.ratio_intervals`). Each answer is a dict of numbers
(docs/report-schema.md, ``answers``), or says which cases it misses;
:mod:`crosscheck.reporting.answer_lines` puts it in words.
"""

from __future__ import annotations

import numpy as np

from crosscheck.numerics import Bound, compare
from crosscheck.porting.verdicts import OutputTruth
from crosscheck.runtime.ratio_intervals import fastest_within_noise, paired_ratio
from crosscheck.runtime.timing import Timing

TRUTH_DTYPES = ("float32", "float64", "bfloat16")  # whose float64 truths a comparison prefers


def same_function(a: OutputTruth, b: OutputTruth) -> dict:
    """Two cases' float64 outputs against each other within the float64 bound (the larger magnitude and
    ``K`` of the two): ``{"same_function": bool, "ratio": max difference / allowance}``.

    >>> truth = OutputTruth(np.ones(3), np.ones(3), 4)
    >>> same_function(truth, OutputTruth(np.ones(3) + 1e-3, np.ones(3), 4))["same_function"]
    False
    """
    magnitude = np.maximum(a.magnitude, b.magnitude)
    comparison = compare(a.output, b.output, bound=Bound(magnitude, max(a.k, b.k, 1), "float64"))
    return {
        "same_function": bool(comparison.passed),
        "ratio": float(comparison.metrics["actual_bound_ratio"]),
    }


def _truth(runs: dict, name: str, other: str) -> tuple[OutputTruth, OutputTruth] | None:
    """Both cases' output truths from one working dtype (the inputs are rounded to it), or ``None``."""
    for dtype in TRUTH_DTYPES:
        pair = [runs.get((case, dtype)) for case in (name, other)]
        if all(run is not None and run.result is not None and run.result.truth is not None for run in pair):
            if all(run.result.truth.magnitude is not None for run in pair):
                return pair[0].result.truth, pair[1].result.truth
    return None


def _compared(runs: dict, name: str, other: str) -> dict:
    truths = _truth(runs, name, other)
    if truths is None:
        return {"compared": [name, other], "missing": True}
    return {"compared": [name, other]} | same_function(*truths)


def _forward(timed: dict, name: str, framework: str) -> Timing | None:
    timings = timed.get(name)
    return None if timings is None else timings.get((framework, "forward"))


def ratio_of(slow: Timing, fast: Timing) -> dict:
    """``slow``'s time over ``fast``'s, paired round by round (both from the same interleaved rounds),
    with its interval (:func:`~crosscheck.runtime.ratio_intervals.paired_ratio`) and both medians."""
    ratio = paired_ratio(slow.samples_s, fast.samples_s)
    return ratio.as_dict() | {"times_s": [slow.median_s, fast.median_s]}


def _speed(timed: dict, slow: str, fast: str) -> dict:
    """``{framework: time of slow / time of fast}`` (:func:`ratio_of`) for the entries timed."""
    speed = {}
    for framework in ("jax", "torch"):
        times = [_forward(timed, name, framework) for name in (slow, fast)]
        if None not in times:
            speed[framework] = ratio_of(*times)
    return speed


def _worst(comparisons: list[dict]) -> dict:
    measured = [c for c in comparisons if not c.get("missing")]
    if not measured:
        return {"missing": [name for c in comparisons for name in c["compared"]]}
    worst = max(measured, key=lambda c: c["ratio"])
    return {
        "same_function": all(c["same_function"] for c in measured),
        "ratio": worst["ratio"],
        "worst": worst,
    }


def pooling(runs: dict, timed: dict, shapes: dict) -> dict:
    first, last = "pooled-output-linear-full-reorder", "pooled-output-linear-full-literal"
    masked = [name.replace("full", "masked") for name in (first, last)]
    answer = {
        "question": "pooling",
        "linear": _worst([_compared(runs, first, last), _compared(runs, *masked)]),
    }
    answer["relu"] = _compared(runs, "pooled-input-relu-full-literal", "pooled-output-relu-full-literal")
    return answer | {"speed": _speed(timed, last, first), "shape": shapes.get(first)}


def pointwise(runs: dict, timed: dict, shapes: dict) -> dict:
    verdict = _worst([_compared(runs, "pointwise-conv", "linear")])
    speed = _speed(timed, "pointwise-conv", "linear")
    return {"question": "pointwise", "verdict": verdict, "speed": speed, "shape": shapes.get("linear")}


def batch_size(probe_records: list[dict], timed: dict, shapes: dict) -> dict:
    """Per probed module, over its records: the batch sizes where rows changed, the largest change in
    rounding allowances, whether every record passed and every row stayed bitwise the same."""
    modules = {}
    for name in ("linear", "batch-invariant-linear"):
        records = [r for r in probe_records if r["module"] == name and "differing_batch_sizes" in r]
        if records:
            modules[name] = {
                "invariant": all(not r["differing_batch_sizes"] for r in records),
                "passed": all(r["passed"] for r in records),
                "max_error_over_allowance": max(float(r["max_error_over_allowance"]) for r in records),
                "differing_batch_sizes": sorted({b for r in records for b in r["differing_batch_sizes"]}),
                "records": [f"{r['framework']} {r['mode']} {r['dtype']}" for r in records],
            }
    speed = _speed(timed, "batch-invariant-linear", "linear")
    return {"question": "batch_size", "modules": modules, "speed": speed, "shape": shapes.get("linear")}


def per_head(runs: dict, timed: dict, shapes: dict) -> dict:
    checked = [run for (name, _), run in runs.items() if name.startswith("perhead-") and run.result]
    verdict = {"missing": ["perhead-*"]}
    if checked:
        ratios = [
            float(item.same_function.metrics["actual_bound_ratio"])
            for r in checked
            for item in r.result.items
        ]
        same = all(item.same_function.passed for r in checked for item in r.result.items)
        verdict = {"same_function": same, "ratio": max(ratios), "entries": len(checked)}
    fastest, best = {}, {}
    for framework, position in (("jax", 1), ("torch", 2)):
        times = {
            name.split("-")[position]: _forward(timed, name, framework)
            for name in timed
            if name.startswith("perhead-")
        }
        if times and None not in times.values():
            tied = fastest_within_noise({impl: timing.samples_s for impl, timing in times.items()})
            best[framework] = times[tied[0]]
            fastest[framework] = {"impl": tied[0], "time_s": best[framework].median_s, "within_noise": tied}
    shape = next((shapes[name] for name in shapes if name.startswith("perhead-")), None)
    speed = ratio_of(best["torch"], best["jax"]) if len(best) == 2 else {}
    answer = {"question": "per_head", "verdict": verdict, "fastest": fastest, "speed": speed}
    return answer | {"shape": shape}


def answers(runs: list, probe_records: list[dict], entry_runs: list) -> list[dict]:
    """The four answers from a run's :class:`~crosscheck.suite.check_groups.CaseRun` list, its probe
    records and its :class:`~crosscheck.suite.jobs.EntryRun` list (entries that failed are left out)."""
    by_key = {(run.name, run.dtype): run for run in runs}
    timed = {run.entry.name: run.timings for run in entry_runs if run.timings}
    shapes = {run.entry.name: run.entry.shape for run in entry_runs if run.timings}
    return [
        pooling(by_key, timed, shapes),
        pointwise(by_key, timed, shapes),
        batch_size(probe_records, timed, shapes),
        per_head(by_key, timed, shapes),
    ]
