r"""What :func:`crosscheck.porting.align.align` makes of its paired layers: the containers' counterparts
(inferred from their children) and the ``rename`` rules that reproduce the whole mapping.

A container maps to a torch module that holds exactly the counterparts of its paired layers (``stem``
of ``stem.conv`` and ``stem.bn`` is ``embedder`` of ``embedder.convolution`` and
``embedder.normalization``); where none does, it has no counterpart (the row names the torch module
nearest); where nested torch modules all do, :func:`containers` picks by calls, sizes and names.

The rules are ``(regex, replacement)`` pairs as :func:`crosscheck.weights.tree.renamed` takes them:
one prefix rule per subtree that maps as a whole (``^stem\.`` -> ``embedder.``), one exact rule per other
path whose names differ, then rules that differ only in layer indices are merged (``(\d+)``); every merge
is kept only if the rules still give every JAX path exactly its counterpart (and leave the others as
they are).

>>> rules({"a": "x", "a.fc": "x.fc", "b.0.q": "c.0.query", "b.1.q": "c.1.query"}, ["a", "a.fc", "b.0.q",
...       "b.1.q"])
[('^a\\.', 'x.'), ('^b\\.(\\d+)\\.q\\.', 'c.\\1.query.')]
"""

from __future__ import annotations

import re

from crosscheck.porting.align_match import first_array, name_score
from crosscheck.weights.tree import renamed


def inside(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or lies below it (``""`` is the root of everything)."""
    return root == "" or path == root or path.startswith(root + ".")


def _dims(call) -> tuple | None:
    """The sorted sizes of a call's first output array (NHWC and NCHW alike), ``None`` without one."""
    if call is None:
        return None
    found = first_array(call.output)
    return None if found is None else tuple(sorted(found.shape))


def containers(jax_paths, pairs: dict[str, str], torch_paths, jax_calls: dict, torch_calls: dict) -> dict:
    """JAX container path -> ``(torch path or None, how[, other candidates])``. A container's counterpart
    holds exactly the counterparts of its paired layers; where several nested torch modules do (Hugging
    Face's ``layers.0`` and ``layers.0.layer``), called ones pair with called ones, outermost first, each
    with the one whose output has its output's sizes, then the closest name; what is left open is
    ambiguous."""
    matched = set(pairs.values())
    held = {c: frozenset(t for j, t in pairs.items() if j != c and inside(j, c)) for c in jax_paths}
    wanted = {s for s in held.values() if s}
    chains: dict[frozenset, list[str]] = {}
    for path in torch_paths:
        if path not in matched:
            below = frozenset(m for m in matched if m != path and inside(m, path))
            if below in wanted:
                chains.setdefault(below, []).append(path)
    found = {}
    depth = lambda p: p.count(".") + bool(p)  # noqa: E731
    for group in wanted:
        ours = sorted((c for c in jax_paths if held[c] == group), key=depth)
        theirs = sorted(chains.get(group, []), key=depth)
        for called in (True, False):
            side_ours = [c for c in ours if (c in jax_calls) == called]
            side_theirs = [t for t in theirs if (t in torch_calls) == called]
            found.update(_assign(side_ours, side_theirs, jax_calls, torch_calls, group))
    return found


def _assign(ours, theirs, jax_calls, torch_calls, group) -> dict:
    found, last = {}, -1
    for path in ours:
        left = theirs[last + 1 :]
        if not left:
            found[path] = (None, f"no torch module holds exactly its layers (nearest: {_common(group)!r})")
            continue
        others = []
        if len(ours) == len(theirs):
            pick, how = theirs[ours.index(path)], "inferred from children"
        else:
            shaped = [t for t in left if _dims(torch_calls.get(t)) == _dims(jax_calls.get(path))] or left
            scores = [name_score(path, t) for t in shaped]
            best = [t for t, score in zip(shaped, scores, strict=True) if score == max(scores)]
            pick = best[0]
            how = "inferred from children" if len(shaped) == 1 else "inferred from children, by name"
            if len(best) > 1:
                how = "ambiguous: inferred from children, nested torch modules hold the same layers"
                others = best[1:]
        found[path] = (pick, how, others)
        last = theirs.index(pick)
    return found


def _common(paths) -> str:
    split = [p.split(".") for p in paths]
    common = []
    for parts in zip(*split, strict=False):
        if len(set(parts)) > 1:
            break
        common.append(parts[0])
    return ".".join(common[: min(map(len, split)) - 1] if len(common) >= min(map(len, split)) else common)


def _escape(path: str) -> str:
    return re.escape(path + ".") if path else ""


def _general(pattern_path: str, target: str) -> tuple[str, str] | None:
    """The rule for ``pattern_path`` -> ``target`` with every index in the JAX path a ``(\\d+)`` group
    and each equal index of the target its back reference; ``None`` when the path has no index."""
    parts = pattern_path.split(".")
    numbers = [p for p in parts if p.isdigit()]
    if not numbers:
        return None
    pattern = r"\.".join(r"(\d+)" if p.isdigit() else re.escape(p) for p in parts)
    groups = {}
    for index, part in enumerate(p for p in parts if p.isdigit()):
        groups.setdefault(part, index + 1)
    replacement = ".".join(
        rf"\{groups[p]}" if p in groups else p.replace("\\", "\\\\") for p in target.split(".")
    )
    return pattern, replacement


def _applies(rules_list, path: str) -> str:
    return renamed(path + ".", rules_list)[:-1] if path else path


def rules(mapping: dict[str, str], jax_paths: list[str]) -> list[tuple[str, str]]:
    """``(regex, replacement)`` rules that send every path of ``mapping`` (JAX -> torch) to its torch path
    and every other path of ``jax_paths`` to itself, as few as the merges allow."""
    mapping = {j: t for j, t in mapping.items() if j}
    expected = {p: p for p in jax_paths if p}  # unpaired paths stay, or move with a whole subtree
    covered: set[str] = set()
    wanted: list[tuple[str, str, bool]] = []  # (JAX path, torch path, whole subtree)
    for path in jax_paths:
        if path in covered or path not in mapping:
            continue
        target = mapping[path]
        subtree = [p for p in jax_paths if inside(p, path)]
        whole = all(p not in mapping or mapping[p] == target + p[len(path) :] for p in subtree)
        if whole:
            covered.update(subtree)
            expected.update({p: (target + p[len(path) :]).lstrip(".") for p in subtree})
        expected[path] = target
        if target != path:
            wanted.append((path, target, whole))
    exact = [(("^" + _escape(p) + ("" if whole else "$")), t + "." if t else "") for p, t, whole in wanted]
    merged, used = [], set()
    for index, (path, target, whole) in enumerate(wanted):
        if index in used:
            continue
        general = _general(path, target)
        group = [index]
        if general is not None:
            group = [k for k, (p, t, w) in enumerate(wanted) if w == whole and k not in used
                     and _general(p, t) == general]  # fmt: skip
            candidate = ("^" + general[0] + r"\." + ("" if whole else "$"), general[1] + ".")
            trial = (
                merged + [candidate] + [exact[k] for k in range(len(wanted)) if k not in used | set(group)]
            )
            if len(group) > 1 and _faithful(trial, expected):
                merged.append(candidate)
                used.update(group)
                continue
        merged.append(exact[index])
        used.add(index)
    return merged if _faithful(merged, expected) else exact


def _faithful(rule_list, expected: dict[str, str]) -> bool:
    return all(_applies(rule_list, p) == target for p, target in expected.items())
