"""Stand-in children: ``locate`` judges a container's own code without running its subtree again.

Rows are judged deepest first, so when a container's turn comes its matched children have verdicts. A
child that passed (on the truth's inputs, with its parameters' gradients judged where gradients are)
is replaced, for the container's runs, by a *stand-in*: the same function in both frameworks and both
dtypes, in each framework's own layout of the child's inputs and outputs,

    y = y* + Σₖ sₖ·Vₖ,   sₖ = Σᵢ ⟨xᵢ − xᵢ*, Wᵢₖ⟩,   k = 1 … RANK,

where ``xᵢ*`` and ``y*`` are the child's float64-truth inputs and outputs from the whole-model run, and
``W``, ``V`` are random maps drawn from the child's path, scaled so that an input off by a relative ``ε``
moves the output by about ``FOLLOW·ε`` of its scale. The container's runs then cost its own code
(residuals, masks, softmax), not its subtree's; its wiring still shows: a child given the wrong tensor,
children called in the wrong order, a gradient the container stops (the stand-ins are differentiable).

A child is stood in only where this is exact bookkeeping: one call in each framework's pass, every
JAX floating input taking the truth's value, outputs that pair one to one in a layout (tensors in
tuples, lists and dicts in torch; in tuples and lists in JAX), and no ``forward`` set on the instance.
Otherwise the container runs it. A container judged this way that does not pass on the truth's inputs
is judged again with its real children (``locate``), so a failing verdict is always the real one.

>>> standin = StandIn("fc", [np.ones((2, 3))], [np.full((2, 4), 5.0)], 1, template=torch.zeros(2, 4))
>>> x = torch.ones(2, 3, dtype=torch.float64)
>>> bool(torch.all(standin.torch_forward(None)(x) == 5.0))
True
>>> bool(torch.all(standin.torch_forward(None)(2 * x) == 5.0))
False
"""

from __future__ import annotations

import contextlib
import copy
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

from crosscheck.numerics import is_floating
from crosscheck.numerics.relative import rms
from crosscheck.porting.capture import Call
from crosscheck.porting.locate_layers import LayerResult, floating_leaves, output_layouts, substituted
from crosscheck.porting.streaming import left_as_they_are
from crosscheck.porting.truth import in_truth_run
from crosscheck.weights import numpy_of_torch

RANK = 1
"""How many random directions of its inputs a stand-in's output follows. One is enough: a wrong input
``x`` moves ``s`` by ``|z|·ε`` (``ε`` its relative distance from the truth's, ``z`` a standard normal fixed
by the path), so a wrong tensor hides below float64's rounding only where ``|z| < 10⁻¹¹``. Two cost more
than they gave: XLA:CPU compiled each ``(2, n)`` product and its gradient as 10–12 kernels, 75–105 ms per
program, against 4–8 kernels and 20–70 ms at rank 1; most of what a container's row took to compile."""

FOLLOW = 2.0**-12
"""How far a stand-in's output follows its inputs: a child given another tensor moves its output by about
``FOLLOW`` of its scale, over 10¹¹ times float64's rounding, so the float64 runs show the wiring; the
stand-in's own rounding in the working dtype (its products run over whole activations, summed in a
different order in each framework) is scaled down as much, below the container's (at ``FOLLOW = 1`` it
was not: a BERT layer's input gradient came out 1.2× the allowance, and the layer was run again)."""

ATTRIBUTE = "crosscheck_stand_in"
"""The attribute a stood-in JAX child carries while its container is judged (its stand-in's arrays)."""


class StandInValue(nnx.Variable):
    """One of a stand-in's arrays: never a weight, never differentiated."""


class StandInArrays(nnx.Module):
    """A stand-in's arrays on the JAX child, so that traced programs take them as arguments (the rows of a
    model's repeated layers share one program); ``treedef_key`` names the output's tree, ``finite`` says
    per input whether the truth's holds only finite values (static: rows alike share a program)."""

    def __init__(self, arrays: dict[str, list], treedef_key: str, finite: tuple[bool, ...]):
        self.treedef_key = treedef_key
        self.finite = finite
        self.counts = tuple((name, len(values)) for name, values in arrays.items())
        with jax.enable_x64(True):
            for name, values in arrays.items():
                for index, value in enumerate(values):
                    setattr(self, f"{name}{index}", StandInValue(jnp.asarray(value)))

    def arrays(self) -> dict[str, list]:
        return {name: [getattr(self, f"{name}{i}")[...] for i in range(n)] for name, n in self.counts}


def _scale(values: np.ndarray) -> float:
    """The root-mean-square of the finite values, 1 where there are none or they are all zero."""
    return rms(values[np.isfinite(values)]) or 1.0


@dataclass
class StandIn:
    """One child's stand-in in torch's layout (``x``, ``w`` per paired input; ``y``, ``v`` per output;
    ``v`` is ``None`` for torch's outputs beyond those JAX returns, which are given back as captured) and,
    once :meth:`in_jax_layout` ran, in JAX's.

    Shape:
        ``x[i]``: the child's i-th floating input in torch's layout; ``w[i]``: ``(RANK, *x[i].shape)``;
        ``y[j]``: its j-th floating output; ``v[j]``: ``(RANK, *y[j].shape)``.
    """

    path: str
    x: list[np.ndarray]
    y: list[np.ndarray]
    compared: int  # the outputs JAX returns too (the first ones): those follow the inputs
    w: list[np.ndarray] = field(default_factory=list)
    v: list[np.ndarray | None] = field(default_factory=list)
    template: object = None  # torch's output as captured: its structure, and what is not floating
    jax: dict | None = None  # {"x", "w", "y", "v"}: the same arrays in the JAX layout
    finite: tuple[bool, ...] = ()  # per input: whether every value of ``x[i]`` is finite (torch's runs)

    def __post_init__(self):
        self.finite = tuple(bool(np.isfinite(x).all()) for x in self.x)
        random = np.random.default_rng(zlib.crc32(self.path.encode()))
        paired = max(len(self.x), 1)

        def directions(shape, scale):  # unit variance; uniform float32 draws take half a normal's time
            drawn = random.random((RANK, *shape), np.float32).astype(np.float64)
            drawn -= 0.5  # in place: the same operations as (drawn - 0.5) * ..., without two temporaries
            drawn *= np.sqrt(12.0) * scale
            return drawn

        self.w = [directions(x.shape, 1 / (np.sqrt(x.size * paired) * _scale(x))) for x in self.x]
        self.v = [
            directions(y.shape, FOLLOW * _scale(y)) if j < self.compared else None
            for j, y in enumerate(self.y)
        ]

    def in_jax_layout(self, inputs: list, outputs: list) -> None:
        """The arrays moved into JAX's layout by the child's input and output layouts."""

        def each(layout, stacked):
            return np.stack([layout.to_jax(one) for one in stacked])

        self.jax = {
            "x": [layout.to_jax(x) for layout, x in zip(inputs, self.x, strict=True)],
            "w": [each(layout, w) for layout, w in zip(inputs, self.w, strict=True)],
            "y": [layout.to_jax(y) for layout, y in zip(outputs, self.y, strict=False)],
            "v": [each(layout, v) for layout, v in zip(outputs, self.v, strict=False)],
        }

    def torch_forward(self, module):
        """The child's ``forward`` while it stands in: torch's floating arguments in call order. Its arrays
        are cast to a run's dtype once, for every run in that dtype."""
        wide = {
            "x": [torch.from_numpy(a) for a in self.x],
            "w": [torch.from_numpy(a) for a in self.w],
            "y": [torch.from_numpy(a) for a in self.y],
            "v": [None if a is None else torch.from_numpy(a) for a in self.v],
        }
        cast: dict = {}

        def forward(*args, **kwargs):
            given = floating_leaves((args, kwargs))[: len(wide["x"])]
            dtype = _run_dtype(given, module, torch.float64, _torch_weight_dtype)
            arrays = cast.get(dtype)
            if arrays is None:
                arrays = {name: [_as(a, dtype, torch) for a in values] for name, values in wide.items()}
                if all(a is None or a.dtype == dtype for values in arrays.values() for a in values):
                    cast[dtype] = arrays  # not where a truth run promoted the cast: that run's alone
            s = _directions(given, arrays["x"], arrays["w"], dtype, torch, self.finite)
            outputs = zip(arrays["y"], arrays["v"], strict=True)
            values = iter(_follow(target, direction, s) for target, direction in outputs)
            return _rebuilt(self.template, values)

        return forward


def _torch_weight_dtype(module) -> torch.dtype | None:
    """The dtype of the module's first floating parameter (float64 in a truth run), ``None`` without one."""
    floating = [p.dtype for p in module.parameters() if p.is_floating_point()] if module is not None else []
    return floating[0] if floating else None


def _directions(given, stars, maps, dtype, xp, finite):
    """``sₖ = Σᵢ ⟨xᵢ − xᵢ*, Wᵢₖ⟩`` (an infinity equal to the truth's adds nothing; ``finite[i]``: ``xᵢ*``
    holds none, so nothing is to be zeroed)."""
    total = None
    for value, star, stacked, bounded in zip(given, stars, maps, finite, strict=True):
        star, stacked = _as(star, dtype, xp), _as(stacked, dtype, xp)
        off = value - star  # its gradient flows where the two are equal too; ∞ − ∞ alone is zeroed
        if not bounded:
            off = xp.where(xp.isnan(off) & (value == star), xp.zeros_like(off), off)
        part = stacked.reshape(stacked.shape[0], -1) @ off.reshape(-1)  # a product, not a reduction: 5-9×
        total = part if total is None else total + part  # faster in XLA:CPU, whose reductions are slow here
    return total


def _as(array, dtype, xp):
    if array is None:
        return None
    return array.to(dtype) if xp is torch else jnp.asarray(array, dtype)


def _follow(target, direction, s):
    """``y* + Σₖ sₖ·Vₖ`` (``y*`` alone where there are no inputs or no directions)."""
    if direction is None or s is None:  # a copy: a container may change its child's output in place
        return target.clone() if isinstance(target, torch.Tensor) else target
    direction = _as(direction, target.dtype, torch if isinstance(target, torch.Tensor) else jnp)
    return target + (s @ direction.reshape(direction.shape[0], -1)).reshape(target.shape)


def _rebuilt(template, values: Iterator):
    if isinstance(template, torch.Tensor) and template.is_floating_point():
        return next(values)
    if type(template) in (tuple, list):
        return type(template)(_rebuilt(value, values) for value in template)
    if isinstance(template, dict):  # a ModelOutput too: its copy keeps its class, keys and attributes
        rebuilt = copy.copy(template)
        for key, value in template.items():
            rebuilt[key] = _rebuilt(value, values)
        return rebuilt
    return template


def rebuildable_torch(output) -> bool:
    """Whether a torch output is tensors, ``None`` and plain values in tuples, lists and dicts (a
    ``ModelOutput``), which :func:`_rebuilt` gives back with the stand-in's tensors."""
    if isinstance(output, (tuple, list)):
        return type(output) in (tuple, list) and all(rebuildable_torch(value) for value in output)
    if isinstance(output, dict):
        return all(rebuildable_torch(value) for value in output.values())
    return True


def rebuildable_jax(output) -> bool:
    """Whether every leaf of a JAX output is a floating array (its tree rebuilt from the stand-in's)."""
    leaves = jax.tree.leaves(output)
    if not leaves or isinstance(output, dict) or any(isinstance(o, dict) for o in _nested(output)):
        return False
    return all(isinstance(leaf, (jax.Array, np.ndarray)) and is_floating(leaf.dtype) for leaf in leaves)


def _nested(tree) -> list:
    if isinstance(tree, (tuple, list)):
        return [tree, *(inner for value in tree for inner in _nested(value))]
    return [tree]


def _jax_call(original, treedefs: dict):
    """``original`` (a class's ``__call__``), or the stand-in where the instance carries one."""

    def call(layer, *args, **kwargs):
        carried = vars(layer).get(ATTRIBUTE)
        if carried is None:
            return original(layer, *args, **kwargs)
        given = [
            leaf
            for leaf in jax.tree.leaves((args, kwargs))
            if isinstance(leaf, (jax.Array, np.ndarray)) and is_floating(jnp.asarray(leaf).dtype)
        ]
        dtype = _run_dtype(given, layer, jnp.float64, _jax_weight_dtype)
        arrays = carried.arrays()
        s = _directions([jnp.asarray(g) for g in given], arrays["x"], arrays["w"], dtype, jnp, carried.finite)
        values = [
            _follow(jnp.asarray(target, dtype), direction, s)
            for target, direction in zip(arrays["y"], arrays["v"], strict=True)
        ]
        return jax.tree.unflatten(treedefs[carried.treedef_key], values)

    return call


def _run_dtype(given: list, module, float64, weight_dtype):
    """The dtype a stand-in computes in: float64 in a truth run, else its first floating input's, else its
    weights' (in a truth run those may still be the working dtype's: widened only where used)."""
    if in_truth_run():
        return float64
    return given[0].dtype if given else weight_dtype(module)


def _jax_weight_dtype(layer):
    """The dtype of the layer's first floating ``nnx.Param``, ``None`` without one."""
    leaves = [leaf for leaf in jax.tree.leaves(nnx.state(layer, nnx.Param)) if is_floating(leaf.dtype)]
    return leaves[0].dtype if leaves else None


@contextlib.contextmanager
def standing_in(stood_in: list[tuple[StandIn, list, object, object]]):
    """While open, each ``(stand_in, jax_instances, jax_output, torch_module)`` stands in: the JAX
    instances (the working model's child and the float64 view's) carry its arrays, and their classes'
    ``__call__`` answers for them; torch's module's ``forward`` is the stand-in's. All undone after."""
    originals, forwards, carriers, treedefs = {}, [], [], {}
    try:
        for stand_in, instances, jax_output, torch_module in stood_in:
            treedef = jax.tree.structure(jax_output)
            key = str(treedef)
            treedefs[key] = treedef
            for instance in instances:
                owner = next(c for c in type(instance).__mro__ if "__call__" in vars(c))
                if owner not in originals:
                    originals[owner] = vars(owner)["__call__"]
                setattr(instance, ATTRIBUTE, StandInArrays(stand_in.jax, key, stand_in.finite))
                carriers.append(instance)
            forwards.append((torch_module, vars(torch_module).get("forward")))
            torch_module.forward = stand_in.torch_forward(torch_module)
        for owner, original in originals.items():
            owner.__call__ = _jax_call(original, treedefs)
        reading_inputs = [module for stand_in, *_, module in stood_in if stand_in.x]
        with left_as_they_are(reading_inputs):  # one without inputs takes its dtype from its weights'
            yield
    finally:
        for owner, original in originals.items():
            owner.__call__ = original
        for instance in carriers:
            if ATTRIBUTE in vars(instance):
                delattr(instance, ATTRIBUTE)
        for module, own in forwards:
            if own is None:
                vars(module).pop("forward", None)
            else:
                module.forward = own


def stand_in_of(layer: LayerResult, jax_call: Call, torch_call: Call, learned: dict) -> StandIn | None:
    """The stand-in of a judged row's child, or ``None`` where one would not be exact bookkeeping (see the
    module's docstring)."""
    if jax_call.count != 1 or torch_call.count != 1 or "forward" in vars(torch_call.module):
        return None
    if not (rebuildable_torch(torch_call.output) and rebuildable_jax(jax_call.output)):
        return None
    try:
        return _built(layer, jax_call, torch_call, learned)
    except Exception:  # noqa: BLE001 - a child whose arrays do not move between layouts runs as it is
        return None


def _built(layer: LayerResult, jax_call: Call, torch_call: Call, learned: dict) -> StandIn | None:
    probe = LayerResult(layer.path, layer.jax_path, layer.torch_type, layer.jax_type, "")
    found: list = []
    with jax.enable_x64(True):
        given = substituted(probe, jax_call, torch_call, learned, found)[2]
    outputs = output_layouts(probe, jax_call, torch_call, learned)
    if given != "truth" or outputs is None:
        return None
    x = [numpy_of_torch(t) for t in floating_leaves((torch_call.args, torch_call.kwargs))][: len(found)]
    if not x and None in (_jax_weight_dtype(jax_call.module), _torch_weight_dtype(torch_call.module)):
        return None  # nothing tells a run's dtype: its output would be float64 in the working runs too
    y = [numpy_of_torch(t) for t in floating_leaves(torch_call.output)]
    stand_in = StandIn(layer.path, x, y, len(outputs), template=torch_call.output)
    stand_in.in_jax_layout(found, outputs)
    return stand_in
