"""The parts of :func:`crosscheck.porting.checking.check` between preparing and judging: the prepared
check, the JAX output's shapes, output pairs, tied-gradient sums, the torch input gradient in the JAX
layout, and the rounding floor of an input gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import numpy as np
from flax import nnx

from crosscheck.numerics import is_floating
from crosscheck.numerics.relative import rms, root_mean, sum_of_squares
from crosscheck.porting.channels import Channels, channels_first_of, channels_option
from crosscheck.porting.evaluate import Evaluation, model_call_error
from crosscheck.porting.fused import Request, argument_shapes, seen_through, traced_programs
from crosscheck.porting.model_pair import GradientKeys
from crosscheck.porting.outputs import OutputTreeError, flatten_output
from crosscheck.porting.sides import Side, to_jax_layout
from crosscheck.porting.verdicts import CaseResult, Evidence
from crosscheck.weights.tree import describe_module


@dataclass
class PreparedCheck:
    """A check up to its JAX evaluations (:attr:`requests`: working dtype, float64 truth and, for the
    analytic rule, magnitudes); :func:`finish_check` runs torch and judges.

    ``cotangents`` are keyed by the JAX output paths (:mod:`crosscheck.porting.outputs`) and hold values
    representable in each output's working dtype, so that every run, the truth included, differentiates
    the same loss; ``pairs`` pair JAX output paths with torch's (``None``: the JAX output is one array,
    paired with torch's first floating one).
    """

    jax_module: nnx.Module
    torch_module: object
    result: CaseResult
    jax_side: Side
    torch_side: Side
    cotangents: dict[str, np.ndarray]
    requests: list[Request]
    analytic: bool
    channels_first: Channels
    grads: bool
    equal_nan: bool
    output_paths: list[str]
    pairs: list[tuple[str, str]] | None
    keys: GradientKeys | None
    input_axes: tuple[int, ...] | None  # the torch side's first input against the JAX side's
    torch_grads: frozenset[str] | None = None  # the torch parameters differentiated (None: every one)

    @property
    def work_inputs(self) -> tuple:
        return self.jax_side.work

    @property
    def truth_inputs(self) -> tuple:
        return self.jax_side.truth


def channels_of(channels_first, torch_module, torch_inputs) -> Channels:
    """``channels_first=`` as a :class:`Channels`: given, or detected from the torch module
    (:func:`channels_first_of`); with ``torch_inputs`` the input is in torch's own layout already.

    Raises:
        ValueError: a value that is not one of the accepted forms.
    """
    given = channels_option(channels_first)
    if given is not None:
        return given
    detected = channels_first_of(torch_module)
    return Channels(torch_inputs is None and detected.input, detected.output)


def output_shapes(jax_module, work_inputs, kwargs: dict) -> tuple[list[str], dict]:
    """The JAX output's paths, in order, and their shapes and dtypes, without computing anything; within
    :func:`crosscheck.porting.fused.traced_once`, traced once per structure and argument shapes (a
    model's repeated layers).

    Raises:
        ModelCallError: the module raised on the inputs.
    """
    traced = traced_programs()
    split = nnx.split(jax_module)
    key = None if traced is None else _shapes_key(*split, work_inputs, kwargs)
    if key is None:
        return _output_shapes(jax_module, *split, work_inputs, kwargs)
    if key not in traced:
        traced[key] = _output_shapes(jax_module, *split, work_inputs, kwargs)
    order, shapes = traced[key]
    return list(order), dict(shapes)


def _shapes_key(graphdef, state, work_inputs, kwargs: dict) -> tuple | None:
    """What the output's shapes depend on: the module's structure, the x64 mode, each array argument's
    shape and dtype and every other argument's value (``None`` where one cannot be a key)."""
    leaves, tree = jax.tree.flatten((tuple(work_inputs), kwargs))
    arguments = tuple(
        (np.shape(leaf), str(leaf.dtype)) if hasattr(leaf, "dtype") and hasattr(leaf, "shape") else leaf
        for leaf in leaves
    )
    key = ("output shapes", bool(jax.config.jax_enable_x64), seen_through(graphdef), argument_shapes(state))
    key += (tree, arguments)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _output_shapes(jax_module, graphdef, state, work_inputs, kwargs: dict) -> tuple[list[str], dict]:
    order: list[str] = []

    def flat(state, *arrays):  # the state an argument: a module that changes its state changes a copy's
        leaves = flatten_output(nnx.merge(graphdef, state)(*arrays, **kwargs), describe_module(jax_module))
        order[:] = [path for path, _ in leaves]
        return dict(leaves)

    try:
        shapes = jax.eval_shape(flat, state, *work_inputs)
    except OutputTreeError:
        raise
    except Exception as error:
        raise model_call_error("JAX", jax_module, error) from error
    return order, shapes


def representable(rng, shape: jax.ShapeDtypeStruct) -> np.ndarray:
    """Standard normal values rounded to ``shape``'s dtype, held in float64: the same loss for every run."""
    return rng.standard_normal(shape.shape).astype(np.dtype(shape.dtype)).astype(np.float64)


def drawn_cotangents(seed: int, shapes: dict) -> dict:
    """``{path: representable(...)}`` for ``shapes`` in order, from one generator seeded ``seed``; within
    :func:`crosscheck.porting.fused.traced_once`, drawn once per seed and shapes and shared, read-only
    (every run copies them: a model's repeated layers draw the same values).

    Shape:
        each value has its output's shape.
    """
    traced = traced_programs()
    key = ("cotangents", seed, tuple((tuple(s.shape), str(s.dtype)) for s in shapes.values()))
    drawn = None if traced is None else traced.get(key)
    if drawn is None:
        rng = np.random.default_rng(seed)
        drawn = [representable(rng, shape) for shape in shapes.values()]
        if traced is not None:
            for array in drawn:
                array.setflags(write=False)
            traced[key] = drawn
    return dict(zip(shapes, drawn, strict=True))


def absolute_keywords(kwargs: dict) -> dict:
    return {
        k: np.abs(v) if isinstance(v, np.ndarray) and is_floating(v.dtype) else v for k, v in kwargs.items()
    }


def torch_pairs(p: PreparedCheck, torch_outputs: dict) -> list[tuple[str, str]]:
    if p.pairs is not None:
        return p.pairs
    floating = [path for path, y in torch_outputs.items() if is_floating(y.dtype)]
    first = (floating or list(torch_outputs))[:1]
    p.result.unpaired_torch = [path for path in torch_outputs if path not in first]
    return list(zip(p.output_paths, first, strict=False))


def summed(grads: dict[str, np.ndarray], keys: list[str]) -> np.ndarray:
    total = grads[keys[0]]
    for key in keys[1:]:
        total = total + grads[key]
    return total


def input_gradients_in_jax_layout(p: PreparedCheck, *evaluations: Evaluation) -> None:
    """The torch side's input gradient laid out as the JAX side's input, or dropped (with a note) when
    no axis permutation turns one input into the other."""
    identity = tuple(range(np.ndim(p.work_inputs[0])))
    if p.input_axes == identity or not any("input" in e.grads for e in evaluations):
        return
    if p.input_axes is None:
        p.result.notes.append(
            "input gradients not compared: torch_inputs[0] is no axis permutation of the first JAX input"
        )
    for evaluation in evaluations:
        gradient = evaluation.grads.pop("input", None)
        if gradient is not None and p.input_axes is not None:
            evaluation.grads["input"] = to_jax_layout(gradient, p.input_axes)


def gradient_squares(truth: Evaluation, each=map) -> dict[str, float]:
    """Each parameter gradient's sum of squares in the float64 truth, by key (``each``: a pool's ``map``, to
    sum two at a time)."""
    params = {key: a for key, a in truth.grads.items() if key != "input"}
    return dict(zip(params, each(sum_of_squares, params.values()), strict=True))


def parameter_gradient_scale(p: PreparedCheck, truth: Evaluation, squares: dict[str, float]) -> float:
    """The scale of the parameter gradients' rounding floor: their RMS times √rows. A parameter gradient
    sums over every row: honest summation orders differ by ~√rows roundings of terms of the gradient's
    scale (torch sums a layer norm's over 1,817 rows with 13x Flax's error). ``squares``: the
    :func:`gradient_squares` of ``truth``."""
    x = np.asarray(p.work_inputs[0])
    rows = math.prod(x.shape[:-1] if is_floating(x.dtype) else x.shape)
    count = sum(np.size(truth.grads[key]) for key in squares)
    total = sum(squares.values())  # each summed alone: no joined copy
    return root_mean(total, count) * math.sqrt(max(rows, 1))


def input_gradient_scale(p: PreparedCheck, truth: Evaluation) -> float:
    """The scale of the terms an input gradient sums: ``rms(g) · rms(y) / rms(x)`` (for ``y = Wx`` that
    is ``rms(g)·|W|``; for a layer norm, ``rms(g)·|γ| / σ``), so that a gradient that cancels to
    nearly zero (a layer norm of few features) keeps the rounding floor of its terms."""
    x = np.asarray(p.truth_inputs[0])
    if not p.cotangents or not is_floating(x.dtype) or not rms(x.ravel()):
        return 0.0
    cotangent = next(iter(p.cotangents.values()))
    return rms(cotangent.ravel()) * rms(np.ravel(truth.output)) / rms(x.ravel())


def require_same_shape(name: str, item: str, evidence: Evidence) -> None:
    ours, theirs = np.shape(evidence.jax_work), np.shape(evidence.torch_work)
    if ours != theirs:
        raise ValueError(
            f"{name}: {item} has shape {ours} in JAX and {theirs} in torch; give both models inputs in "
            "their own layouts (channels_first=True, 'input' or 'output' moves the features axis for torch: "
            "NHWC <-> NCHW; or torch_inputs=)"
        )
