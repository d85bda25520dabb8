r"""What :func:`crosscheck.porting.align.align` makes of its paired layers: the containers' counterparts
(inferred from their children) and the ``rename`` rules that reproduce the whole mapping.

A container maps to the torch module its matched children's counterparts sit in: the same number of
levels up when they all agree (``stem`` of ``stem.conv`` and ``stem.norm`` is ``embedder`` of
``embedder.convolution`` and ``embedder.normalization``), else their deepest common ancestor. It is
inconsistent (and flagged) when that torch module also holds a layer paired with one outside it.

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

from crosscheck.weights.tree import renamed


def inside(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or lies below it (``""`` is the root of everything)."""
    return root == "" or path == root or path.startswith(root + ".")


def _up(path: str, levels: int) -> str | None:
    parts = path.split(".") if path else []
    return ".".join(parts[: len(parts) - levels]) if len(parts) >= levels else None


def container_target(path: str, pairs: dict[str, str], torch_paths: set[str]) -> tuple[str | None, str]:
    """The torch counterpart of the JAX container at ``path`` from its descendants' ``pairs`` (JAX path
    -> torch path), and ``""`` or what is wrong with it (no torch module there, or inconsistent)."""
    below = [(j, t) for j, t in pairs.items() if j != path and inside(j, path)]
    if not below:
        return None, "no paired layer below it"
    depth = len(path.split(".")) if path else 0
    same_levels = {_up(t, len(j.split(".")) - depth) for j, t in below}
    tried = []
    if len(same_levels) == 1 and None not in same_levels:
        tried.append(same_levels.pop())
    split = [t.split(".") if t else [] for _, t in below]
    common = []
    for parts in zip(*split, strict=False):
        if len(set(parts)) > 1:
            break
        common.append(parts[0])
    common = common[: min(len(s) for s in split) - 1] if any(len(common) >= len(s) for s in split) else common
    tried.append(".".join(common))
    problem = ""
    for target in dict.fromkeys(tried):
        outside = [j for j, t in pairs.items() if inside(t, target) and not inside(j, path) and t != target]
        if target not in torch_paths:
            problem = problem or f"torch has no module {target!r}"
        elif outside:
            problem = f"torch {target!r} also holds {outside[0]!r}'s counterpart"
        else:
            return target, ""
    return (tried[-1] if tried[-1] in torch_paths else None), problem


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
