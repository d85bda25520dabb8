"""``locate``: where a port diverges — every submodule present in both models, judged on its own
float64-truth input, and the earliest, deepest one that fails.

Both models run once in float64 with every submodule call captured
(:mod:`crosscheck.porting.capture`); the torch model in float64 is the truth. Neither model is copied
whole in float64: torch's layers hold their own weights in float64 only while they are called
(:mod:`crosscheck.porting.streaming`), and the JAX float64 run widens the working model's own
parameters where each is used (:func:`crosscheck.porting.magnitudes.float64_view`). Submodules match by
attribute path (through ``rename``, as weights do). Each matched pair is then judged alone: both
frameworks' submodules are called on the torch float64 submodule's inputs (in float64, and cast to
the working dtype), so an early error is not blamed on later modules, and their outputs are judged
in the two tiers of :func:`crosscheck.porting.checking.check`. A JAX argument takes the truth's
value when the torch call has a floating array of the same shape at the same position (else the JAX
model's own float64 value is used, and the layer says so). A submodule of one framework that is a
function in the other (an activation) has no match and is judged inside its parent. Rows go deepest
first, and a container's passing children stand in for themselves in its runs
(:mod:`crosscheck.porting.stand_ins`): each level of nesting costs its own code, not its subtree again.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field, replace

import jax
import torch

from crosscheck.porting.capture import capture_jax, capture_torch
from crosscheck.porting.channels import Channels, to_channels_first
from crosscheck.porting.check_parts import channels_of
from crosscheck.porting.checking import one_after_the_other, require_same_weights, working_dtype
from crosscheck.porting.compiled_capture import compiled_capture
from crosscheck.porting.evaluate import jax_keywords, model_call_error, torch_keywords
from crosscheck.porting.fused import traced_once
from crosscheck.porting.locate_layers import LayerResult, check_layer, judge_layer
from crosscheck.porting.magnitudes import float64_view
from crosscheck.porting.model_pair import require_models, values_compared
from crosscheck.porting.modes import inference_mode, restore, snapshot
from crosscheck.porting.progress import Report, layer_progress
from crosscheck.porting.sides import side
from crosscheck.porting.stand_ins import stand_in_of, standing_in
from crosscheck.porting.streaming import (
    float64_streamed,
    is_large,
    only_new_garbage,
    release_freed_memory,
    rows_fit_beside,
    worth_releasing,
)
from crosscheck.porting.truth import (
    TruthNotes,
    float32_constants,
    inherited_truth_notes,
    promoted_call,
    promoting_torch,
    side_notes,
)
from crosscheck.weights import torch_of_numpy
from crosscheck.weights.arrays import jax_array
from crosscheck.weights.selection import Ignore, torch_part
from crosscheck.weights.tree import Rename, dotted, renamed, submodules, torch_twin


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
        """Every judged row passes (a row not judged is listed with its reason, never a failure)."""
        return all(layer.passed for layer in self.layers if layer.error is None)

    @property
    def not_judged(self) -> list[str]:
        """``"path: reason"`` for every row that could not be judged."""
        return [
            f"{layer.path or '(model)'}: {layer.error}" for layer in self.layers if layer.error is not None
        ]

    @property
    def first_failure(self) -> str | None:
        """The earliest failing layer none of whose matched descendants fails (a failing container whose
        children all pass: the difference is in the container's own code); ``""`` is the whole model
        (test with ``is None``); ``None`` when every judged layer passes. Rows not judged are left out.

        A row judged on its own inputs (``inputs == "own"``: the truth's could not be given to it) may
        fail for what came before it, so it is blamed only when no row judged on the truth's inputs
        fails: a bug in a container's own code, before a child that could not take the truth's input,
        is the container's."""
        failing = [layer for layer in self.layers if layer.error is None and not layer.passed]
        failing = [layer for layer in failing if layer.inputs == "truth"] or failing
        deepest = [layer for layer in failing if not any(_below(other.path, layer.path) for other in failing)]
        return deepest[0].path if deepest else None

    def rows(self) -> list[tuple[str, ...]]:
        """One row per layer: path, types, inputs, rule, the tiers' worst ratios, verdict."""
        rows = []
        for layer in self.layers:
            same = max((_ratio(item.same_function) for item in layer.items), default=0.0)
            rounding = max((_ratio(item.rounding) for item in layer.items), default=0.0)
            verdict = layer.error or (f"FAIL: {layer.failure}" if layer.failure else "")
            verdict = verdict or ("pass" if layer.passed else "FAIL")
            if layer.layouts or layer.notes:
                verdict += " [" + "; ".join(layer.layouts + layer.notes) + "]"
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


def locate(
    jax_module, torch_module, *inputs, rename: Rename = None, grads: bool = False,
    channels_first: bool | str | Channels | None = None, equal_nan: bool = False, name: str = "",
    torch_inputs: tuple | None = None, jax_kwargs: dict | None = None, torch_kwargs: dict | None = None,
    strict: bool = True, prefix: str = "", ignore: Ignore = None, progress: Report = None,
) -> LocateResult:  # fmt: skip
    """Judge every submodule present in both models on its own float64-truth input.

    ``inputs`` are NumPy arrays in the JAX model's layout, as for ``check``; ``rename`` maps JAX
    attribute paths onto torch's as it maps weight names. ``grads=True`` also judges each layer's
    input gradient and its parameters' (:func:`crosscheck.porting.checking.check` on the layer, where its
    inputs are positional arrays that pair one to one; other layers are judged forward only): each
    parameter's gradient once, at the deepest row holding it that is checked with gradients (a
    container judges its own parameters' and those of children judged forward only or unmatched). Both
    models run in inference mode and are left exactly as they were (as ``check`` leaves them);
    weights whose values differ are listed (``differing_weights``) and their layers fail on their own.
    ``torch_inputs``, ``jax_kwargs`` and ``torch_kwargs`` give each side its own call, and
    ``channels_first``, ``prefix`` (the torch submodule located against; the result's torch paths keep
    the prefix), ``ignore`` and ``strict`` mean what they mean for ``check``; the result lists
    ``ignored`` and ``missing`` keys as ``check``'s does (a layer judged with gradients is checked with
    ``strict=False`` when either is in play). ``progress``: a bar of layers done (elapsed, estimate) on
    standard error when it is a terminal (``None``), never (``False``), or ``progress(done, total)``.

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
    with torch_twin(torch_module.state_dict().keys()), inference_mode(jax_module, torch_module) as switched:
        result = _locate(
            jax_module, torch_module, inputs, rename, grads, channels_first, equal_nan, name,
            (torch_inputs, jax_kwargs, torch_kwargs), keys, progress,
        )  # fmt: skip
    result.switched = switched
    if prefix:
        where = prefix.rstrip(".")
        for layer in result.layers:
            layer.path = dotted(where, layer.path)
        result.torch_only = [dotted(where, path) for path in result.torch_only]
    return result


GRADIENT_SHARE = 0.125
"""With ``grads=True``, a row is checked with gradients when its parameters are at most this share of the
whole model's (or the model is small, :data:`SMALL_MODEL`); a larger one (the whole model, an embedding
of a large vocabulary) is judged forward: its float64 weights and gradients beside both models would not
fit where the models barely do (a row differentiating only its input still runs in float64 whole), and
the layers inside it are checked with theirs."""

SMALL_MODEL = 20_000_000
"""Parameters under which every row is checked with gradients."""


def _gradients_fit(layer, torch_layers, total: int, stood_in: set[int]) -> bool:
    """Whether the parameters the row's runs hold (those of its children standing in, ``stood_in``, are
    never widened, run or differentiated) fit its float64 runs with gradients."""
    count = sum(p.numel() for p in torch_layers[layer.path].parameters() if id(p) not in stood_in)
    if total <= SMALL_MODEL or count <= GRADIENT_SHARE * total:
        return True
    layer.notes.append(f"gradients not judged: {count:,} parameters, over {GRADIENT_SHARE:.1%} of the model")
    return False


def _gradients_alone(layer, torch_layers) -> bool:
    """Whether the layer's gradients mean the same alone: torch's ``Embedding(padding_idx=i)`` gives row
    ``i`` no gradient, a rule ``nnx.Embed`` does not have (a port stops that gradient elsewhere, if at
    all: ``check`` judges the whole model's)."""
    padding = getattr(torch_layers[layer.path], "padding_idx", None)
    if isinstance(torch_layers[layer.path], torch.nn.Embedding) and padding is not None:
        layer.notes.append(
            f"gradients not judged alone: torch's padding_idx={padding} row gets none, nnx.Embed has no "
            "padding index (check judges the whole model's gradients)"
        )
        return False
    return True


def _judge_row(
    layer, judged: set, stood_in: set[int] = frozenset(), *, calls, rename, grads, equal_nan, strict, dtype,
    learned, total: int,
) -> bool:  # fmt: skip
    """One row: checked with gradients where it can be, else judged forward; not judged on an error.
    ``total``: the whole torch model's parameter count. ``judged``: the ids of the torch parameters
    whose gradients rows below this one judged (rows come deepest first; ``stood_in``: the ids of those
    inside the children standing in for this run); this row differentiates the
    others (its own, and those of children judged forward only or unmatched), and adds them. Whether
    an error was caught (the row then judged forward only, or not judged)."""
    raised = False
    named = calls[1][layer.path].named_parameters(remove_duplicate=False)
    parameters = {name: p for name, p in named if id(p) not in judged}
    grads = grads and _gradients_fit(layer, calls[1], total, stood_in) and _gradients_alone(layer, calls[1])
    try:
        checked = grads and check_layer(layer, *calls, rename, equal_nan, strict, dtype, learned, parameters)
        if checked:
            judged.update(id(p) for p in parameters.values())
    except Exception:  # noqa: BLE001 - judged forward only, where the error (if any) is reported
        checked, layer.items, raised = False, [], True
    try:
        if not checked:
            judge_layer(layer, *calls, dtype, equal_nan, learned)
    except Exception as error:  # a layer that cannot be called alone is not judged; the others go on
        layer.error, raised = f"not judged: {type(error).__name__}: {error}", True
    return raised


def _can_stand_in(layer: LayerResult, torch_layers, grads: bool, judged: set) -> bool:
    """Whether a judged row may stand in for itself in its containers' runs: it passed on the truth's
    inputs and, with gradients, every parameter of it had its gradient judged (by it or below it)."""
    if not (layer.passed and layer.inputs == "truth"):
        return False
    return not grads or all(id(p) in judged for p in torch_layers[layer.path].parameters())


def _stand_ins(path: str, children: dict) -> list:
    """The rows standing in for ``path``'s subtree: those below it that no other such row holds."""
    below = [child for child in children if _below(child, path)]
    return [child for child in below if not any(_below(child, other) for other in below)]


def _judged_with_stand_ins(
    layer, judge, judged: set, children: dict, learned: dict, initial, models
) -> LayerResult:
    """The row judged with its passing children standing in (:mod:`crosscheck.porting.stand_ins`): its own
    code alone. Where that does not pass on the truth's inputs, or no child can stand in, the row is
    judged as it was, running its children."""
    stood_in = []
    for path in _stand_ins(layer.path, children):
        child, (jax_layers, torch_layers, jax_call, torch_call) = children[path]
        stand_in = stand_in_of(child, jax_call, torch_call, learned)
        if stand_in is not None:
            instances = [jax_layers[child.jax_path], jax_call.module]
            stood_in.append((stand_in, instances, jax_call.output, torch_layers[path]))
    if not stood_in:
        judge(layer, judged)
        return layer
    before = set(judged)
    first = replace(layer, items=[], layouts=[], notes=[], stood_in=[])
    inside = {id(p) for *_, module in stood_in for p in module.parameters()}
    with standing_in(stood_in):
        raised = judge(first, judged, inside)
    if first.passed and first.inputs == "truth" and not raised:
        first.stood_in = [stand_in.path for stand_in, *_ in stood_in]
        return first
    judged.clear()
    judged.update(before)
    restore(models[0], initial[0])
    restore(models[1], initial[1])
    judge(layer, judged)
    return layer


def _locate(
    jax_module,
    torch_module,
    inputs,
    rename,
    grads,
    channels_first,
    equal_nan,
    name,
    own_calls,
    keys,
    progress: Report = None,
) -> LocateResult:
    torch_inputs, jax_kwargs, torch_kwargs = own_calls
    initial = (snapshot(jax_module), snapshot(torch_module))  # the state every working run starts from
    match = require_same_weights(jax_module, torch_module, rename=rename, function="locate", **keys)
    channels = channels_of(channels_first, torch_module, torch_inputs)
    dtype = str(working_dtype(jax_module, inputs))
    jax_side = side(inputs, jax_kwargs, dtype)
    torch_side = side(inputs if torch_inputs is None else torch_inputs, torch_kwargs, dtype)
    truth_inputs = jax_side.truth
    first = to_channels_first(torch_side.truth[0]) if channels.input else torch_side.truth[0]
    keywords = torch_keywords(torch_side.kwargs_truth)
    torch_notes, jax_notes = TruthNotes(), TruthNotes()
    with torch.no_grad(), float64_streamed(torch_module), promoting_torch(torch_module, torch_notes):
        try:
            torch_calls, _ = capture_torch(
                torch_module, (torch_of_numpy(first), *map(torch_of_numpy, torch_side.truth[1:])), keywords
            )
        except Exception as error:
            raise model_call_error("torch", torch_module, error) from error
    total = sum(p.numel() for p in torch_module.parameters())
    beside = rows_fit_beside(torch_module)
    large = is_large(torch_module) and not beside  # freed memory handed back where it is short
    if large:
        release_freed_memory()
    with jax.enable_x64(True):
        jax64 = float64_view(jax_module)
        try:
            keywords = jax_keywords(jax_side.kwargs_truth)
            arrays = tuple(jax_array(a) for a in truth_inputs)
            if not beside:  # a model near the machine's size: one layer's float64 weights at a time
                jax_calls, _ = promoted_call(jax64, lambda: capture_jax(jax64, arrays, keywords), jax_notes)
            else:
                jax_calls, _ = compiled_capture(jax64, arrays, keywords, jax_notes)
        except Exception as error:
            raise model_call_error("JAX", jax_module, error) from error
    if large:
        release_freed_memory()
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
        truth_notes=side_notes(jax_notes.lines(), torch_notes.lines()),
    )
    constants = side_notes([], float32_constants(torch_module))
    result.truth_notes += constants
    layer_strict = keys["strict"] and keys["ignore"] is None  # a layer: strict unless the whole is not
    learned: dict = {}  # layouts the values decided, for rows of the same kinds whose values cannot
    result.torch_only = [c.path for c in torch_calls if by_torch_path.get(c.path) not in jax_called]
    paired = [c for c in torch_calls if by_torch_path.get(c.path) in jax_called]
    quiet_collector = only_new_garbage() if large else contextlib.nullcontext()
    rows_in_turn = one_after_the_other(not beside)  # a 1 B model: one side at a time
    rows = layer_progress(len(paired), "locate", progress)
    judged: set[int] = set()  # torch parameters whose gradients a row judged
    children: dict = {}  # the rows that may stand in for their containers' runs: path -> (layer, calls)
    with rows as advance, quiet_collector, rows_in_turn, traced_once(), values_compared():
        # repeated layers are traced once; deepest first (a call starts after its caller): each parameter's
        # gradient is judged once, at the deepest row holding it that is checked with gradients; a container
        # judges its output and input's
        for call in reversed(paired):
            jax_path = by_torch_path[call.path]
            layer = LayerResult(
                call.path, jax_path, type(call.module).__name__, type(jax_layers[jax_path]).__name__, ""
            )
            calls = (jax_layers, torch_layers, jax_called[jax_path], call)
            restore(jax_module, initial[0])  # the working runs replay from the state before the whole run
            restore(torch_module, initial[1])
            with inherited_truth_notes(constants):  # the model's float32 constants reach every layer
                judge = functools.partial(
                    _judge_row, calls=calls, rename=rename, grads=grads, equal_nan=equal_nan,
                    strict=layer_strict, dtype=dtype, learned=learned, total=total,
                )  # fmt: skip
                layer = _judged_with_stand_ins(
                    layer, judge, judged, children, learned, initial, (jax_module, torch_module)
                )
            if _can_stand_in(layer, calls[1], grads, judged):
                children[call.path] = (layer, calls)
            result.layers.append(layer)
            if large and worth_releasing(call.module):
                release_freed_memory()
            advance()
    result.layers.reverse()  # in execution order
    matched = {layer.jax_path for layer in result.layers}
    result.jax_only = [call.path for call in jax_calls if call.path not in matched]
    return result
