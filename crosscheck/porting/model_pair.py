"""What ``check`` and ``locate`` verify about two models before running them, and how their
parameters relate: which argument is which, that the weights map and hold the same values, which
parameters are frozen or tied, and the working dtype.

>>> import jaxlin, torch_ref
>>> from crosscheck.weights import copy_torch_to_jax
>>> theirs, ours = torch_ref.Linear(3, 2), jaxlin.Linear(3, 2, rngs=nnx.Rngs(0))
>>> copied = copy_torch_to_jax(theirs, ours)
>>> require_same_weights(ours, theirs).ignored
[]
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, field

import jax
import numpy as np
import torch
from flax import nnx

from crosscheck.numerics import is_floating
from crosscheck.porting.evaluate import param_paths
from crosscheck.weights import expected_specs, layout_of
from crosscheck.weights.arrays import numpy_view_of_torch, torch_view_of_numpy
from crosscheck.weights.selection import Ignore, select_keys
from crosscheck.weights.targets import require_arrays
from crosscheck.weights.tree import Rename, describe_module, dotted, plan, renamed, submodules


def require_models(jax_module, torch_module, function: str) -> None:
    """TypeError unless ``jax_module`` is a Flax NNX module and ``torch_module`` a torch module, saying
    which argument is which (and when they were swapped); WeightsError where the JAX module holds shapes
    only (built by ``nnx.eval_shape`` and given no weights yet)."""
    if isinstance(jax_module, torch.nn.Module) and isinstance(torch_module, nnx.Module):
        raise TypeError(
            f"{function}: the models are swapped: the first argument is the JAX model (a flax.nnx.Module) "
            f"and the second the torch model (a torch.nn.Module), got {describe_module(jax_module)} first "
            f"and {describe_module(torch_module)} second; call {function}(jax_model, torch_model, *inputs)"
        )
    for position, value, expected in ((
        ("first", jax_module, nnx.Module), ("second", torch_module, torch.nn.Module)
    )):  # fmt: skip
        if not isinstance(value, expected):
            kind = (
                "the JAX model, a flax.nnx.Module"
                if expected is nnx.Module
                else "the torch model, a torch.nn.Module"
            )
            raise TypeError(
                f"{function}: the {position} argument must be {kind}; got {describe_module(value)} "
                f"({type(value).__module__}.{type(value).__qualname__}); "
                f"call {function}(jax_model, torch_model, *inputs)"
            )
    require_arrays(jax_module, function, describe_module(jax_module))  # one built by nnx.eval_shape


@dataclass
class WeightsMatch:
    """Both models' weights map key for key: the notes on configurations that differ where no weight
    shows it, the keys left out (``ignored``: ``num_batches_tracked``, ``ignore=`` matches and, with
    ``strict=False``, torch keys with no JAX counterpart), the JAX keys the torch model lacks
    (``missing``, ``strict=False``), and the keys both hold (``paired``, relative to the prefix)."""

    notes: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)  # weights whose values differ, in words
    missing: list[str] = field(default_factory=list)
    paired: list[str] | None = None  # None: every key


def require_same_weights(
    jax_module, torch_module, *, rename: Rename = None, prefix: str = "", strict: bool = True,
    ignore: Ignore = None, function: str = "check",
) -> WeightsMatch:  # fmt: skip
    """WeightsError unless the two modules' weights map onto each other key for key and shape for shape
    (dtypes may differ); the configuration notes, the keys left out and missing, and the weights whose
    values differ (each torch value taken in the JAX variable's dtype). ``torch_module`` is the torch
    part already taken at ``prefix`` (:func:`crosscheck.weights.selection.torch_part`); ``prefix``,
    ``strict`` and ``ignore`` mean what they mean for the copies
    (:mod:`crosscheck.weights.selection`).

    Raises:
        WeightsError: a key or shape does not map.
    """
    where = f" at {prefix!r}" if prefix else ""
    chosen = select_keys(
        expected_specs(jax_module, rename=rename), expected_specs(torch_module), prefix=prefix,
        strict=strict, ignore=ignore, source=f"{function} of {describe_module(jax_module)}",
        target=describe_module(torch_module) + where, function=function,
    )  # fmt: skip
    torch_modules = dict(torch_module.named_modules())
    notes = []
    for path, layer in submodules(jax_module):
        layout = layout_of(layer)
        twin = torch_modules.get(renamed(path + ".", rename)[:-1] if path else "")
        if layout is not None and layout.notes is not None and twin is not None:
            notes += [f"{dotted(path) or '(root)'}: {note}" for note in layout.notes(layer, twin)]
    differing = (
        [] if _COMPARED.get() else differing_weights(jax_module, torch_module, rename, set(chosen.paired))
    )
    return WeightsMatch(notes, chosen.ignored, differing, chosen.missing, chosen.paired)


_COMPARED: contextvars.ContextVar[bool] = contextvars.ContextVar("crosscheck_values_compared", default=False)


@contextlib.contextmanager
def values_compared():
    """Within: :func:`require_same_weights` maps keys and shapes but does not compare the values again
    (``locate``'s rows: the whole models' values were compared first, and a row is judged on its numbers,
    so reading each layer's weights again at every level of nesting tells nothing new)."""
    token = _COMPARED.set(True)
    try:
        yield
    finally:
        _COMPARED.reset(token)


_CHUNK = 1 << 22
"""Elements compared at a time: a billion-parameter embedding is compared without a float64 copy."""


def _largest_difference(ours: np.ndarray, theirs: np.ndarray) -> float | None:
    """``None`` when equal (NaN equal to NaN), else the largest ``|ours - theirs|`` (inf for NaN vs not);
    compared a chunk at a time, so the memory it takes does not grow with the weight."""
    if _equal_in_torch(ours, theirs):  # the usual case, without a copy of a transposed kernel
        return None
    ours, theirs = ours.reshape(-1), theirs.reshape(-1)
    largest = None
    for start in range(0, ours.size, _CHUNK):
        found = _chunk_difference(ours[start : start + _CHUNK], theirs[start : start + _CHUNK])
        if found is not None:
            largest = found if largest is None else max(largest, found)
    return largest


_TILE = 512
"""Rows and columns of the tiles two matrices in different layouts are compared in."""


def _equal_in_torch(ours: np.ndarray, theirs: np.ndarray) -> bool:
    """Whether the two are equal, read by torch in place where it can view both in one dtype: a
    transposed view (a JAX kernel in torch's layout) is compared on every core, not copied to C order
    first as NumPy's flat comparison must (a whole model's check spent a second there), a tile of
    :data:`_TILE` × :data:`_TILE` at a time: both tiles stay in cache, 2–8× faster than one comparison of
    the whole matrices (a 4096 × 1024 kernel 12.1 → 3.7 ms)."""
    if ours.dtype != theirs.dtype or ours.shape != theirs.shape:
        return False
    ours_viewed, theirs_viewed = torch_view_of_numpy(ours), torch_view_of_numpy(theirs)
    if ours_viewed is None or theirs_viewed is None:
        return False
    if ours_viewed.dim() != 2 or (ours_viewed.is_contiguous() and theirs_viewed.is_contiguous()):
        return torch.equal(theirs_viewed, ours_viewed)
    rows, columns = ours_viewed.shape
    return all(
        torch.equal(theirs_viewed[r : r + _TILE, c : c + _TILE], ours_viewed[r : r + _TILE, c : c + _TILE])
        for r in range(0, rows, _TILE)
        for c in range(0, columns, _TILE)
    )


def _chunk_difference(ours: np.ndarray, theirs: np.ndarray) -> float | None:
    theirs = theirs.astype(ours.dtype, copy=False)
    if np.array_equal(ours, theirs):  # the usual case, without equal_nan's masks (8x slower)
        return None
    if not is_floating(ours.dtype):
        return float(np.max(np.abs(ours.astype(np.float64) - theirs)))
    if np.array_equal(ours, theirs, equal_nan=True):
        return None
    a, b = ours.astype(np.float64), theirs.astype(np.float64)
    with np.errstate(invalid="ignore"):
        difference = np.abs(a - b)
    return float(np.max(np.where(np.isnan(difference), np.inf, difference)))


def differing_weights(
    jax_module, torch_module, rename: Rename = None, paired: set | None = None
) -> list[str]:
    """Each mapped weight whose values differ between the two models, in words (``paired``: the keys
    compared; ``None``: every key)."""
    state = torch_module.state_dict()
    differing = []
    for entry in plan(jax_module, rename=rename):
        if paired is not None and entry.key not in paired:
            continue
        largest = _largest_difference(entry.torch_value(), numpy_view_of_torch(state[entry.key]))
        if largest is not None:
            differing.append(f"{dotted(entry.layer, entry.rule.jax_name)} differs from {entry.key} "
                             f"by up to {largest:.2g}")  # fmt: skip
    return differing


def working_dtype(module: nnx.Module, inputs=()) -> np.dtype:
    """The dtype a comparison works in: the module's parameters', else its first floating input's, else
    float32 (a model with no parameters)."""
    leaves = jax.tree.leaves(nnx.state(module, nnx.Param))
    if leaves:
        return np.dtype(leaves[0].dtype)
    floating = [np.asarray(a).dtype for a in inputs if is_floating(np.asarray(a).dtype)]
    return floating[0] if floating else np.dtype(np.float32)


@dataclass(frozen=True)
class GradientKeys:
    """How the two models' parameter gradients pair: one item per group of keys tied in either
    framework (its first key names it), each side summing its distinct parameters; frozen torch
    parameters (``requires_grad=False``) are listed, never compared."""

    items: dict[str, tuple[list[str], list[str]]]  # item key -> (JAX keys to sum, torch keys to sum)
    tied: dict[str, list[str]]  # item key -> the other keys tied to it
    frozen: list[str]


def chosen_gradients(keys: GradientKeys, names, torch_module, where: str) -> GradientKeys:
    """Only the gradient items holding a torch parameter ``names`` names (``check(grads_of=...)``); a tied
    group comes whole.

    Raises:
        ValueError: a name that is not one of the torch module's parameters.
    """
    names = set(names)
    known = set(dict(torch_module.named_parameters(remove_duplicate=False)))
    unknown = sorted(names - known)
    if unknown:
        listed = ", ".join(repr(name) for name in sorted(known)[:8]) + (", ..." if len(known) > 8 else "")
        raise ValueError(
            f"{where}: grads_of names {', '.join(map(repr, unknown))}, not a parameter of "
            f"{describe_module(torch_module)} (its parameters: {listed or 'none'})"
        )
    items = {key: pair for key, pair in keys.items.items() if names & {*pair[1], *keys.tied.get(key, [])}}
    tied = {key: others for key, others in keys.tied.items() if key in items}
    return GradientKeys(items, tied, [key for key in keys.frozen if key in names])


def differentiated_paths(jax_module, keys: GradientKeys, rename: Rename = None) -> frozenset[tuple]:
    """The graph paths of the JAX parameters ``keys``' items sum: what the JAX runs differentiate."""
    wanted = {key for jax_keys, _ in keys.items.values() for key in jax_keys}
    variables = [entry.variable for entry in plan(jax_module, rename=rename) if entry.key in wanted]
    return param_paths(jax_module, variables)


def differentiated_names(keys: GradientKeys) -> frozenset[str]:
    """The torch parameter names ``keys``' items sum, tied ones under each name: what torch differentiates."""
    return frozenset(
        [key for _, torch_keys in keys.items.values() for key in torch_keys]
        + [key for others in keys.tied.values() for key in others]
    )


def _distinct(keys: list[str], identity: dict[str, int]) -> list[str]:
    return list({identity[key]: key for key in reversed(keys)}.values())[::-1]


def gradient_keys(
    jax_module, torch_module, rename: Rename = None, paired: list[str] | None = None
) -> GradientKeys:
    """The gradient items of a pair whose weights map (:func:`require_same_weights`); with ``paired``
    (``strict=False``, ``ignore=``) only those keys: a parameter one side lacks is no gradient item."""
    named = dict(torch_module.named_parameters(remove_duplicate=False))
    if paired is not None:
        keep = set(paired)
        named = {key: p for key, p in named.items() if key in keep}
    torch_id = {key: id(p) for key, p in named.items()}
    jax_id = {
        e.key: id(e.variable)
        for e in plan(jax_module, rename=rename)
        if isinstance(e.variable, nnx.Param) and e.key in named
    }
    groups: dict[str, str] = {key: key for key in named}

    def root(key: str) -> str:
        while groups[key] != key:
            key = groups[key]
        return key

    for identity in (torch_id, jax_id):
        first_of: dict[int, str] = {}
        for key, ident in identity.items():
            if key in groups:
                groups[root(key)] = root(first_of.setdefault(ident, key))
    members: dict[str, list[str]] = {}
    for key in named:
        members.setdefault(root(key), []).append(key)
    items, tied, frozen = {}, {}, []
    for keys in members.values():
        if not all(named[key].requires_grad for key in keys):
            frozen += keys
            continue
        items[keys[0]] = (_distinct([k for k in keys if k in jax_id], jax_id), _distinct(keys, torch_id))
        if len(keys) > 1:
            tied[keys[0]] = keys[1:]
    return GradientKeys(items, tied, frozen)
