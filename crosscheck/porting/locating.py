"""``locate``: where a port diverges — every submodule present in both models, judged on its own
float64-truth input, and the earliest, deepest one that fails.

Both models run once in float64 with every submodule call captured
(:mod:`crosscheck.porting.capture`); the torch model in float64 is the truth. Submodules match by
attribute path (through ``rename``, as weights do). Each matched pair is then judged alone: both
frameworks' submodules are called on the torch float64 submodule's inputs (in float64, and cast to
the working dtype), so an early error is not blamed on later modules, and their outputs are judged
in the two tiers of :func:`crosscheck.porting.checking.check`. A JAX argument takes the truth's
value when the torch call has a floating array of the same shape at the same position (else the JAX
model's own float64 value is used, and the layer says so). A submodule of one framework that is a
function in the other (an activation) has no match and is judged inside its parent.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import torch

from crosscheck.numerics import is_floating
from crosscheck.porting.capture import Call, capture_jax, capture_torch
from crosscheck.porting.channels import Channels, to_channels_first, to_channels_last
from crosscheck.porting.check_parts import channels_of
from crosscheck.porting.checking import (
    check,
    float64_jax,
    reduction_lengths,
    require_same_weights,
    working_dtype,
)
from crosscheck.porting.evaluate import jax_keywords, magnitudes, model_call_error, torch_keywords
from crosscheck.porting.model_pair import require_models
from crosscheck.porting.modes import inference_mode
from crosscheck.porting.sides import side
from crosscheck.porting.truth import TruthNotes, promoted_call, promoting_torch, truth_dtype
from crosscheck.porting.verdicts import (
    Evidence,
    ItemResult,
    has_analytic_bound,
    judge_analytic,
    judge_relative,
)
from crosscheck.weights import numpy_of_torch, torch_of_numpy
from crosscheck.weights.selection import Ignore, torch_part
from crosscheck.weights.tree import Rename, dotted, renamed, submodules


@dataclass
class LayerResult:
    """One submodule present in both models, judged on its own inputs."""

    path: str  # torch's dotted path ("" is the whole model)
    jax_path: str
    torch_type: str
    jax_type: str
    inputs: str  # "truth" when every JAX floating input took the truth's value, else "own"
    items: list[ItemResult] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.items) and all(item.passed for item in self.items)

    @property
    def rule(self) -> str:
        return "/".join(dict.fromkeys(item.rule for item in self.items)) or "–"


@dataclass
class LocateResult:
    """Every matched submodule in execution order, and what matched nothing."""

    name: str
    dtype: str
    layers: list[LayerResult]
    torch_only: list[str]
    jax_only: list[str]
    differing_weights: list[str] = field(default_factory=list)  # mapped weights whose values differ
    mode: str = "inference"  # both models ran in inference mode, each restored afterwards
    switched: list[str] = field(default_factory=list)  # layers that were in training mode
    ignored: list[str] = field(default_factory=list)  # torch keys left out (ignore=, strict=False, ...)
    missing: list[str] = field(default_factory=list)  # strict=False: the JAX keys the torch side lacks
    truth_notes: list[str] = field(default_factory=list)  # narrowing casts promoted in the float64 runs

    @property
    def passed(self) -> bool:
        return all(layer.passed for layer in self.layers)

    @property
    def first_failure(self) -> str | None:
        """The earliest failing layer none of whose matched descendants fails (a failing container whose
        children all pass: the difference is in the container's own code); ``""`` is the whole model
        (test with ``is None``); ``None`` when every layer passes."""
        failing = [layer for layer in self.layers if not layer.passed]
        deepest = [layer for layer in failing if not any(_below(other.path, layer.path) for other in failing)]
        return deepest[0].path if deepest else None

    def rows(self) -> list[tuple[str, ...]]:
        """One row per layer: path, types, inputs, rule, the tiers' worst ratios, verdict."""
        rows = []
        for layer in self.layers:
            same = max((_ratio(item.same_function) for item in layer.items), default=0.0)
            rounding = max((_ratio(item.rounding) for item in layer.items), default=0.0)
            verdict = "pass" if layer.passed else ("ERROR: " + layer.error if layer.error else "FAIL")
            rows.append((layer.path or "(model)", layer.torch_type, layer.jax_type, layer.inputs, layer.rule,
                         f"{same:.2g}", f"{rounding:.2g}", verdict))  # fmt: skip
        return rows

    def __str__(self) -> str:
        widths = [
            max(len(str(cell)) for cell in column) for column in zip(HEADERS, *self.rows(), strict=True)
        ]
        lines = [
            "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True))
            for row in [HEADERS, *self.rows()]
        ]
        return "\n".join(lines + [f"first failure: {_shown(self.first_failure)}"])


HEADERS = ("layer", "torch", "jax", "inputs", "rule", "same fn / allowed", "rounding / allowed", "verdict")


def _shown(path: str | None) -> str:
    return "none" if path is None else (path or "(model)")


def _below(path: str, ancestor: str) -> bool:
    return path != ancestor and (ancestor == "" or path.startswith(ancestor + "."))


def _ratio(comparison) -> float:
    metrics = comparison.metrics
    return max(float(metrics.get("actual_bound_ratio", 0.0)), float(metrics.get("expected_bound_ratio", 0.0)))


def _floating_leaves(tree) -> list:
    """The floating arrays and tensors of nested tuples, lists and dicts (a ``ModelOutput`` too), in order."""
    if isinstance(tree, torch.Tensor):
        return [tree] if tree.is_floating_point() else []
    if isinstance(tree, (jax.Array, np.ndarray)):
        return [tree] if is_floating(np.asarray(tree).dtype) else []
    if isinstance(tree, dict):
        return [leaf for value in tree.values() for leaf in _floating_leaves(value)]
    if isinstance(tree, (tuple, list)):
        return [leaf for value in tree for leaf in _floating_leaves(value)]
    return []


def _substituted(jax_call: Call, torch_call: Call) -> tuple[tuple, dict, str]:
    """The JAX call's arguments with each floating array replaced by the truth's (same position, same
    shape, or the same moved channels last); ``"truth"`` when every one was replaced."""
    truth = [numpy_of_torch(t) for t in _floating_leaves((torch_call.args, torch_call.kwargs))]
    position, replaced, total = iter(range(len(truth))), [0], [0]

    def swap(leaf):
        if not (isinstance(leaf, (jax.Array, np.ndarray)) and is_floating(np.asarray(leaf).dtype)):
            return leaf
        total[0] += 1
        index = next(position, None)
        if index is None:
            return leaf
        value = truth[index]
        if value.shape == leaf.shape:
            replaced[0] += 1
            return jnp.asarray(value)
        if value.ndim >= 2 and to_channels_last(value).shape == leaf.shape:
            replaced[0] += 1
            return jnp.asarray(to_channels_last(value))
        return leaf

    args, kwargs = jax.tree.map(swap, (jax_call.args, jax_call.kwargs))
    return args, kwargs, "truth" if replaced[0] == total[0] else "own"


def _cast(tree, dtype):
    def cast(leaf):
        if isinstance(leaf, torch.Tensor):
            return leaf.to(getattr(torch, str(dtype))) if leaf.is_floating_point() else leaf
        if isinstance(leaf, (jax.Array, np.ndarray)) and is_floating(np.asarray(leaf).dtype):
            return jnp.asarray(leaf, dtype)
        return leaf

    return jax.tree.map(cast, tree, is_leaf=lambda x: isinstance(x, torch.Tensor))


def _outputs(jax_output, torch_output) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs of floating outputs at the same position (a channels-first torch output moved back)."""
    pairs = []
    for ours, theirs in zip(_floating_leaves(jax_output), _floating_leaves(torch_output), strict=False):
        ours, theirs = np.asarray(ours), numpy_of_torch(theirs)
        if theirs.shape != ours.shape and theirs.ndim >= 2 and to_channels_last(theirs).shape == ours.shape:
            theirs = to_channels_last(theirs)
        pairs.append((ours, theirs))
    return pairs


def _judge_layer(
    layer: LayerResult, jax_layers, torch_layers, jax_call, torch_call, dtype: str, equal_nan: bool
):
    """Call both frameworks' submodules on the truth's inputs and judge every output. Every run sees the
    same input values: the truth's rounded to the working dtype (the float64 runs hold them exactly)."""
    with jax.enable_x64(
        True
    ):  # the truth's float64 values stay float64, rounded as the working runs see them
        args, kwargs, layer.inputs = _substituted(jax_call, torch_call)
        args, kwargs = _cast(_cast((args, kwargs), dtype), "float64")
    torch64 = torch_call.module
    torch_work = torch_layers[layer.path]
    notes = TruthNotes()  # the whole model's runs list the promotions; here they set the truth's precision
    with torch.no_grad():
        torch_args, torch_kwargs = _cast((torch_call.args, torch_call.kwargs), dtype)
        truth_args, truth_kwargs = _cast((torch_args, torch_kwargs), "float64")
        with promoting_torch(torch64, notes):
            torch_truth_out = torch64(*truth_args, **truth_kwargs)
        torch_work_out = torch_work(*torch_args, **torch_kwargs)
    with jax.enable_x64(True):
        jax_truth_out = promoted_call(jax_call.module, lambda: jax_call.module(*args, **kwargs), notes)
        work_args, work_kwargs = _cast((args, kwargs), dtype)
        jax_work_out = jax_layers[layer.jax_path](*work_args, **work_kwargs)
    truths, works = _outputs(jax_truth_out, torch_truth_out), _outputs(jax_work_out, torch_work_out)
    judging = {"equal_nan": equal_nan, "truth_dtype": truth_dtype(notes.lines())}
    analytic = (
        has_analytic_bound(jax_layers[layer.jax_path])
        and layer.inputs == "truth"
        and not kwargs
        and len(args) == 1
    )
    for index, ((jax_truth, torch_truth), (jax_work, torch_work_leaf)) in enumerate(
        zip(truths, works, strict=False)
    ):
        item = "output" if len(truths) == 1 else f"output[{index}]"
        if jax_truth.shape != torch_truth.shape:
            layer.error = f"{item} has shape {jax_truth.shape} in JAX, {torch_truth.shape} in torch"
            return
        evidence = Evidence(jax_work, torch_work_leaf, jax_truth, torch_truth)
        if analytic and index == 0:
            x = np.asarray(args[0])
            with jax.enable_x64(True):
                size = magnitudes(jax_layers[layer.jax_path], (x,), None, grads=False).output
            k = reduction_lengths(jax_layers[layer.jax_path], x.shape)["output"]
            layer.items.append(judge_analytic(item, evidence, size, k, dtype, **judging))
        else:
            layer.items.append(judge_relative(item, evidence, dtype, **judging))
    if not layer.items:
        layer.error = "no floating output to compare"


def _layer_rename(jax_path: str, torch_path: str, rename: Rename):
    """The whole model's ``rename`` for the weights of one layer (keys relative to the layer)."""

    def mapped(key: str) -> str:
        full = renamed(f"{jax_path}.{key}" if jax_path else key, rename)
        return full[len(torch_path) + 1 :] if torch_path else full

    return mapped


def _check_layer(
    layer: LayerResult, jax_layers, torch_layers, jax_call, torch_call, rename, equal_nan, strict=True
) -> bool:
    """With gradients: :func:`check` the pair on the truth's inputs, when they are positional arrays
    that pair one to one (else the forward-only judgment runs); whether it ran."""
    with jax.enable_x64(True):
        args, kwargs, given = _substituted(jax_call, torch_call)
    torch_args = [a for a in torch_call.args if a is not None]
    torch_kwargs = {k: v for k, v in torch_call.kwargs.items() if v is not None}
    if given != "truth" or kwargs or torch_kwargs or len(args) != len(torch_args):
        return False
    inputs = [np.asarray(a) for a in args]
    result = check(jax_layers[layer.jax_path], torch_layers[layer.path], *inputs, grads=True,
                   rename=_layer_rename(layer.jax_path, layer.path, rename), equal_nan=equal_nan,
                   strict=strict)  # fmt: skip
    layer.inputs, layer.items = given, result.items
    return True


def locate(
    jax_module, torch_module, *inputs, rename: Rename = None, grads: bool = False,
    channels_first: bool | str | Channels | None = None, equal_nan: bool = False, name: str = "",
    torch_inputs: tuple | None = None, jax_kwargs: dict | None = None, torch_kwargs: dict | None = None,
    strict: bool = True, prefix: str = "", ignore: Ignore = None,
) -> LocateResult:  # fmt: skip
    """Judge every submodule present in both models on its own float64-truth input.

    ``inputs`` are NumPy arrays in the JAX model's layout, as for ``check``; ``rename`` maps JAX
    attribute paths onto torch's as it maps weight names. ``grads=True`` also judges each layer's
    parameter and input gradients (:func:`crosscheck.porting.checking.check` on the layer, where its
    inputs are positional arrays that pair one to one; other layers are judged forward only). Both
    models run in inference mode and are left exactly as they were (as ``check`` leaves them);
    weights whose values differ are listed (``differing_weights``) and their layers fail on their own.
    ``torch_inputs``, ``jax_kwargs`` and ``torch_kwargs`` give each side its own call, and
    ``channels_first``, ``prefix`` (the torch submodule located against; the result's torch paths keep
    the prefix), ``ignore`` and ``strict`` mean what they mean for ``check``; the result lists
    ``ignored`` and ``missing`` keys as ``check``'s does (a layer judged with gradients is checked with
    ``strict=False`` when either is in play).

    Shape:
        inputs as the JAX model takes them.

    Raises:
        TypeError: the first argument is not a Flax NNX module or the second not a torch module.
        WeightsError: the two models' weights do not map onto each other.
        ModelCallError: a model raised on the inputs.
    """
    require_models(jax_module, torch_module, "locate")
    torch_module = torch_part(torch_module, prefix, "locate")
    keys = {"prefix": prefix, "strict": strict, "ignore": ignore}
    with inference_mode(jax_module, torch_module) as switched:
        result = _locate(
            jax_module, torch_module, inputs, rename, grads, channels_first, equal_nan, name,
            (torch_inputs, jax_kwargs, torch_kwargs), keys,
        )  # fmt: skip
    result.switched = switched
    if prefix:
        where = prefix.rstrip(".")
        for layer in result.layers:
            layer.path = dotted(where, layer.path)
        result.torch_only = [dotted(where, path) for path in result.torch_only]
    return result


def _locate(
    jax_module, torch_module, inputs, rename, grads, channels_first, equal_nan, name, own_calls, keys
) -> LocateResult:
    torch_inputs, jax_kwargs, torch_kwargs = own_calls
    match = require_same_weights(jax_module, torch_module, rename=rename, function="locate", **keys)
    channels = channels_of(channels_first, torch_module, torch_inputs)
    dtype = str(working_dtype(jax_module, inputs))
    jax_side = side(inputs, jax_kwargs, dtype)
    torch_side = side(inputs if torch_inputs is None else torch_inputs, torch_kwargs, dtype)
    truth_inputs = jax_side.truth
    torch64 = copy.deepcopy(torch_module).double()
    first = to_channels_first(torch_side.truth[0]) if channels.input else torch_side.truth[0]
    keywords = torch_keywords(torch_side.kwargs_truth)
    torch_notes, jax_notes = TruthNotes(), TruthNotes()
    with torch.no_grad(), promoting_torch(torch64, torch_notes):
        try:
            torch_calls, _ = capture_torch(
                torch64, (torch_of_numpy(first), *map(torch_of_numpy, torch_side.truth[1:])), keywords
            )
        except Exception as error:
            raise model_call_error("torch", torch_module, error) from error
    with jax.enable_x64(True):
        jax64 = float64_jax(jax_module)
        try:
            keywords = jax_keywords(jax_side.kwargs_truth)
            arrays = tuple(jnp.asarray(a) for a in truth_inputs)
            jax_calls, _ = promoted_call(jax64, lambda: capture_jax(jax64, arrays, keywords), jax_notes)
        except Exception as error:
            raise model_call_error("JAX", jax_module, error) from error
    jax_layers = dict(submodules(jax_module))
    by_torch_path = {(renamed(path + ".", rename)[:-1] if path else ""): path for path in jax_layers}
    jax_called = {call.path: call for call in jax_calls}
    torch_layers = dict(torch_module.named_modules())
    result = LocateResult(
        name or f"{type(jax_module).__name__} vs {type(torch_module).__name__}",
        dtype,
        [],
        [],
        [],
        differing_weights=match.differing,
        ignored=match.ignored,
        missing=match.missing,
        truth_notes=[f"JAX: {x}" for x in jax_notes.lines()] + [f"torch: {x}" for x in torch_notes.lines()],
    )
    layer_strict = keys["strict"] and keys["ignore"] is None  # a layer: strict unless the whole is not
    for call in torch_calls:
        jax_path = by_torch_path.get(call.path)
        if jax_path is None or jax_path not in jax_called:
            result.torch_only.append(call.path)
            continue
        layer = LayerResult(
            call.path, jax_path, type(call.module).__name__, type(jax_layers[jax_path]).__name__, ""
        )
        try:
            checked = grads and _check_layer(layer, jax_layers, torch_layers, jax_called[jax_path], call,
                                             rename, equal_nan, layer_strict)  # fmt: skip
            if not checked:
                _judge_layer(layer, jax_layers, torch_layers, jax_called[jax_path], call, dtype, equal_nan)
        except Exception as error:  # a layer that cannot be called alone is reported, and the others go on
            layer.error = f"{type(error).__name__}: {error}"
        result.layers.append(layer)
    matched = {layer.jax_path for layer in result.layers}
    result.jax_only = [call.path for call in jax_calls if call.path not in matched]
    return result
