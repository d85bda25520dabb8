"""One row of ``locate``: a submodule present in both models, both frameworks' versions called on the
truth's inputs in the JAX layout, and judged.

A JAX argument takes the truth's value when the torch call has a floating array at the same
position: as it is when the shapes agree, else moved into the JAX layout
(:mod:`crosscheck.porting.activation_layouts`: NCHW -> NHWC, ``(B, T, H·hd)`` -> ``(B, T, H, hd)``, ...),
the layout found from the values. Outputs are compared in the JAX layout the same way. A layout the
values cannot decide (this layer's numbers differ: a bug) is taken from another row of the same kinds
and shapes that decided it, else the plain split/merge or channels move is assumed, and the row says
which. A pair no layout fits is **not judged**, with the reason, and never counts as a failure
— except one output each, from the truth's input, of different sizes: no layout can make those one,
and the row fails (a stride moved from one conv to the next fails at the first).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import jax
import jax.numpy as jnp
import numpy as np
import torch

from crosscheck.numerics import is_floating
from crosscheck.porting.activation_layouts import assumed_layout, find_layout
from crosscheck.porting.capture import Call
from crosscheck.porting.checking import check, reduction_lengths, runs_beside
from crosscheck.porting.compiled_call import called
from crosscheck.porting.layout_adapter import PREFIX, InJaxLayout, each_floating, replayable
from crosscheck.porting.magnitudes import magnitudes
from crosscheck.porting.streaming import float64_streamed
from crosscheck.porting.truth import TruthNotes, inherited, promoting_torch, truth_dtype
from crosscheck.porting.verdicts import (
    Evidence,
    ItemResult,
    has_analytic_bound,
    judge_analytic,
    judge_relative,
)
from crosscheck.weights import numpy_of_torch
from crosscheck.weights.arrays import jax_array, jax_of_numpy
from crosscheck.weights.tree import Rename, renamed


@dataclass
class LayerResult:
    """One submodule present in both models, judged on its own inputs (or not judged: ``error``)."""

    path: str  # torch's dotted path ("" is the whole model)
    jax_path: str
    torch_type: str
    jax_type: str
    inputs: str  # "truth" when every JAX floating input took the truth's value, else "own"
    items: list[ItemResult] = field(default_factory=list)
    error: str | None = None  # why the row is not judged
    failure: str | None = None  # why the row fails without numbers to compare (a different output shape)
    layouts: list[str] = field(default_factory=list)  # the layout changes the row was judged through
    notes: list[str] = field(default_factory=list)  # how the row was judged where it is not the usual
    stood_in: list[str] = field(default_factory=list)  # children whose stand-ins ran in its place

    @property
    def judged(self) -> bool:
        return self.error is None and (bool(self.items) or self.failure is not None)

    @property
    def passed(self) -> bool:
        return self.judged and self.failure is None and all(item.passed for item in self.items)

    @property
    def rule(self) -> str:
        return "/".join(dict.fromkeys(item.rule for item in self.items)) or "–"


Learned = dict  # (jax type, torch type, which, torch shape, JAX shape) -> Layout, from rows values decided


def floating_leaves(tree) -> list:
    """The floating arrays and tensors of nested tuples, lists and dicts (a ``ModelOutput`` too), in order."""
    if isinstance(tree, torch.Tensor):
        return [tree] if tree.is_floating_point() else []
    if isinstance(tree, (jax.Array, np.ndarray)):
        return [tree] if is_floating(np.asarray(tree).dtype) else []
    if isinstance(tree, dict):
        return [leaf for value in tree.values() for leaf in floating_leaves(value)]
    if isinstance(tree, (tuple, list)):
        return [leaf for value in tree for leaf in floating_leaves(value)]
    return []


def _layout(layer: LayerResult, which: str, ours: np.ndarray, theirs: np.ndarray, learned: Learned):
    """The layout turning ``theirs`` (torch) into ``ours`` (JAX), noted on the row; ``None`` if none fits."""
    key = (layer.jax_type, layer.torch_type, which, theirs.shape, ours.shape)
    found = find_layout(ours, theirs)
    how = ""
    if found is not None:
        learned.setdefault(key, found)
    elif key in learned:
        found, how = learned[key], " (as another row of these kinds decided: values differ here)"
    elif ours.shape == theirs.shape:
        return assumed_layout(theirs.shape, ours.shape, same_shape_first=True)
    else:
        found = assumed_layout(theirs.shape, ours.shape)
        how = " (assumed: values differ here)"
    if found is not None and not found.identity:
        layer.layouts.append(f"{which}: {found.describe()}{how}")
    return found


def substituted(layer: LayerResult, jax_call: Call, torch_call: Call, learned: Learned, found=None):
    """The JAX call's arguments with each floating array replaced by the truth's at the same position,
    in the JAX layout; ``(args, kwargs, "truth" | "own")``: ``"truth"`` when every one was replaced.
    ``found``, a list, gets each replaced array's layout, in order."""
    truth = [numpy_of_torch(t) for t in floating_leaves((torch_call.args, torch_call.kwargs))]
    position, replaced, total = iter(range(len(truth))), [0], [0]

    def swap(leaf):
        if not (isinstance(leaf, (jax.Array, np.ndarray)) and is_floating(np.asarray(leaf).dtype)):
            return leaf
        total[0] += 1
        index = next(position, None)
        if index is None or truth[index].size != np.size(leaf):
            return leaf
        value = truth[index]
        layout = _layout(layer, f"input {index}", np.asarray(leaf), value, learned)
        if layout is None:
            return leaf
        value = layout.to_jax(value)
        replaced[0] += 1
        if found is not None:
            found.append(layout)
        return jax_array(value)

    args, kwargs = jax.tree.map(swap, (jax_call.args, jax_call.kwargs))
    return args, kwargs, "truth" if replaced[0] == total[0] else "own"


def cast(tree, dtype):
    """Every floating array and tensor of ``tree`` in ``dtype``."""

    def one(leaf):
        if isinstance(leaf, torch.Tensor):
            return leaf.to(getattr(torch, str(dtype))) if leaf.is_floating_point() else leaf
        if isinstance(leaf, (jax.Array, np.ndarray)) and is_floating(np.asarray(leaf).dtype):
            return jnp.asarray(leaf, dtype)
        return leaf

    return jax.tree.map(one, tree, is_leaf=lambda x: isinstance(x, torch.Tensor))


def _int32(tree):
    """int64 arrays as int32: what the working run (outside 64-bit mode) would have been given."""

    def one(leaf):
        if isinstance(leaf, (jax.Array, np.ndarray)) and leaf.dtype == np.int64:
            return jax_of_numpy(np.asarray(leaf), np.int32)  # cast and copied in one
        return leaf

    return jax.tree.map(one, tree)


def torch_calls(torch_call: Call, dtype: str, matched: int):
    """``(working, truth)``: the torch call's ``(args, kwargs)`` in the working dtype, and in float64 for
    the truth. The first ``matched`` floating arrays (those the JAX call takes too) are rounded to the
    working dtype first, so both frameworks' runs see the same values; the others (a mask, rotary tables
    the parent made, which the JAX layer makes itself) stay as the float64 run made them."""
    working, index = getattr(torch, dtype), itertools.count()
    call = (torch_call.args, torch_call.kwargs)

    def truth(tensor: torch.Tensor) -> torch.Tensor:
        return (tensor.to(working) if next(index) < matched else tensor).to(torch.float64)

    return each_floating(call, lambda tensor: tensor.to(working)), each_floating(call, truth)


def _in_jax_layout(layer: LayerResult, truths, works, learned: Learned) -> list[Evidence] | None:
    """Each output's evidence in the JAX layout; ``None`` (and the row's reason) when a pair fits none.

    One output each, from the truth's input, holding different numbers of values: no layout makes them
    one, the two compute different functions (a stride moved to another layer), and the row fails."""
    evidence = []
    single = len(floating_leaves(truths[0])) == 1 == len(floating_leaves(truths[1]))
    pairs = zip(floating_leaves(truths[0]), floating_leaves(truths[1]), strict=False)
    for index, ((jax_truth, torch_truth), (jax_work, torch_work)) in enumerate(
        zip(pairs, zip(floating_leaves(works[0]), floating_leaves(works[1]), strict=False), strict=False)
    ):
        ours, theirs = np.asarray(jax_truth), numpy_of_torch(torch_truth)
        work = numpy_of_torch(torch_work)
        which = "output" if index == 0 else f"output {index}"
        if single and layer.inputs == "truth" and ours.size != theirs.size:
            layer.failure = (
                f"{which} has shape {ours.shape} in JAX, {theirs.shape} in torch from the same input "
                f"({ours.size} values against {theirs.size}): a different function, not a layout"
            )
            return None
        layout = _layout(layer, which, ours, theirs, learned) if ours.size == theirs.size else None
        if layout is None:
            layer.error = (
                f"not judged: {which} has shape {ours.shape} in JAX, {theirs.shape} in torch, and no "
                "axis permutation, split or merge of torch's values gives JAX's"
            )
            return None
        theirs, work = layout.to_jax(theirs), layout.to_jax(work)
        evidence.append(Evidence(np.asarray(jax_work), work, ours, theirs))
    return evidence


def judge_layer(layer: LayerResult, jax_layers, torch_layers, jax_call, torch_call, dtype: str,
                equal_nan: bool, learned: Learned) -> None:  # fmt: skip
    """Call both frameworks' submodules on the truth's inputs and judge every output. Every run sees the
    same input values: the truth's rounded to the working dtype (the float64 runs hold them exactly)."""
    with jax.enable_x64(
        True
    ):  # the truth's float64 values stay float64, rounded as the working runs see them
        args, kwargs, layer.inputs = substituted(layer, jax_call, torch_call, learned)
        args, kwargs = cast(cast((args, kwargs), dtype), "float64")
    torch64, torch_work = torch_call.module, torch_layers[layer.path]
    notes = TruthNotes()  # the whole model's runs list the promotions; here they set the truth's precision
    with torch.no_grad():
        matched = len(floating_leaves((jax_call.args, jax_call.kwargs)))
        (torch_args, torch_kwargs), (truth_args, truth_kwargs) = torch_calls(torch_call, dtype, matched)
        torch_call.restore()  # a stateful layer (a cache) replays from the state it had before its call
        with float64_streamed(torch64), promoting_torch(torch64, notes):
            torch_truth_out = torch64(*truth_args, **truth_kwargs)
        torch_call.restore()  # the truth ran on this very module (its weights widened in place)
        torch_work_out = torch_work(*torch_args, **torch_kwargs)
    jax_call.restore()
    compiled = runs_beside()  # else a model near the machine's size: one layer's float64 weights at a time
    with jax.enable_x64(True):
        jax_truth_out = called(jax_call.module, args, kwargs, compiled, notes)
        work_args, work_kwargs = cast((args, kwargs), dtype)
    x64 = bool(jax.config.jax_enable_x64) or np.dtype(dtype) == np.float64  # as the port runs alone
    with jax.enable_x64(x64):
        work_args, work_kwargs = (work_args, work_kwargs) if x64 else _int32((work_args, work_kwargs))
        jax_work_out = called(jax_layers[layer.jax_path], work_args, work_kwargs, compiled)
    evidence = _in_jax_layout(
        layer, (jax_truth_out, torch_truth_out), (jax_work_out, torch_work_out), learned
    )
    if evidence is None:
        return
    judging = {"equal_nan": equal_nan, "truth_dtype": truth_dtype(notes.lines() + inherited())}
    jax_layer = jax_layers[layer.jax_path]
    analytic = has_analytic_bound(jax_layer) and layer.inputs == "truth" and not kwargs and len(args) == 1
    for index, one in enumerate(evidence):
        item = "output" if len(evidence) == 1 else f"output[{index}]"
        if analytic and index == 0:
            x = np.asarray(args[0])
            with jax.enable_x64(True):
                size = magnitudes(jax_layer, (x,), None, grads=False).output
            k = reduction_lengths(jax_layer, x.shape)["output"]
            layer.items.append(judge_analytic(item, one, size, k, dtype, **judging))
        else:
            layer.items.append(judge_relative(item, one, dtype, **judging))
    if not layer.items:
        layer.error = "not judged: no floating output to compare"


def _layer_rename(jax_path: str, torch_path: str, rename: Rename):
    """The whole model's ``rename`` for the weights of one layer (keys relative to the layer)."""

    def mapped(key: str) -> str:
        full = renamed(f"{jax_path}.{key}" if jax_path else key, rename)
        return full[len(torch_path) + 1 :] if torch_path else full

    return mapped


def output_layouts(probe: LayerResult, jax_call: Call, torch_call: Call, learned: Learned):
    """The layout of each floating output pair, from both whole-model float64 runs' outputs of the layer;
    ``None`` when the outputs do not pair one to one in some layout."""
    ours, theirs = floating_leaves(jax_call.output), floating_leaves(torch_call.output)
    if not ours or len(ours) > len(theirs):  # torch's further outputs (attention weights) are not compared
        return None
    layouts = []
    for index, (jax_output, torch_output) in enumerate(zip(ours, theirs, strict=False)):
        jax_output, torch_output = np.asarray(jax_output), numpy_of_torch(torch_output)
        if jax_output.size != torch_output.size:
            return None
        which = "output" if index == 0 else f"output {index}"
        layouts.append(_layout(probe, which, jax_output, torch_output, learned))
    return None if None in layouts else layouts


def check_layer(layer: LayerResult, jax_layers, torch_layers, jax_call, torch_call, rename, equal_nan,
                strict: bool, dtype: str, learned: Learned, parameters: dict) -> bool:  # fmt: skip
    """With gradients: :func:`check` the pair on the truth's inputs (else the forward-only judgment
    runs); whether it ran. Only ``parameters`` (the torch layer's, by name) are differentiated, and
    the input. Where the two calls differ — activations in another layout, a torch call with
    keyword arrays or more arrays than the JAX one — torch's is replayed as captured around the JAX
    call's arguments (:class:`InJaxLayout`), so the row is judged in the JAX layout, input gradient too."""
    probe = LayerResult(layer.path, layer.jax_path, layer.torch_type, layer.jax_type, "")
    found: list = []
    with jax.enable_x64(True):
        args, kwargs, given = substituted(probe, jax_call, torch_call, learned, found)
    # a floating keyword argument of the JAX call, or a cache object in torch's: judged forward only
    if given != "truth" or floating_leaves(kwargs) or not replayable((torch_call.args, torch_call.kwargs)):
        return False
    outputs = output_layouts(probe, jax_call, torch_call, learned)
    if outputs is None:
        return False
    layer_rename = _layer_rename(layer.jax_path, layer.path, rename)
    torch_layer = torch_layers[layer.path]
    keyword = {"rename": layer_rename, "jax_kwargs": kwargs, "grads_of": list(parameters)}
    plain = not torch_call.kwargs and len(args) == len(torch_call.args) and None not in torch_call.args
    if probe.layouts or not plain:
        call = torch_calls(torch_call, dtype, len(found))[1]
        torch_layer = InJaxLayout(torch_layer, call, found, outputs)
        keyword.update(rename=lambda key: PREFIX + layer_rename(key), channels_first=False)
        keyword["grads_of"] = [PREFIX + name for name in parameters]
    inputs = [np.asarray(a) for a in args]
    grads = bool(parameters) or is_floating(inputs[0].dtype)  # else nothing here to differentiate
    result = check(jax_layers[layer.jax_path], torch_layer, *inputs, grads=grads, equal_nan=equal_nan,
                   strict=strict, **keyword)  # fmt: skip
    items = result.items
    if isinstance(torch_layer, InJaxLayout):  # the adapter's "layer." is not the layer's weights' name
        items = [replace(i, item=i.item.replace("grads." + PREFIX, "grads.", 1)) for i in items]
    layer.inputs, layer.items, layer.layouts = given, items, probe.layouts
    return True
