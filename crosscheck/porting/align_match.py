"""The leaf layers :func:`crosscheck.porting.align.align` pairs, and how it pairs them.

A *unit* is a layer that owns weights: on the JAX side a layer with a layout rule
(:mod:`crosscheck.weights.layouts`), its expected torch parameter names and shapes computed by the rule;
on the torch side a module holding parameters (or persistent buffers) itself. Two units fit when every
expected torch name and shape is there (:func:`fit`): 2 when the torch class is one the rule names
(``kind``), 1 for a torch class no rule knows (names and shapes alone), 0 otherwise.

The called units of both sides are aligned like two sequences (:func:`order_candidates`): the most pairs
that fit, in call order, then the most pairs of a fitting kind, then (optionally) the closest names; for
each JAX unit, every torch unit it is paired with in *some* best alignment is a candidate, so a guess is
never mistaken for a decision.

>>> name_score("block.q", "attn.q_proj"), name_score("block.q", "attn.k_proj")
(79, 0)
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field

import numpy as np
from flax import nnx

from crosscheck.numerics import is_floating
from crosscheck.weights import layouts, numpy_of_torch
from crosscheck.weights.layouts import layout_of
from crosscheck.weights.tree import WEIGHT_VARIABLES, submodules, torch_only

BASE, KIND = 10**12, 10**7  # a pair outweighs any number of kinds, a kind any number of name scores
NONE = np.iinfo(np.int64).min // 4


@dataclass
class Unit:
    """A layer that owns weights, on either side: its path, expected (JAX) or held (torch) ``state_dict``
    names and shapes in the torch layout, and where it was called."""

    path: str
    module: object
    specs: dict[str, tuple]
    kind: str  # JAX: the layout's name; torch: the class name
    types: frozenset[str]  # JAX: the torch classes the rule names; torch: the class and its bases
    order: int | None = None  # position of its first call; None: never called
    input_key: str | None = None  # digest of its first array argument (parallel layers share it)
    values: list = field(default_factory=list)  # [(torch name, torch-layout array)]

    @property
    def dotted(self) -> bool:
        return any("." in name for name in self.specs)


def _digest(array) -> str:
    a = np.ascontiguousarray(np.asarray(array))
    return hashlib.sha1(str((a.shape, a.dtype.str)).encode() + a.tobytes()).hexdigest()


def first_array(tree):
    """The first array (or tensor) of nested tuples, lists and dicts (a ``ModelOutput`` too)."""

    if isinstance(tree, dict):
        tree = list(tree.values())
    if isinstance(tree, (tuple, list)):
        for item in tree:
            found = first_array(item)
            if found is not None:
                return found
        return None
    return tree if hasattr(tree, "shape") and hasattr(tree, "dtype") else None


def input_key(call) -> str | None:
    """A digest of a call's first array argument: layers given the same tensor (q, k, v) share it."""
    first = first_array((call.args, call.kwargs))
    if first is None:
        return None
    if hasattr(first, "detach"):
        first = numpy_of_torch(first)
    return _digest(first)


def _torch_layout_shape(rule, shape) -> tuple:
    return tuple(rule.to_torch(np.broadcast_to(np.empty((), np.int8), shape)).shape)


def jax_units(model: nnx.Module, called: dict) -> tuple[list[Unit], list, list[str]]:
    """The JAX model's ruled layers, its unruled modules that hold variables themselves (``(path, module,
    {name: variable})``, a ViT's ``cls_token``) and the paths whose variables a ruled layer above claims
    (an attention's ``query``); a child a container's rule leaves alone keeps its own rule, as in
    :func:`crosscheck.weights.tree.plan`."""
    units, bare, ruled, inner = [], [], {}, []
    for path, node in submodules(model):
        owner = max(
            (r for r in ruled if path != r and (r == "" or path.startswith(r + "."))), key=len, default=None
        )
        below = path[len(owner) + 1 :] if owner else path
        if owner is not None and any(claim.startswith(below + ".") for claim in ruled[owner]):
            inner.append(path)  # its variables are the ruled layer's (an attention's q, k, v)
            continue
        layout = layout_of(node)
        if layout is None:
            own = {n: v for n, v in vars(node).items() if isinstance(v, WEIGHT_VARIABLES)}
            if own:
                bare.append((path, node, own))
            continue
        rules = layout.rules_for(node)
        ruled[path] = {claim for rule in rules for claim in rule.claims}
        specs, values, shared = {}, [], {}
        for rule in rules:
            variable = rule.variable_of(node, shared)
            if variable is not None:
                specs[rule.torch_name] = _torch_layout_shape(rule, np.shape(variable[...]))
                values.append((rule.torch_name, lambda r=rule, v=variable: r.to_torch(np.asarray(v[...]))))
        if not specs:  # a rule that maps nothing itself (its children map by their own): a container
            continue
        unit = Unit(path, node, specs, layout.name, frozenset(layout.torch_types), values=values)
        if path in called:
            unit.order, unit.input_key = called[path].order, input_key(called[path])
        units.append(unit)
    return units, bare, inner


def torch_direct(module) -> dict:
    """A torch module's own ``state_dict`` entries: parameters and persistent buffers it holds itself."""
    state = dict(module.named_parameters(recurse=False))
    skip = getattr(module, "_non_persistent_buffers_set", set())
    state.update(
        {n: b for n, b in module.named_buffers(recurse=False) if n not in skip and not torch_only(n)}
    )
    return state


def torch_units(model, called: dict) -> list[Unit]:
    """The torch model's modules that hold weights themselves, in definition order (a shared one once)."""
    units = []
    for path, module in model.named_modules():
        own = torch_direct(module)
        if not own:
            continue
        specs = {name: tuple(t.shape) for name, t in own.items()}
        names = frozenset(cls.__name__ for cls in type(module).__mro__)
        unit = Unit(path, module, specs, type(module).__name__, names,
                    values=[(n, lambda t=t: numpy_of_torch(t)) for n, t in own.items()])  # fmt: skip
        if path in called:
            unit.order, unit.input_key = called[path].order, input_key(called[path])
        units.append(unit)
    return units


def _registered():
    found = getattr(layouts, "registered", None)
    return found() if found is not None else tuple(layouts._REGISTRY)


def fit(ours: Unit, theirs: Unit) -> int:
    """2: same names and shapes and a torch class the rule names; 1: same names and shapes, a torch
    class no rule names (a user's own); 0: anything else (a class another rule names is another kind)."""
    if ours.dotted:
        held = {k: tuple(v.shape) for k, v in theirs.module.state_dict().items() if not torch_only(k)}
    else:
        held = theirs.specs
    if held != ours.specs:
        return 0
    if theirs.types & ours.types:
        return 2
    others = {name for layout in _registered() for name in layout.torch_types}
    return 0 if theirs.types & others else 1


_ALIASES = {"q": "query", "k": "key", "v": "value", "o": "output", "out": "output", "attn": "attention",
            "ln": "norm", "layernorm": "norm", "fc": "dense", "emb": "embedding", "embeddings": "embedding",
            "embed": "embedding", "weight": "", "proj": "", "self": "", "attention": "attention"}  # fmt: skip


@functools.lru_cache(maxsize=4096)
def _tokens(piece: str) -> frozenset[str]:
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", piece)
    return frozenset({_ALIASES.get(w.lower(), w.lower()) for w in words} - {""})


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def name_score(jax_path: str, torch_path: str) -> int:
    """How alike two paths read, 0 to 99: mostly their last names' words (aliases such as q/query
    folded), then the words of the whole paths."""
    last = _jaccard(_tokens(jax_path.rsplit(".", 1)[-1]), _tokens(torch_path.rsplit(".", 1)[-1]))
    whole = _jaccard(_tokens(jax_path), _tokens(torch_path))
    return int(70 * last + 29 * whole)


def _forward(weights: np.ndarray) -> np.ndarray:
    """``F[i, j]``: the best alignment of the first ``i`` rows with the first ``j`` columns."""
    n, m = weights.shape
    table = np.zeros((n + 1, m + 1), np.int64)
    for i in range(1, n + 1):
        step = table[i - 1].copy()
        diagonal = table[i - 1, :-1] + weights[i - 1]
        step[1:] = np.maximum(step[1:], np.where(weights[i - 1] > 0, diagonal, NONE))
        table[i] = np.maximum.accumulate(step)
    return table


def order_candidates(weights: np.ndarray) -> tuple[list[int | None], list[set[int]], list[bool]]:
    """One best order-preserving alignment of rows with columns (``weights[i, j] > 0``: they may pair),
    each row's partner in it (earliest columns first), every column it pairs with in some best alignment,
    and whether some best alignment leaves it out."""
    n, m = weights.shape
    forward = _forward(weights)
    backward = _forward(weights[::-1, ::-1])[::-1, ::-1]  # B[i, j]: rows i.., columns j..
    best = forward[n, m]
    candidates, skippable = [], []
    for i in range(n):
        through = forward[i, :-1] + weights[i] + backward[i + 1, 1:]
        candidates.append({int(j) for j in np.flatnonzero((weights[i] > 0) & (through == best))})
        skippable.append(bool(np.max(forward[i] + backward[i + 1]) == best))
    partner: list[int | None] = [None] * n
    i = j = 0
    while i < n and j < m:
        if weights[i, j] > 0 and weights[i, j] + backward[i + 1, j + 1] == backward[i, j]:
            partner[i], i, j = j, i + 1, j + 1
        elif backward[i, j + 1] == backward[i, j]:
            j += 1
        else:
            i += 1
    return partner, candidates, skippable


def value_key(unit: Unit) -> tuple | None:
    """The unit's weights as digests in a common dtype (float32 or int64), constants left out (a fresh
    layer norm's ones say nothing); ``None`` when nothing is left."""
    parts = []
    for name, value in unit.values:
        a = np.asarray(value())
        if a.size < 2 or np.all(a == a.flat[0]):
            continue
        a = a.astype(np.float32 if is_floating(a.dtype) else np.int64)
        parts.append((name, _digest(a)))
    return tuple(sorted(parts)) or None
