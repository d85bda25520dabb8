"""A JAX module tree mapped onto PyTorch ``state_dict`` keys, leaf by leaf, by attribute path.

The Flax path ``encoder.layer.0.intermediate.dense`` with its variable ``kernel`` is the torch key
``encoder.layer.0.intermediate.dense.weight``: the path joined with dots, then the leaf's rule
(:mod:`crosscheck.weights.layouts`) for the last name and the layout. Where the two models name
their submodules differently, ``rename`` maps the keys: a dict of key prefixes (the longest match
wins) or a callable from the JAX-side key to the torch key, like the rename tables of Hugging
Face's converters. Every parameter must map to exactly one key: one :class:`WeightsError` lists
every one that does not (no rule, or two parameters on one key) before anything is written.

A rule may own its layer's children (``ParamRule.parts``: ``nnx.MultiHeadAttention``'s ``query``,
``key``, ``value`` and ``out`` are torch's ``in_proj_weight`` and ``out_proj``); a child whose
variables no ruled layer above it claims is mapped by its own rule. So a container that holds
parameters directly (a ViT embedding's ``cls_token`` beside its ``nnx.Conv`` patch projection) needs
a rule for those alone, e.g. ``Layout("ViTEmbed", (ViTEmbed,), (ParamRule("cls_token",
"cls_token"),))`` registered with ``register_layout``, and its conv keeps the conv's rule.

>>> import jaxlin
>>> [entry.key for entry in plan(jaxlin.PooledHead(2, 3, 1, rngs=nnx.Rngs(0)))]
['projector.weight', 'projector.bias', 'classifier.weight', 'classifier.bias']
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import jax
import numpy as np
from flax import nnx

from crosscheck.weights.fit import Spec, WeightsError
from crosscheck.weights.layouts import Layout, ParamRule, known_layers, layout_of

Rename = Mapping[str, str] | Sequence[tuple[str, str]] | Callable[[str], str] | None
TORCH_ONLY = ("num_batches_tracked",)
"""torch buffers no Flax layer holds (BatchNorm's step count, read only when its momentum is None):
copies leave them as they are and ``check`` lists them as ignored."""
WEIGHT_VARIABLES = (nnx.Param, nnx.BatchStat)  # what a state_dict holds; RNG state and caches are not weights


@dataclass(frozen=True)
class Entry:
    """One JAX variable and the torch key it maps to, with its layout change."""

    key: str  # the torch state_dict key (after rename)
    layer: str  # the dotted path of the JAX leaf layer, "" for the root
    variable: nnx.Variable
    rule: ParamRule
    layout: Layout
    module: object  # the JAX leaf layer

    def jax_value(self) -> np.ndarray:
        return np.asarray(self.variable[...])

    def torch_value(self) -> np.ndarray:
        """The variable's value in the torch layout (a view where the layout allows one)."""
        return self.rule.to_torch(self.jax_value())

    def torch_spec(self) -> Spec:
        """The torch-layout shape and the variable's dtype, computed without copying any value."""
        value = array_or_shape(self.variable)
        dummy = np.broadcast_to(np.empty((), np.int8), value.shape)
        return Spec(tuple(self.rule.to_torch(dummy).shape), np.dtype(value.dtype).name)


def array_or_shape(variable: nnx.Variable):
    """The variable's array, or the ``jax.ShapeDtypeStruct`` a module built by ``nnx.eval_shape`` holds
    in its place: what the shape and dtype of a copy's target are read from.

    Shape:
        the variable's.

    >>> layer = nnx.eval_shape(lambda: nnx.Linear(2, 3, rngs=nnx.Rngs(0)))
    >>> array_or_shape(layer.kernel)
    ShapeDtypeStruct(shape=(2, 3), dtype=float32)
    """
    raw = variable.get_raw_value()
    return raw if is_abstract(raw) else variable[...]


def is_abstract(value) -> bool:
    """Whether ``value`` is a shape and dtype only (what ``nnx.eval_shape`` leaves), not an array."""
    return isinstance(value, jax.ShapeDtypeStruct)


def torch_only(key: str) -> bool:
    """Whether a torch ``state_dict`` key is a buffer with no Flax counterpart (:data:`TORCH_ONLY`)."""
    return key.rsplit(".", 1)[-1] in TORCH_ONLY


def dotted(*parts) -> str:
    """``dotted("encoder", 0, "dense")`` -> ``"encoder.0.dense"`` (empty parts skipped)."""
    return ".".join(str(part) for part in parts if part != "")


def renamed(key: str, rename: Rename) -> str:
    r"""``key`` through ``rename``: a callable maps the whole key; a dict maps dotted path pieces; a list
    of ``(regex, replacement)`` pairs, as converters' tables are written, maps the module path.

    A list's rules are tried in order on the module path followed by a dot (``"layer0.blocks.1."``;
    a weight's leaf name, after the last dot, is kept as it is); the first that matches is applied
    (``re.sub`` once, groups allowed), and a path no rule matches is unchanged.

    >>> rules = [(r"^layer(\d)\.blocks\.(\d+)\.", r"stages.\1.layers.\2."), (r"^stem\.", "embedder.")]
    >>> renamed("layer0.blocks.12.conv2.weight", rules), renamed("stem.conv.", rules)
    ('stages.0.layers.12.conv2.weight', 'embedder.conv.')

    A dict's key is a piece of a path such as ``"layers."`` or ``"attention.self_attention."``; it
    matches where it starts the key or follows a dot (never inside a name), and the longest piece
    that matches is replaced, once, at its first place.

    >>> renamed("layers.0.weight", {"layers.": "encoder.layer.", "layers.0.": "first."})
    'first.weight'
    >>> renamed("encoder.layer.1.attention.self_attention.query.weight", {"self_attention.": "self."})
    'encoder.layer.1.attention.self.query.weight'
    """
    if rename is None:
        return key
    if callable(rename):
        return rename(key)
    if not isinstance(rename, Mapping):
        return _by_rules(key, rename)
    found = [(piece, where) for piece in rename if (where := _boundary_find(key, piece)) >= 0]
    if not found:
        return key
    piece, where = max(found, key=lambda match: len(match[0]))
    return key[:where] + rename[piece] + key[where + len(piece) :]


def _by_rules(key: str, rules) -> str:
    path, _, leaf = key.rpartition(".")
    path = path + "." if path else ""
    for pattern, replacement in _compiled(tuple(_pair(index, rule) for index, rule in enumerate(rules))):
        if pattern.search(path):
            return pattern.sub(replacement, path, count=1) + leaf
    return key


def _pair(index: int, rule) -> tuple[str, str]:
    """``rule`` as a ``(regex, replacement)`` pair of strings, or ValueError naming it."""
    if isinstance(rule, (tuple, list)) and len(rule) == 2 and all(isinstance(part, str) for part in rule):
        return tuple(rule)
    raise ValueError(f"rename[{index}]: expected a (regex, replacement) pair of strings, got {rule!r}")


@functools.lru_cache(maxsize=64)
def _compiled(rules: tuple[tuple[str, str], ...]) -> list[tuple[re.Pattern, str]]:
    """The rules compiled.

    Raises:
        ValueError: a pattern that does not compile, naming it.
    """
    compiled = []
    for index, rule in enumerate(rules):
        try:
            compiled.append((re.compile(rule[0]), rule[1]))
        except re.error as error:
            raise ValueError(f"rename[{index}]: {rule[0]!r} is not a regular expression ({error})") from None
    return compiled


def _boundary_find(key: str, piece: str) -> int:
    """Where ``piece`` first occurs in ``key`` at the start or right after a dot; -1 if nowhere."""
    if key.startswith(piece):
        return 0
    where = key.find("." + piece)
    return where + 1 if where >= 0 else -1


def submodules(module, path: str = "", *, every_path: bool = False) -> Iterator[tuple[str, object]]:
    """``(dotted path, module)`` for ``module`` and every module below it, in definition order
    (as PyTorch orders a ``state_dict``): a shared module once, at its first path, or with
    ``every_path=True`` at each of its paths, as a ``state_dict`` lists it (never inside itself)."""
    seen: set[int] = set()

    def walk(node, where: str, above: frozenset):
        if id(node) in (above if every_path else seen):
            return
        seen.add(id(node))
        yield where, node
        for name, child in _children(node):
            yield from _descend(child, dotted(where, name), above | {id(node)})

    def _descend(value, where: str, above: frozenset):
        if isinstance(value, nnx.Module):
            yield from walk(value, where, above)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                yield from _descend(item, dotted(where, index), above)
        elif isinstance(value, dict):
            for name, item in value.items():
                yield from _descend(item, dotted(where, name), above)

    yield from walk(module, path, frozenset())


def _children(module) -> Iterator[tuple[str, object]]:
    """A module's attributes in definition order, without Flax's own bookkeeping."""
    if isinstance(module, nnx.List):
        yield from enumerate(module)
        return
    for name, value in vars(module).items():
        if not name.startswith("_pytree__"):
            yield name, value


def _variables(module) -> Iterator[tuple[str, nnx.Variable]]:
    for name, value in _children(module):
        if isinstance(value, WEIGHT_VARIABLES):
            yield name, value


def plan(module, *, rename: Rename = None) -> list[Entry]:
    """Every weight variable of a JAX module tree with its torch key, in ``state_dict`` order.

    A module reachable from two paths is listed at both, as a ``state_dict`` lists a shared torch
    module; a variable at two paths (tied weights) gives two entries holding the same
    ``entry.variable``. Each entry's ``variable`` keeps its type: ``nnx.Param`` or ``nnx.BatchStat``.

    Raises:
        TypeError: ``module`` is not a Flax NNX module.
        WeightsError: some variable has no rule, or two variables map to one key; the message lists
        all of them.
    """
    if not isinstance(module, nnx.Module):
        raise TypeError(
            f"crosscheck.weights: expected a Flax NNX module here, got {describe_module(module)}."
        )
    entries, unmatched = [], []
    ruled: dict[str, set[str]] = {}  # a ruled layer's path -> the variables below it its rule maps
    for path, node in submodules(module, every_path=True):
        owner = max((r for r in ruled if _inside(path, r)), key=len, default=None)
        if owner is not None:  # below a ruled layer: what its rule claims (parts) is mapped already
            below = path[len(owner) + 1 :] if owner else path
            claimed = ruled[owner]
            if any(claim.startswith(below + ".") for claim in claimed):
                unmatched += [dotted(path, n) for n, _ in _variables(node) if dotted(below, n) not in claimed]
                continue  # else: a child the rule leaves alone (a container's conv) maps by its own rule
        layout = layout_of(node)
        if layout is None:
            unmatched += [dotted(path, name) for name, _ in _variables(node)]
            continue
        rules, shared = layout.rules_for(node), {}
        if not _twin_packs(rules, path, rename):
            continue  # the torch twin holds the children one by one: each maps by its own rule
        covered = {claim for rule in rules for claim in rule.claims}
        ruled[path] = covered
        for rule in rules:
            variable = rule.variable_of(node, shared)
            if variable is not None:
                key = renamed(dotted(path, rule.torch_name), rename)
                entries.append(Entry(key, path, variable, rule, layout, node))
        unmatched += [dotted(path, name) for name, _ in _variables(node) if name not in covered]
    keys = [entry.key for entry in entries]
    doubled = sorted({key for key in keys if keys.count(key) > 1})
    if unmatched or doubled:
        raise WeightsError(_unmapped_message(module, unmatched, doubled))
    return entries


_TWIN_KEYS: list[frozenset[str]] = []


@contextlib.contextmanager
def torch_twin(keys):
    """While open, :func:`plan` knows the torch twin's keys: a rule that packs its layer's children
    (``nnx.MultiHeadAttention`` as ``nn.MultiheadAttention``'s ``in_proj_weight``) is used only where the
    twin holds a packed key, and the children map one by one where it holds theirs instead (a ViT's
    ``query``/``key``/``value`` Linears)."""
    _TWIN_KEYS.append(frozenset(keys))
    del keys  # a state_dict's keys view holds the state_dict, and it the weights' storages, all along
    try:
        yield
    finally:
        _TWIN_KEYS.pop()


def _twin_packs(rules, path: str, rename: Rename) -> bool:
    """Whether a layer's rule applies as it is: no children packed, no twin known, or a twin that holds
    one of the packed keys."""
    if not _TWIN_KEYS or not any(rule.parts for rule in rules):
        return True
    return any(renamed(dotted(path, rule.torch_name), rename) in _TWIN_KEYS[-1] for rule in rules)


def _inside(path: str, layer: str) -> bool:
    """Whether ``path`` lies strictly below the layer at ``layer`` ("" is the root)."""
    return path != layer and (layer == "" or path.startswith(layer + "."))


def _unmapped_message(module, unmatched: list[str], doubled: list[str]) -> str:
    parts = []
    if unmatched:
        parts.append(f"no layout rule maps {', '.join(repr(u) for u in unmatched)}")
    if doubled:
        parts.append(f"two or more parameters map to {', '.join(repr(d) for d in doubled)}")
    return (
        f"{describe_module(module)}: {'; '.join(parts)}; the known layers are {', '.join(known_layers())} "
        "(register_layout adds one; rename= maps differing names)"
    )


def describe_module(module) -> str:
    """``jaxlin.Linear(in_features=8, out_features=4)``, ``torch.Linear(in_features=8, ...)``: a
    module as the messages name it (its package, then its own description)."""
    package = type(module).__module__.split(".")[0]
    if callable(getattr(module, "describe", None)):
        return f"{package}.{module.describe()}"
    extra = module.extra_repr() if callable(getattr(module, "extra_repr", None)) else ""
    return f"{package}.{type(module).__name__}" + (f"({extra})" if extra else "")


def torch_state_of_jax(module, *, rename: Rename = None) -> dict[str, np.ndarray]:
    """A JAX module's weights as a torch ``state_dict`` (names and layouts), as NumPy copies.

    Shape:
        each array in torch layout, e.g. Linear ``weight (out, in)``.

    >>> import jaxlin
    >>> state = torch_state_of_jax(jaxlin.Linear(3, 2, rngs=nnx.Rngs(0)))
    >>> {name: a.shape for name, a in state.items()}
    {'weight': (2, 3), 'bias': (2,)}
    """
    entries = plan(module, rename=rename)
    return {entry.key: np.array(entry.torch_value(), order="C", copy=True) for entry in entries}
