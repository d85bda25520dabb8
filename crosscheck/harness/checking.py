"""``check``: any JAX module against any torch module that holds the same weights, in two tiers.

For the output and every gradient (each parameter and the input):

- **same function** — both modules in float64 (parameters and inputs upcast exactly) must agree
  within what float64 rounding allows. Rounding noise there is ~5·10^8 times smaller than in
  float32, so a larger difference is different math, however small it looks in float32.
- **acceptable rounding** — in the working dtype, each framework's error against the float64
  truth (the torch module in float64) must be within its allowance.

Which allowance is the module's rule (:mod:`crosscheck.harness.verdicts`): the analytic bound for
jaxlin's layers and ``nnx.Linear`` (magnitudes from :func:`crosscheck.harness.evaluate.magnitudes`,
reduction lengths from :func:`reduction_lengths`), the relative rule for anything else. NaN and inf
never pass unless ``equal_nan=True`` and every side, the truth included, has them at the same places.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import jax
import numpy as np
import torch
from flax import nnx

import torch_ref
from crosscheck.harness.evaluate import (
    Evaluation,
    absolute,
    cast_inputs,
    evaluate_torch,
    first_array,
    float64_jax,
)
from crosscheck.harness.fused import Request, evaluate_all
from crosscheck.harness.verdicts import (
    CaseResult,
    Evidence,
    OutputTruth,
    has_analytic_bound,
    judge_analytic,
    judge_relative,
)
from crosscheck.numerics.relative import rms
from crosscheck.weights import expected_specs, layout_of
from crosscheck.weights.fit import require_fit
from crosscheck.weights.tree import Rename, describe_module, dotted, renamed, submodules


def _pooled_length(module, x_shape) -> int:
    axis = getattr(module, "axis", None)
    return int(x_shape[axis]) if isinstance(axis, int) and len(x_shape) > 1 else 0


def reduction_lengths(module: nnx.Module, x_shape: tuple[int, ...]) -> dict[str, int]:
    """``K`` for the output, the input gradient and the parameter gradients of ``module``.

    Errors of chained reductions add (Higham: ``γ_a + γ_b + γ_aγ_b <= γ_{a+b}``), so ``K`` is the
    sum along the chain: every kernel's fan-in (+1 for its bias) and the pooled length for the
    output; fan-outs and the pooled length for the input gradient; for a parameter gradient, the
    rows it sums over plus both chains (an upper bound, as the error analysis needs).
    """
    leaves = [leaf[...] for _, leaf in nnx.to_flat_state(nnx.state(module, nnx.Param))]
    kernels = [leaf for leaf in leaves if leaf.ndim >= 2]
    biases = len(leaves) - len(kernels)
    pooled = _pooled_length(module, x_shape)
    forward = sum(int(k.shape[-2]) for k in kernels) + biases + pooled
    backward = sum(int(k.shape[-1]) for k in kernels) + pooled
    rows = math.prod(x_shape[:-1]) // max(getattr(module, "num_heads", 1), 1)
    return {"output": max(forward, 1), "input": max(backward, 1), "params": forward + backward + rows}


def channels_first_of(torch_module) -> bool:
    """Whether the torch module takes its input channels first: it holds an ``nn.Conv1d`` (or a
    torch_ref ``PointwiseConv``) anywhere in its tree."""
    return any(isinstance(m, (torch.nn.Conv1d, torch_ref.PointwiseConv)) for m in torch_module.modules())


def require_same_weights(jax_module, torch_module, *, rename: Rename = None) -> list[str]:
    """WeightsError unless the two modules' parameters map onto each other key for key and shape for
    shape (dtypes may differ); the notes on configurations that differ where no weight shows it."""
    source = f"check of {describe_module(jax_module)}"
    declared = expected_specs(torch_module)
    require_fit(
        source, declared, expected_specs(jax_module, rename=rename), describe_module(torch_module), cast=True
    )
    torch_modules = dict(torch_module.named_modules())
    notes = []
    for path, layer in submodules(jax_module):
        layout = layout_of(layer)
        twin = torch_modules.get(renamed(path + ".", rename)[:-1] if path else "")
        if layout is not None and layout.notes is not None and twin is not None:
            notes += [f"{dotted(path) or '(root)'}: {note}" for note in layout.notes(layer, twin)]
    return notes


def working_dtype(module: nnx.Module) -> np.dtype:
    """The dtype of the module's parameters: the dtype a comparison works in."""
    return np.dtype(next(iter(jax.tree.leaves(nnx.state(module, nnx.Param)))).dtype)


@dataclass
class PreparedCheck:
    """A check up to its JAX evaluations (:attr:`requests`: working dtype, float64 truth and, for the
    analytic rule, magnitudes); :func:`finish_check` runs torch and judges."""

    jax_module: nnx.Module
    torch_module: object
    result: CaseResult
    work_inputs: tuple
    truth_inputs: tuple
    cotangent: np.ndarray
    requests: list[Request]
    analytic: bool
    channels_first: bool
    grads: bool
    equal_nan: bool


def prepare_check(
    jax_module: nnx.Module,
    torch_module,
    *inputs,
    grads: bool = True,
    rename: Rename = None,
    channels_first: bool | None = None,
    equal_nan: bool = False,
    name: str = "",
    seed: int = 0,
    place=None,
) -> PreparedCheck:
    """The first half of :func:`check` (same arguments): weights checked to map, inputs cast, the
    cotangent drawn and the JAX evaluations listed, to run alone or with other checks'
    (:func:`crosscheck.harness.fused.evaluate_all`).

    Raises:
        WeightsError: the two modules' weights do not map onto each other.
    """
    notes = require_same_weights(jax_module, torch_module, rename=rename)
    channels_first = channels_first_of(torch_module) if channels_first is None else channels_first
    dtype = working_dtype(jax_module)
    work_inputs = cast_inputs(inputs, dtype)
    truth_inputs = cast_inputs(work_inputs, np.float64)
    title = name or f"{type(jax_module).__name__} vs {type(torch_module).__name__}"
    analytic = has_analytic_bound(jax_module)
    with jax.enable_x64(True):
        shape = jax.eval_shape(lambda *a: first_array(jax_module(*a)), *work_inputs).shape
        cotangent = np.random.default_rng(seed).standard_normal(shape)
        run = {"grads": grads, "rename": rename, "place": place}
        requests = [
            Request(jax_module, work_inputs, cotangent, **run),
            Request(float64_jax(jax_module), truth_inputs, cotangent, **run),
        ]
        if analytic:
            size = absolute(jax_module, truth_inputs, cotangent)
            requests.append(Request(*size, grads=grads, rename=rename))
    return PreparedCheck(
        jax_module, torch_module, CaseResult(title, str(dtype), notes=notes), work_inputs, truth_inputs,
        cotangent, requests, analytic, channels_first, grads, equal_nan,
    )  # fmt: skip


def finish_check(prepared: PreparedCheck, evaluations: list[Evaluation]) -> CaseResult:
    """The second half of :func:`check`: torch in the working dtype and in float64, then both tiers for
    the output and every gradient; ``evaluations`` are those of ``prepared.requests``."""
    p, result = prepared, prepared.result
    jax_work, jax_truth, *rest = evaluations
    size = rest[0] if p.analytic else None
    dtype = result.dtype
    evaluate = {"grads": p.grads, "channels_first": p.channels_first}
    torch_work = evaluate_torch(p.torch_module, p.work_inputs, p.cotangent, **evaluate)
    double = copy.deepcopy(p.torch_module).double()
    torch_truth = evaluate_torch(double, p.truth_inputs, p.cotangent, **evaluate)
    ks = reduction_lengths(p.jax_module, np.shape(p.work_inputs[0])) if p.analytic else {}
    params = [np.ravel(a) for key, a in torch_truth.grads.items() if key != "input"]
    gradient_scale = rms(np.concatenate(params)) if params else 0.0
    for item in _items(jax_truth):
        pick = _picker(item)
        evidence = Evidence(pick(jax_work), pick(torch_work), pick(jax_truth), pick(torch_truth))
        if p.analytic:
            k = ks["output"] if item == "output" else ks["input" if item == "grads.input" else "params"]
            result.items.append(judge_analytic(item, evidence, pick(size), k, dtype, equal_nan=p.equal_nan))
        else:
            scale = gradient_scale if item.startswith("grads.") and item != "grads.input" else 0.0
            result.items.append(judge_relative(item, evidence, dtype, scale=scale, equal_nan=p.equal_nan))
    result.truth = OutputTruth(torch_truth.output, size.output if size else None, ks.get("output", 0))
    return result


def check(
    jax_module: nnx.Module,
    torch_module,
    *inputs,
    grads: bool = True,
    rename: Rename = None,
    channels_first: bool | None = None,
    equal_nan: bool = False,
    name: str = "",
    seed: int = 0,
    place=None,
) -> CaseResult:
    """Compare any Flax NNX module with any torch module holding the same weights.

    ``inputs`` are NumPy arrays in the JAX module's layout (a mask is just another input; an integer
    first input, such as token ids, gets no gradient). ``rename`` maps the JAX module's weight names
    onto the torch module's (see :func:`crosscheck.weights.tree.renamed`); they are checked to map,
    key for key and shape for shape, before anything runs. ``channels_first`` (detected: the torch
    module holds an ``nn.Conv1d``) moves the features axis of the first input for torch. A module
    returning a tuple or a ``ModelOutput`` is compared on its first array. The working dtype is the
    JAX module's parameter dtype. A NaN or inf in an output or gradient fails its item ("non-finite
    output"), even where all sides agree, unless ``equal_nan=True``: then non-finite values pass
    where both frameworks and the float64 truth hold the same one. ``place(inputs)`` puts the JAX
    side's inputs on devices (:func:`crosscheck.harness.meshes.input_placer` shards them on a mesh);
    the torch module runs where it is. The JAX evaluations (working dtype, float64 truth, magnitudes)
    run as one compiled program (:mod:`crosscheck.harness.fused`).

    Shape:
        inputs as the JAX module takes them.

    Raises:
        WeightsError: the two modules' weights do not map onto each other.

    >>> import jaxlin, torch_ref
    >>> from crosscheck.weights import copy_torch_to_jax
    >>> theirs = torch_ref.Linear(8, 4)
    >>> ours = jaxlin.Linear(8, 4, rngs=nnx.Rngs(0))
    >>> copy_torch_to_jax(theirs, ours)
    >>> check(ours, theirs, np.random.default_rng(0).standard_normal((3, 8))).passed
    True
    """
    options = {"grads": grads, "rename": rename, "channels_first": channels_first, "equal_nan": equal_nan}
    prepared = prepare_check(jax_module, torch_module, *inputs, name=name, seed=seed, place=place, **options)
    return finish_check(prepared, evaluate_all(prepared.requests))


def _items(evaluation: Evaluation):
    yield "output"
    for name in evaluation.grads:
        yield f"grads.{name}"


def _picker(item: str):
    if item == "output":
        return lambda e: e.output
    key = item.split(".", 1)[1]
    return lambda e: e.grads[key]
