"""Checking a group of cases together: every pair built and every check prepared, all their JAX
evaluations in one compiled program (:func:`crosscheck.porting.fused.evaluate_all`), then each
check finished on its own. One case that raises fails alone: if the shared program cannot be built,
each check is evaluated by itself, so the error lands on the case it belongs to.

>>> [run.result.passed for run in check_group([("linear", "float32"), ("collapse", "bfloat16")])]
[True, True]
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import jax
import numpy as np

from crosscheck.porting.check_parts import PreparedCheck
from crosscheck.porting.checking import prepare_check
from crosscheck.porting.evaluate import Evaluation
from crosscheck.porting.finishing import finish_check
from crosscheck.porting.fused import evaluate_all
from crosscheck.porting.verdicts import CaseResult
from crosscheck.runtime.meshes import MeshSpec, input_placer, make_mesh, shard_module
from crosscheck.suite import cases as registry
from crosscheck.suite.cases import Case
from crosscheck.suite.pairs import Pair, build_pair


@dataclass
class CaseRun:
    """What became of one case in one dtype: its check result or error, or why it was skipped."""

    name: str
    dtype: str
    result: CaseResult | None = None
    error: str | None = None
    skipped: str | None = None


def sharded_pair(
    case: Case, dtype: str, *, seed: int = 0, weights: str | None = None, mesh: MeshSpec = ()
) -> tuple[Pair, object]:
    """The case's pair (:func:`build_pair`) and how to place its JAX inputs: on the default device, or
    the JAX module sharded on ``mesh`` with its inputs split on ``data``."""
    pair = build_pair(case, dtype, seed=seed, weights=weights)
    if not mesh:
        return pair, None
    on_mesh = make_mesh(mesh)
    shard_module(pair.jax, on_mesh)
    return pair, input_placer(on_mesh)


def _x64(dtype: str):
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


def _failure(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def _evaluations(prepared: list[PreparedCheck]) -> list[list[Evaluation] | Exception]:
    """Each check's evaluations: all from one program, or check by check when that one fails."""
    requests = [request for p in prepared for request in p.requests]
    try:
        flat = evaluate_all(requests)
    except Exception:  # one module that cannot be traced: find which, evaluating each check alone
        outcomes = []
        for p in prepared:
            try:
                outcomes.append(evaluate_all(p.requests))
            except Exception as error:  # this case fails with its own error; the others go on
                outcomes.append(error)
        return outcomes
    split, start = [], 0
    for p in prepared:
        split.append(flat[start : start + len(p.requests)])
        start += len(p.requests)
    return split


def check_group(
    entries: list[tuple[str, str]], *, seed: int = 0, weights: str | None = None, mesh: MeshSpec = ()
) -> list[CaseRun]:
    """Check every ``(case name, dtype)`` of ``entries`` (cases from
    :func:`crosscheck.suite.cases.all_cases`); one :class:`CaseRun` each, in order."""
    known = registry.all_cases()
    runs: dict[tuple[str, str], CaseRun] = {}
    prepared: dict[tuple[str, str], PreparedCheck] = {}
    for name, dtype in entries:
        case = known[name]
        try:
            with _x64(dtype):
                pair, place = sharded_pair(case, dtype, seed=seed, weights=weights, mesh=mesh)
                inputs = case.make_inputs(np.random.default_rng(seed))
                options = {"channels_first": case.channels_first, "name": case.name, "place": place}
                prepared[name, dtype] = prepare_check(*pair, *inputs, **options)
        except Exception as error:  # a case that raises fails; the run goes on
            runs[name, dtype] = CaseRun(name, dtype, error=_failure(error))
    for key, outcome in zip(prepared, _evaluations(list(prepared.values())), strict=True):
        try:
            if isinstance(outcome, Exception):
                raise outcome
            with _x64(key[1]):
                runs[key] = CaseRun(*key, result=finish_check(prepared[key], outcome))
        except Exception as error:  # a case that raises fails; the run goes on
            runs[key] = CaseRun(*key, error=_failure(error))
    return [runs[key] for key in entries]
