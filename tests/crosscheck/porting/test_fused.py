"""Many evaluations in one compiled program give the same bits as each compiled alone, and a group of
checks gives the same verdicts as ``check`` one by one; one bad case in a group fails alone."""

import dataclasses

import jax
import numpy as np
import pytest
from flax import nnx

import jaxlin
import torch_ref
from crosscheck.porting.checking import check, prepare_check
from crosscheck.porting.evaluate import evaluate_jax
from crosscheck.porting.fused import Request, evaluate_all
from crosscheck.suite import cases, check_groups
from crosscheck.suite.pairs import build_pair

MIXED = ["linear", "pointwise-conv", "pooled-hidden-relu-masked-literal", "perhead-loop-vmap", "collapse"]


def _bits(array) -> bytes:
    return np.ascontiguousarray(np.asarray(array)).tobytes()


def _prepared(name: str, dtype: str):
    case = cases.all_cases()[name]
    pair = build_pair(case, dtype)
    return prepare_check(
        *pair, *case.make_inputs(np.random.default_rng(0)), channels_first=case.channels_first
    )


@pytest.mark.slow  # every mixed case in two dtypes, fused and alone: ~10 s
def test_evaluations_in_one_program_are_the_bits_of_each_alone():
    requests = [
        r for name in MIXED for dtype in ("float32", "bfloat16") for r in _prepared(name, dtype).requests
    ]
    together = evaluate_all(requests)
    with jax.enable_x64(True):
        alone = [
            evaluate_jax(r.module, r.inputs, r.cotangent, grads=r.grads, widen=r.widen) for r in requests
        ]
    assert len(together) == len(requests) == 5 * 2 * 3  # working dtype, float64 truth, magnitudes
    for one, other in zip(together, alone, strict=True):
        assert one.grads.keys() == other.grads.keys()
        assert _bits(one.output) == _bits(other.output)
        assert all(_bits(one.grads[key]) == _bits(other.grads[key]) for key in one.grads)


def test_both_programs_are_traced_before_either_is_compiled(monkeypatch):
    from crosscheck.porting import fused

    steps = []
    lowered, compiled = fused._lowered, fused._compiled
    monkeypatch.setattr(fused, "_lowered", lambda *a: steps.append("trace") or lowered(*a))
    monkeypatch.setattr(fused, "_compiled", lambda *a: steps.append("compile") or compiled(*a))
    layer = jaxlin.Linear(3, 2, rngs=nnx.Rngs(0))
    x = np.ones((4, 3), np.float32)
    work = Request(layer, (x,), np.ones((4, 2), np.float32), x64=False)
    truth = Request(layer, (x.astype(np.float64),), np.ones((4, 2)), widen=True)
    together = evaluate_all([work, truth])
    assert steps == ["trace", "trace", "compile", "compile"]
    assert together[0].output.dtype == np.float32 and together[1].output.dtype == np.float64
    with jax.enable_x64(True):
        alone = evaluate_jax(layer, (x.astype(np.float64),), np.ones((4, 2)), widen=True)
    assert all(_bits(together[1].grads[key]) == _bits(alone.grads[key]) for key in alone.grads)


def test_equal_requests_get_equal_results_and_a_placed_request_is_evaluated_alone():
    layer = jaxlin.Linear(3, 2, rngs=nnx.Rngs(0))
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    cotangent = np.ones((4, 2))
    same = [
        Request(layer, (x,), cotangent),
        Request(layer, (x,), cotangent),
        Request(layer, (2 * x,), cotangent),
    ]
    first, second, third = evaluate_all(same)
    assert _bits(first.output) == _bits(second.output)
    assert _bits(first.grads["weight"]) == _bits(second.grads["weight"])
    bias = np.asarray(layer.bias[...])[None, :]
    np.testing.assert_allclose(third.output - bias, 2 * (first.output - bias), rtol=1e-6)
    on_device = dataclasses.replace(same[0], place=lambda inputs: tuple(map(jax.numpy.asarray, inputs)))
    placed = evaluate_all([on_device])
    assert _bits(placed[0].output) == _bits(first.output)


@pytest.mark.slow  # every mixed case in two dtypes, grouped and alone: ~6 s
def test_a_group_gives_the_verdicts_and_ratios_of_check_one_by_one():
    entries = [(name, dtype) for name in MIXED for dtype in ("float32", "bfloat16")]
    grouped = check_groups.check_group(entries)
    for (name, dtype), run in zip(entries, grouped, strict=True):
        case = cases.all_cases()[name]
        alone = check(*build_pair(case, dtype), *case.make_inputs(np.random.default_rng(0)),
                      channels_first=case.channels_first, name=name)  # fmt: skip
        assert run.result.passed and alone.passed
        for ours, theirs in zip(run.result.items, alone.items, strict=True):
            assert ours.item == theirs.item and ours.k == theirs.k
            assert ours.rounding.metrics == theirs.rounding.metrics
            assert ours.same_function.metrics == theirs.same_function.metrics
        assert _bits(run.result.truth.output) == _bits(alone.truth.output)


class Raising(jaxlin.Linear):
    """A module that cannot be traced: it raises when called."""

    def __call__(self, x):
        raise ValueError("Raising: this module does not compute")


def test_a_case_that_cannot_be_traced_fails_alone_and_the_rest_of_its_group_passes(monkeypatch):
    raising = cases.Case(
        "raising",
        lambda rngs, dtype: Raising(32, 8, param_dtype=dtype, rngs=rngs, **cases.PLACEHOLDER_INIT),
        lambda dtype: torch_ref.Linear(32, 8, dtype=dtype),
        cases.all_cases()["linear"].make_inputs,
        group="linear",
    )
    real = cases.all_cases()
    monkeypatch.setattr(cases, "all_cases", lambda: real | {"raising": raising})
    runs = check_groups.check_group([("linear", "float32"), ("raising", "float32"), ("collapse", "float32")])
    assert runs[0].error is None and runs[2].error is None
    assert runs[1].error.startswith("ModelCallError: the JAX model tests.Raising(")
    assert "(ValueError: Raising: this module does not compute)" in runs[1].error
    assert runs[0].result.passed and runs[2].result.passed


@pytest.mark.parametrize("name", ["linear", "pooled-output-relu-masked-literal"])
def test_float32_and_bfloat16_copies_share_one_float64_program(name):
    requests = [_prepared(name, dtype).requests[1] for dtype in ("float32", "bfloat16")]  # the float64 truths
    graphdefs = [nnx.graphdef(r.module) for r in requests]
    assert graphdefs[0] == graphdefs[1]
