"""``locate`` traces a program once per structure and shapes: the rows of a model's repeated layers run the
first one's compiled program, with the same verdicts, numbers and truth notes as tracing every row."""

import contextlib
import functools

import jax
import numpy as np
import torch
from flax import nnx

import jaxlin
from crosscheck import copy_torch_to_jax, locate
from crosscheck.porting import fused, locating
from crosscheck.porting.fused import Request, evaluate_all, traced_once
from tests.crosscheck.porting.test_truth import JaxBitsBlock, TorchBlock


class TorchStack(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.block0, self.block1, self.block2 = TorchBlock(), TorchBlock(), TorchBlock()

    def forward(self, x):
        return self.block2(self.block1(self.block0(x)))


class JaxStack(nnx.Module):
    """Three blocks whose float32 bit moves limit the truth to float32 (a note each row must carry)."""

    def __init__(self):
        self.block0, self.block1, self.block2 = JaxBitsBlock(), JaxBitsBlock(), JaxBitsBlock()

    def __call__(self, x):
        return self.block2(self.block1(self.block0(x)))


X = np.random.default_rng(3).standard_normal((4, 8)).astype(np.float32)


def _located(monkeypatch, keep_traces: bool):
    traced = []
    original = fused._lowered

    def counting(structure, arguments):
        traced.append(len(structure))
        return original(structure, arguments)

    with monkeypatch.context() as patch:
        patch.setattr(fused, "_lowered", counting)
        if not keep_traces:
            patch.setattr(locating, "traced_once", contextlib.nullcontext)
        ref, port = TorchStack(), JaxStack()
        copy_torch_to_jax(ref, port)
        return locate(port, ref, X, grads=True), len(traced)


def _numbers(result):
    return [
        (layer.path, layer.passed, layer.inputs, item.item, item.same_function.metrics, item.rounding.metrics,
         item.same_function.bound_text)
        for layer in result.layers for item in layer.items
    ]  # fmt: skip


def test_repeated_layers_are_traced_once_with_the_same_numbers_and_notes(monkeypatch):
    kept, traced_kept = _located(monkeypatch, keep_traces=True)
    every, traced_every = _located(monkeypatch, keep_traces=False)
    assert _numbers(kept) == _numbers(every)
    assert kept.passed and every.passed, str(kept)
    assert kept.truth_notes == every.truth_notes
    limited = [
        layer.path
        for layer in kept.layers
        if any("float32, the truth's precision" in item.same_function.bound_text for item in layer.items)
    ]
    assert {"block0", "block1", "block2"} <= set(limited)  # the notes come back with a reused program
    # each block, its projection and its norm: the first of three traced, the other two reuse its programs
    # (one or two each: the working run and the float64 runs share one when 64-bit mode is on)
    assert traced_every - traced_kept >= 2 * 3, (traced_kept, traced_every)


def test_outside_the_block_every_call_traces_afresh(monkeypatch):
    traced = []
    original = fused._lowered
    monkeypatch.setattr(fused, "_lowered", lambda s, a: traced.append(1) or original(s, a))
    layer = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    request = Request(layer, (np.ones((4, 3), np.float32),), np.ones((4, 2), np.float32))
    evaluate_all([request])
    evaluate_all([request])
    assert len(traced) == 2  # an edited port's code is never run from an earlier trace
    with traced_once():
        first = evaluate_all([request])[0]
        second = evaluate_all([request])[0]
        wider = evaluate_all([Request(layer, (np.ones((5, 3), np.float32),), np.ones((5, 2), np.float32))])
    assert len(traced) == 2 + 2  # (4, 3) once, (5, 3) once
    assert all(np.array_equal(first.grads[k], second.grads[k]) for k in first.grads)
    assert wider[0].output.shape == (5, 2)
    with traced_once():
        evaluate_all([request])
    assert len(traced) == 2 + 2 + 1  # a new block traces anew


class _Activated(nnx.Module):
    """A linear layer and an activation held as a ``functools.partial`` (its own object per instance)."""

    def __init__(self, approximate: bool, seed: int):
        self.linear = jaxlin.Linear(3, 2, rngs=nnx.Rngs(seed))
        self.activation = functools.partial(jax.nn.gelu, approximate=approximate)

    def __call__(self, x):
        return self.activation(self.linear(x))


def test_within_traced_once_layers_holding_equal_partials_share_one_trace_and_unequal_ones_do_not(
    monkeypatch,
):
    traced = []
    compiled = fused._compiled
    monkeypatch.setattr(fused, "_compiled", lambda *a: traced.append(1) or compiled(*a))
    x = np.linspace(-2, 2, 12).reshape(4, 3).astype(np.float32)
    layers = [_Activated(False, 0), _Activated(False, 1), _Activated(True, 0)]
    with fused.traced_once():
        results = [evaluate_all([Request(layer, (x,), np.ones((4, 2)))])[0] for layer in layers]
    assert len(traced) == 2  # the exact GELU once for both weights, the tanh one apart
    for layer, result in zip(layers, results, strict=True):  # the bits of each traced alone
        np.testing.assert_array_equal(
            result.output, evaluate_all([Request(layer, (x,), np.ones((4, 2)))])[0].output
        )
    assert not np.array_equal(results[0].output, results[2].output)


class Twice(nnx.Module):
    """A constant keyword changes what it returns: one array, or two."""

    def __init__(self):
        self.layer = jaxlin.Linear(8, 3, rngs=nnx.Rngs(0))

    def __call__(self, x, both=False):
        y = self.layer(x)
        return (y, 2 * y) if both else y


def test_within_traced_once_output_shapes_are_traced_once_per_structure_shapes_and_constants(monkeypatch):
    from crosscheck.porting import check_parts

    traced = []
    original = check_parts._output_shapes
    monkeypatch.setattr(check_parts, "_output_shapes", lambda *a: traced.append(1) or original(*a))
    model, other = Twice(), Twice()
    with traced_once():
        one = check_parts.output_shapes(model, (X,), {})
        assert check_parts.output_shapes(other, (X,), {}) == one and len(traced) == 1
        both = check_parts.output_shapes(model, (X,), {"both": True})
        longer = check_parts.output_shapes(model, (np.ones((6, 8), np.float32),), {})
    assert len(traced) == 3 and len(both[0]) == 2 and len(one[0]) == 1
    assert longer[1][longer[0][0]].shape == (6, 3)
    assert check_parts.output_shapes(model, (X,), {}) == one and len(traced) == 4  # outside: afresh


def test_within_traced_once_cotangents_are_drawn_once_and_shared_read_only():
    from crosscheck.porting.check_parts import drawn_cotangents, representable

    shapes = {"a": jax.ShapeDtypeStruct((3, 4), np.float32), "b": jax.ShapeDtypeStruct((2,), np.float32)}
    rng = np.random.default_rng(7)
    expected = {path: representable(rng, shape) for path, shape in shapes.items()}
    fresh = drawn_cotangents(7, shapes)
    assert all(np.array_equal(fresh[p], expected[p]) and fresh[p].flags.writeable for p in shapes)
    with traced_once():
        first, second = drawn_cotangents(7, shapes), drawn_cotangents(7, {"c": shapes["a"], "d": shapes["b"]})
    assert first["a"] is second["c"] and not first["a"].flags.writeable
    assert all(np.array_equal(first[p], expected[p]) for p in shapes)
