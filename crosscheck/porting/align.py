"""``align``: the module-path mapping between a Flax NNX port and its PyTorch model, found from both
execution traces, so that ``rename=`` need not be written by hand.

Both models run once (in inference mode, left as they were) with every submodule call captured
(:mod:`crosscheck.porting.capture`). The layers that own weights are paired in four steps
(:mod:`crosscheck.porting.align_match`):

1. ``rename`` given: the pairs it names, where they fit ("given").
2. **values**: a pair whose weights are already equal up to layout (the user copied them), found by
   digest, when that value occurs once on each side ("values"; constant weights say nothing).
3. **order**: the call sequences aligned like two strings: the most pairs that fit (every expected
   torch parameter name and shape there, :func:`~crosscheck.porting.align_match.fit`), in call order,
   then the most of a fitting torch class; layers one side lacks (a dropout, an unported pooler) are
   skipped ("order+kind+shape", "order+shape" for a torch class no rule names). Where another best
   alignment pairs a layer otherwise (an extra layer of the same shape, layers fed the same tensor
   whose order says nothing, q/k/v), the closest names decide ("by name") or the row is **ambiguous**.
4. **containers**: a module without weights of its own maps to where its paired children sit
   ("inferred from children"); weights a container holds beside its children pair by shape there.

``Alignment.rename`` is a list of ``(regex, replacement)`` rules that gives every paired JAX path its
torch path (:func:`crosscheck.porting.align_rules.rules`), for ``copy_torch_to_jax``, ``check``,
``locate``, the files. Ambiguous rows are in it as guessed, and listed in ``.ambiguous``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from crosscheck.porting import align_match as am
from crosscheck.porting.align_pairs import pair_units
from crosscheck.porting.align_rules import containers, inside, rules
from crosscheck.porting.capture import capture_jax, capture_torch
from crosscheck.porting.checking import channels_first_of
from crosscheck.porting.evaluate import jax_keywords, model_call_error, torch_keywords
from crosscheck.porting.model_pair import require_models, working_dtype
from crosscheck.porting.modes import inference_mode
from crosscheck.porting.sides import side
from crosscheck.weights import torch_of_numpy
from crosscheck.weights.arrays import jax_array
from crosscheck.weights.tree import Rename, describe_module, submodules


@dataclass
class Row:
    """One JAX module and its torch counterpart (``None``: none found), how they were matched, and for an
    ambiguous row the other torch modules it could be."""

    jax_path: str
    torch_path: str | None
    how: str
    jax_type: str = ""
    torch_type: str = ""
    others: list[str] = field(default_factory=list)

    @property
    def ambiguous(self) -> bool:
        return self.how.startswith("ambiguous")


@dataclass
class Unmatched:
    """Modules holding weights with no counterpart, per side, each with the reason."""

    jax: list[str] = field(default_factory=list)
    torch: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # "jax:path" / "torch:path" -> why


@dataclass
class Alignment:
    """The mapping ``align`` proposes: ``rows`` (JAX definition order), ``mapping`` (JAX path -> torch
    path), ``rename`` (rules for every ``rename=``), ``unmatched`` per side, ``ambiguous`` rows."""

    name: str
    rows: list[Row]
    unmatched: Unmatched
    rename: list[tuple[str, str]]

    @property
    def mapping(self) -> dict[str, str]:
        return {row.jax_path: row.torch_path for row in self.rows if row.torch_path is not None}

    @property
    def ambiguous(self) -> list[Row]:
        return [row for row in self.rows if row.ambiguous]

    def __str__(self) -> str:
        head = ("JAX", "torch", "how", "JAX type", "torch type")
        body = [(r.jax_path or "(model)", "–" if r.torch_path is None else r.torch_path or "(model)",
                 r.how + (f" (or {', '.join(r.others)})" if r.others else ""), r.jax_type, r.torch_type)
                for r in self.rows]  # fmt: skip
        widths = [max(len(cell) for cell in column) for column in zip(head, *body, strict=True)]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [head, *body]
        ]
        for side_name, paths in (("jax", self.unmatched.jax), ("torch", self.unmatched.torch)):
            for path in paths:
                lines.append(
                    f"{side_name} only: {path} ({self.unmatched.reasons.get(f'{side_name}:{path}', '')})"
                )
        flagged = len(self.ambiguous)
        lines.append(f"{len(self.rows)} rows, {flagged} ambiguous" + (": check them" if flagged else ""))
        return "\n".join([self.name, *lines])


def _first_input_channels_first(channels_first, torch_model, torch_inputs) -> bool:
    if channels_first is None:
        if torch_inputs is not None:
            return False
        found = channels_first_of(torch_model)
        return bool(getattr(found, "input", found))
    if isinstance(channels_first, str):
        return channels_first == "input"
    return bool(getattr(channels_first, "input", channels_first))


def _capture(jax_model, torch_model, inputs, torch_inputs, jax_kwargs, torch_kwargs, channels_first):
    dtype = working_dtype(jax_model, inputs)
    jax_side = side(inputs, jax_kwargs, dtype)
    torch_side = side(inputs if torch_inputs is None else torch_inputs, torch_kwargs, dtype)
    theirs = list(torch_side.work)
    if (
        theirs
        and _first_input_channels_first(channels_first, torch_model, torch_inputs)
        and theirs[0].ndim >= 2
    ):
        theirs[0] = np.moveaxis(theirs[0], -1, 1) if theirs[0].ndim >= 3 else np.swapaxes(theirs[0], -1, -2)
    with torch.no_grad():
        try:
            tensors = tuple(torch_of_numpy(np.ascontiguousarray(a)) for a in theirs)
            torch_calls, _ = capture_torch(torch_model, tensors, torch_keywords(torch_side.kwargs_work))
        except Exception as error:
            raise model_call_error("torch", torch_model, error) from error
    try:
        ours = tuple(jax_array(a) for a in jax_side.work)
        jax_calls, _ = capture_jax(jax_model, ours, jax_keywords(jax_side.kwargs_work))
    except Exception as error:
        raise model_call_error("JAX", jax_model, error) from error
    return {c.path: c for c in jax_calls}, {c.path: c for c in torch_calls}


def _containers(jax_modules, pairs, torch_modules, unit_paths, jax_called, torch_called) -> dict:
    """Every JAX module that is no unit (nor claimed by one) with paired layers below it: (torch path,
    how, others)."""
    paths = [p for p in jax_modules if p not in unit_paths]
    found = containers(paths, pairs, list(torch_modules), jax_called, torch_called)
    if "" in found or "" in paths:
        found[""] = ("", "inferred from children", [])
    return found


def _own_weights(own: dict, target, torch_modules) -> str:
    """How a container's own weights (beside its children) pair with its counterpart's, by shape."""
    held = am.torch_direct(torch_modules[target]) if target in torch_modules else {}
    problems = []
    for name, variable in own.items():
        shape = tuple(np.shape(variable[...]))
        same = [n for n, t in held.items() if tuple(t.shape) == shape]
        if name not in same:
            problems.append(f"{name} {shape}: torch has " + (f"{same[0]} of that shape" if same else "none"))
    return "; ".join(problems)


def align(
    jax_model, torch_model, *inputs, torch_inputs: tuple | None = None, jax_kwargs: dict | None = None,
    torch_kwargs: dict | None = None, rename: Rename = None, channels_first=None,
) -> Alignment:  # fmt: skip
    r"""Propose the module-path mapping between a Flax NNX port and its torch model, from one forward
    pass of each on ``inputs`` (arguments as :func:`crosscheck.check` takes them: ``torch_inputs``,
    ``jax_kwargs``, ``torch_kwargs``, ``channels_first``; ``rename`` fixes the pairs it names).

    Returns an :class:`Alignment`: ``str()`` is the table (JAX path, torch path, how matched: "given",
    "values", "order+kind+shape", "order+shape", "by name", "inferred from children", or "ambiguous"
    with the other candidates); ``.rename`` the ``(regex, replacement)`` rules for ``rename=``;
    ``.mapping`` JAX path -> torch path; ``.unmatched.jax`` / ``.unmatched.torch`` the layers with
    weights that have no counterpart (never called, tied, an unported head); ``.ambiguous`` the rows it
    could not decide (in ``.rename`` as guessed: check them).

    Shape:
        inputs as the JAX model takes them (``torch_inputs``: as the torch model takes them).

    Raises:
        TypeError: the first argument is not a Flax NNX module or the second not a torch module.
        ModelCallError: a model raised on the inputs.
        ValueError: no layer of one model pairs with any of the other's.

    >>> import jax, torch, jaxlin
    >>> from flax import nnx
    >>> class Port(nnx.Module):
    ...     def __init__(self, rngs):
    ...         self.up, self.down = jaxlin.Linear(4, 8, rngs=rngs), jaxlin.Linear(8, 2, rngs=rngs)
    ...     def __call__(self, x):
    ...         return self.down(jax.nn.relu(self.up(x)))
    >>> ref = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> found = align(Port(nnx.Rngs(0)), ref, np.ones((3, 4), np.float32))
    >>> found.mapping, found.rename
    ({'': '', 'up': '0', 'down': '2'}, [('^up\\.', '0.'), ('^down\\.', '2.')])
    """
    require_models(jax_model, torch_model, "align")
    title = f"align {describe_module(jax_model)} <-> {describe_module(torch_model)}"
    with inference_mode(jax_model, torch_model):
        jax_called, torch_called = _capture(jax_model, torch_model, inputs, torch_inputs, jax_kwargs,
                                            torch_kwargs, channels_first)  # fmt: skip
        jax_list, bare, inner = am.jax_units(jax_model, jax_called)
        torch_list = am.torch_units(torch_model, torch_called)
        pairs, how, others = pair_units(jax_list, torch_list, rename)
    if not pairs:
        raise ValueError(_nothing_matched(jax_model, torch_model, jax_list, torch_list))
    torch_modules = dict(torch_model.named_modules())
    unit_paths = {u.path for u in jax_list} | set(inner)
    jax_modules = dict(submodules(jax_model))
    found = _containers(jax_modules, pairs, torch_modules, unit_paths, jax_called, torch_called)
    own_of = {path: own for path, _, own in bare}
    rows, unmatched = [], Unmatched()
    for path, module in jax_modules.items():
        kind = type(module).__name__
        if path in pairs:
            target = pairs[path]
            theirs = type(torch_modules[target]).__name__
            rows.append(Row(path, target, how[path], kind, theirs, others.get(path, [])))
        elif path in found:
            target, said, alternatives = found[path]
            if path in own_of and target is not None:
                mismatch = _own_weights(own_of[path], target, torch_modules)
                said += "; own weights by shape" + (f", except {mismatch}" if mismatch else "")
                said = said if not mismatch or said.startswith("ambiguous") else "ambiguous: " + said
            theirs = type(torch_modules[target]).__name__ if target in torch_modules else ""
            rows.append(Row(path, target, said, kind, theirs, alternatives))
    for unit in jax_list:
        if unit.path not in pairs:
            unmatched.jax.append(unit.path)
            unmatched.reasons[f"jax:{unit.path}"] = _why(unit, "JAX")
    for path in own_of:
        if path not in found or found[path][0] is None:
            unmatched.jax.append(path)
            unmatched.reasons[f"jax:{path}"] = "holds weights of its own and no paired layer sits below it"
    matched = set(pairs.values())
    covered = [pairs[u.path] for u in jax_list if u.path in pairs and u.dotted]
    for unit in torch_list:
        if unit.path not in matched and not any(inside(unit.path, c) for c in covered):
            unmatched.torch.append(unit.path)
            unmatched.reasons[f"torch:{unit.path}"] = _why(unit, "torch") + _tied(unit, torch_list)
    mapping = {r.jax_path: r.torch_path for r in rows if r.torch_path is not None}
    return Alignment(title, rows, unmatched, rules(mapping, list(jax_modules)))


def _why(unit, framework: str) -> str:
    shapes = ", ".join(f"{n} {s}" for n, s in unit.specs.items())
    if unit.order is None:
        return f"{unit.kind} ({shapes}), never called in the {framework} model's forward pass"
    return f"{unit.kind} ({shapes}): no counterpart of this kind and shape in call order"


def _tied(unit, torch_list) -> str:
    """``"; its weights are X's (tied)"`` when another torch unit holds the very same tensors."""
    mine = {id(t) for t in am.torch_direct(unit.module).values()}
    for other in torch_list:
        if other is not unit and mine <= {id(t) for t in am.torch_direct(other.module).values()}:
            return f"; its weights are {other.path}'s (tied)"
    return ""


def _nothing_matched(jax_model, torch_model, jax_list, torch_list) -> str:
    ours = [u for u in jax_list if u.order is not None]
    theirs = [u for u in torch_list if u.order is not None]
    if not ours or not theirs:
        empty, model = ("JAX", jax_model) if not ours else ("torch", torch_model)
        return (f"align: the {empty} model {describe_module(model)} called no layer holding weights on these "
                "inputs; expected at least one layer with parameters on each side")  # fmt: skip
    first = lambda u: f"{u.path or '(model)'} {u.kind} ({', '.join(f'{n} {s}' for n, s in u.specs.items())})"  # noqa: E731
    return (
        f"align: nothing matched between {describe_module(jax_model)} and {describe_module(torch_model)}: "
        f"no torch layer has the parameter names and shapes a JAX layer expects (expected e.g. "
        f"{first(ours[0])}; torch has e.g. {first(theirs[0])}); check the inputs and the models' sizes"
    )
