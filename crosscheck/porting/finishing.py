"""The second half of ``check``: torch in the working dtype and in float64 (its narrowing casts
promoted), then both tiers for every paired output and every gradient."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np

from crosscheck.numerics import is_floating
from crosscheck.porting.check_parts import (
    PreparedCheck,
    gradient_squares,
    input_gradient_scale,
    input_gradients_in_jax_layout,
    parameter_gradient_scale,
    require_same_shape,
    summed,
    torch_pairs,
)
from crosscheck.porting.evaluate import Evaluation, evaluate_torch
from crosscheck.porting.modes import restore, snapshot
from crosscheck.porting.outputs import item_name
from crosscheck.porting.reductions import reduction_lengths
from crosscheck.porting.streaming import fits_beside, float64_streamed, float64_whole, judging_fits_beside
from crosscheck.porting.truth import (
    TruthNotes,
    float32_constants,
    inherited,
    promoting_torch,
    side_notes,
    truth_dtype,
)
from crosscheck.porting.verdicts import (
    CaseResult,
    Evidence,
    ItemResult,
    OutputTruth,
    judge_analytic,
    judge_exact,
    judge_relative,
)


@dataclass
class TorchRuns:
    """The torch module in the working dtype and its float64 truth, and what the truth run promoted."""

    work: Evaluation
    truth: Evaluation
    truth_lines: list[str]


def run_torch(prepared: PreparedCheck) -> TorchRuns:
    """The torch half of a check: the module in float64 (its narrowing casts promoted), then in the
    working dtype, from the same state. Touches only the torch module: it may run beside the JAX runs.

    The float64 run goes first for a large model's sake, which runs this after JAX's runs: its float64
    weights and activations then take the pages JAX's float64 copies just freed. A few seconds later the
    system has taken those back (on a VM, the host), and touching new pages costs more the more a process
    holds (here 0.35 s a GiB for 4 GiB, 1.25 s a GiB for 8): bert-large's check took 40 s the other way
    round, 34–35 s this way (the same results to the bit)."""
    p = prepared
    evaluate = {"grads": p.grads, "channels_first": p.channels_first, "params": p.torch_grads}
    sides = p.torch_side
    torch_cotangent = next(iter(p.cotangents.values()), None)
    if p.pairs is not None:
        torch_cotangent = {t: p.cotangents[j] for j, t in p.pairs if j in p.cotangents}
    before = snapshot(p.torch_module)  # both runs on this very module, from the same state
    promoted = TruthNotes()
    if p.grads:  # the float32 weights held meanwhile where torch could run beside JAX (memory to spare)
        in_float64 = partial(float64_whole, keep=fits_beside(p.torch_module))
    else:
        in_float64 = float64_streamed
    with in_float64(p.torch_module), promoting_torch(p.torch_module, promoted):
        truth = evaluate_torch(
            p.torch_module, sides.truth, torch_cotangent, kwargs=sides.kwargs_truth, **evaluate
        )
    restore(p.torch_module, before)
    work = evaluate_torch(p.torch_module, sides.work, torch_cotangent, kwargs=sides.kwargs_work, **evaluate)
    return TorchRuns(work, truth, promoted.lines() + float32_constants(p.torch_module))


def _judged(name, analytic, ks, scales, dtype, judging, entry) -> ItemResult:
    """One item's verdict: exact for integers, the analytic bound where the module has one, else relative
    (the truth's sum of squares given where it was read for the gradients' scale)."""
    item, (evidence, magnitude, kind, truth_squares) = entry
    require_same_shape(name, item, evidence)
    if not is_floating(np.asarray(evidence.jax_work).dtype):
        return judge_exact(item, evidence)
    if analytic:
        return judge_analytic(item, evidence, magnitude, ks[kind], dtype, **judging)
    scale = scales.get(kind, 0.0)
    return judge_relative(item, evidence, dtype, scale=scale, truth_squares=truth_squares, **judging)


def finish_check(
    prepared: PreparedCheck, evaluations: list[Evaluation], torch_runs: TorchRuns | None = None
) -> CaseResult:
    """The second half of :func:`check`: torch in the working dtype and in float64 (``torch_runs``, when
    already run: :func:`run_torch`), then both tiers for every paired output and every gradient;
    ``evaluations`` are those of ``prepared.requests``."""
    p, result = prepared, prepared.result
    jax_work, jax_truth, *rest = evaluations
    size = rest[0] if p.analytic else None
    dtype = result.dtype
    runs = torch_runs if torch_runs is not None else run_torch(p)
    torch_work, torch_truth, torch_lines = runs.work, runs.truth, runs.truth_lines
    result.truth_notes = side_notes(jax_truth.truth_notes, torch_lines)
    result.truth_notes += [line for line in inherited() if line not in result.truth_notes]
    judging = {"equal_nan": p.equal_nan, "truth_dtype": truth_dtype(result.truth_notes)}
    input_gradients_in_jax_layout(p, torch_work, torch_truth)
    ks = reduction_lengths(p.jax_module, np.shape(p.work_inputs[0])) if p.analytic else {}
    evidence_of = {}
    for jax_path, torch_path in torch_pairs(p, torch_work.outputs):
        pick = lambda e, path: e.outputs[path]  # noqa: E731
        evidence_of[item_name(jax_path)] = (
            Evidence(
                pick(jax_work, jax_path),
                pick(torch_work, torch_path),
                pick(jax_truth, jax_path),
                pick(torch_truth, torch_path),
            ),  # fmt: skip
            size.outputs[jax_path] if size else None,
            "output",
            None,
        )
    with contextlib.ExitStack() as stack:
        each = map
        if judging_fits_beside(_largest(p, torch_truth, evidence_of)):  # memory to spare: two at a time
            each = stack.enter_context(ThreadPoolExecutor(2, thread_name_prefix="crosscheck-judge")).map
        squares = gradient_squares(torch_truth, each) if p.grads else {}
        scales = {"params": parameter_gradient_scale(p, torch_truth, squares),
                  "input": input_gradient_scale(p, torch_truth)}  # fmt: skip
        if p.grads:
            _gradient_evidence(p, evidence_of, size, squares, (jax_work, torch_work, jax_truth, torch_truth))
        judge = partial(_judged, result.name, p.analytic, ks, scales, dtype, judging)
        result.items.extend(each(judge, evidence_of.items()))
    first = next(iter(evidence_of.values()), None)
    if first is not None:
        result.truth = OutputTruth(first[0].torch_truth, first[1], ks.get("output", 0))
    return result


def _gradient_evidence(p: PreparedCheck, evidence_of: dict, size, squares: dict, runs: tuple) -> None:
    """Every gradient item's evidence, in the order items always had (the parameters', then the input's),
    with the truth's sum of squares where the item is one torch parameter."""
    jax_work, torch_work, jax_truth, torch_truth = runs
    in_order = [key for key in jax_truth.grads if key in p.keys.items]
    for key, (ours, theirs) in ((key, p.keys.items[key]) for key in in_order):
        evidence = Evidence(
            summed(jax_work.grads, ours),
            summed(torch_work.grads, theirs),
            summed(jax_truth.grads, ours),
            summed(torch_truth.grads, theirs),
        )
        known = squares.get(theirs[0]) if len(theirs) == 1 else None
        evidence_of[f"grads.{key}"] = (evidence, summed(size.grads, ours) if size else None, "params", known)
    if "input" in jax_work.grads and "input" in torch_work.grads:
        evidence_of["grads.input"] = (
            Evidence(*(e.grads["input"] for e in runs)),
            size.grads["input"] if size else None,
            "input",
            None,
        )


def _largest(p: PreparedCheck, torch_truth, evidence_of: dict) -> int:
    """The most elements one item has: the largest output, parameter gradient or input gradient."""
    sizes = [np.size(evidence.torch_truth) for evidence, *_ in evidence_of.values()]
    if p.grads:
        sizes += [np.size(a) for a in torch_truth.grads.values()]
    return max(sizes, default=0)
