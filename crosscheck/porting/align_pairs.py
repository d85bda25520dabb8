"""How :func:`crosscheck.porting.align.align` pairs the layers that own weights (the units of
:mod:`crosscheck.porting.align_match`): the pairs ``rename`` names, then equal values, then call order,
then, among layers fed the same tensor, names.

>>> sorted(HOW)
['by name', 'given', 'order+kind+shape', 'order+shape', 'values']
"""

from __future__ import annotations

import itertools

import numpy as np

from crosscheck.porting import align_match as am
from crosscheck.weights.tree import renamed

HOW = ("given", "values", "order+kind+shape", "order+shape", "by name")
"""How a pair was decided (an undecided one is ``"ambiguous: ..."``)."""


def _cluster_swaps(pairs: dict, jax_of: dict, torch_of: dict, how: dict, others: dict) -> None:
    """Pairs whose layers were fed the same tensor on either side (q, k, v) can be swapped without
    breaking the call order: among such a group's assignments that fit best, the closest names decide,
    else the rows whose partner differs are ambiguous."""
    ordered = [j for j in pairs if how[j] not in ("values", "given")]
    groups: dict[str, set] = {}
    for a, b in itertools.combinations(ordered, 2):
        same_input = jax_of[a].input_key is not None and jax_of[a].input_key == jax_of[b].input_key
        same_input |= (
            torch_of[pairs[a]].input_key is not None
            and torch_of[pairs[a]].input_key == torch_of[pairs[b]].input_key
        )
        if same_input and am.fit(jax_of[a], torch_of[pairs[b]]) and am.fit(jax_of[b], torch_of[pairs[a]]):
            merged = groups.get(a, {a}) | groups.get(b, {b})
            for member in merged:
                groups[member] = merged
    for group in {id(g): g for g in groups.values()}.values():
        rows, columns = (
            sorted(group, key=lambda j: jax_of[j].order),
            [pairs[j] for j in sorted(group, key=lambda j: jax_of[j].order)],
        )
        if len(rows) > 7:
            for j in rows:
                how[j], others[j] = (
                    "ambiguous: same input, too many to tell apart",
                    [c for c in columns if c != pairs[j]],
                )
            continue
        scored = []
        for perm in itertools.permutations(columns):
            fits = [am.fit(jax_of[j], torch_of[t]) for j, t in zip(rows, perm, strict=True)]
            if all(fits):
                names = sum(am.name_score(j, t) for j, t in zip(rows, perm, strict=True))
                scored.append(((sum(f == 2 for f in fits), names), perm))
        kinds = max(score[0] for score, _ in scored)
        scored = [(score, perm) for score, perm in scored if score[0] == kinds]
        if len(scored) < 2:
            continue
        top = max(score for score, _ in scored)
        best = [perm for score, perm in scored if score == top]
        for index, j in enumerate(rows):
            choices = sorted({perm[index] for perm in best})
            pairs[j] = best[0][index]
            if len(choices) == 1:
                how[j] = "by name"
            else:
                how[j], others[j] = (
                    "ambiguous: same input, names do not tell",
                    [c for c in choices if c != pairs[j]],
                )


def pair_units(jax_list, torch_list, rename):
    """JAX unit path -> torch unit path for the called units, with how and the alternatives."""
    jax_of, torch_of = {u.path: u for u in jax_list}, {u.path: u for u in torch_list}
    ours = sorted((u for u in jax_list if u.order is not None), key=lambda u: u.order)
    theirs = sorted((u for u in torch_list if u.order is not None), key=lambda u: u.order)
    pairs, how, others = {}, {}, {}
    misfit = {}  # rename= names a torch layer that does not fit: said on the row, never taken
    if rename is not None:
        for unit in ours:
            target = renamed(unit.path + ".", rename)[:-1] if unit.path else ""
            if target in torch_of and am.fit(unit, torch_of[target]):
                pairs[unit.path], how[unit.path] = target, "given"
            elif target in torch_of and target != unit.path:
                named = torch_of[target]
                misfit[unit.path] = (
                    f"; rename= names {target} ({named.kind} {named.specs}), which does not fit"
                )
    taken = set(pairs.values())
    ours = [u for u in ours if u.path not in pairs]
    theirs = [u for u in theirs if u.path not in taken]
    keys_ours = {u.path: am.value_key(u) for u in ours}
    keys_theirs = {u.path: am.value_key(u) for u in theirs}
    count = lambda keys, key: sum(k == key for k in keys.values())  # noqa: E731
    for unit in ours:
        key = keys_ours[unit.path]
        if key is None or count(keys_ours, key) != 1 or count(keys_theirs, key) != 1:
            continue
        twin = next(t for t in theirs if keys_theirs[t.path] == key)
        if am.fit(unit, twin):
            pairs[unit.path], how[unit.path] = twin.path, "values"
    candidates: dict[str, set[str]] = {}
    for _ in range(3):  # a branch called in another order (a shortcut) is left over, then aligned alone
        taken = set(pairs.values())
        ours = [u for u in ours if u.path not in pairs]
        theirs = [u for u in theirs if u.path not in taken]
        if not ours or not theirs or not _by_order(ours, theirs, pairs, how, others, candidates):
            break
    _settle(pairs, how, others, candidates)
    _cluster_swaps(pairs, jax_of, torch_of, how, others)
    for path, said in misfit.items():
        how[path] = how.get(path, "") + said
    return pairs, how, others


def _by_order(ours, theirs, pairs, how, others, candidates) -> bool:
    """Pair ``ours`` with ``theirs`` in call order (:func:`~crosscheck.porting.align_match.order_candidates`);
    whether any pair was found."""
    fits = np.array([[am.fit(a, b) for b in theirs] for a in ours], np.int64).reshape(len(ours), len(theirs))
    plain = np.where(fits > 0, am.BASE + am.KIND * (fits == 2), 0)
    names = np.array([[am.name_score(a.path, b.path) for b in theirs] for a in ours], np.int64)
    _, by_order, skip_order = am.order_candidates(plain)
    partner, by_name, skip_name = am.order_candidates(
        np.where(fits > 0, plain + names.reshape(fits.shape), 0)
    )
    for i, unit in enumerate(ours):
        if partner[i] is None:
            continue
        j = partner[i]
        pairs[unit.path] = theirs[j].path
        candidates[unit.path] = {theirs[k].path for k in by_order[i] | {j}}
        if by_order[i] == {j} and not skip_order[i]:
            how[unit.path] = "order+kind+shape" if fits[i, j] == 2 else "order+shape"
        elif by_name[i] == {j} and not skip_name[i]:
            how[unit.path] = "by name"
        else:
            others[unit.path] = [theirs[k].path for k in sorted(by_order[i] - {j})]
            how[unit.path] = "ambiguous: order does not tell" + (
                "" if others[unit.path] else " (another layer could be it)"
            )
    return any(p is not None for p in partner)


def _settle(pairs, how, others, candidates) -> None:
    """An ambiguous pair whose every other candidate, and every other row that could take its partner,
    has been decided elsewhere (a later pass placed the shortcut) is decided: nothing else is left."""
    changed = True
    while changed:
        changed = False
        decided = {pairs[j] for j in pairs if not how[j].startswith("ambiguous")}
        for path in [j for j in pairs if how[j].startswith("ambiguous: order does not tell")]:
            left = candidates[path] - decided
            rivals = [j for j, c in candidates.items() if j != path and pairs[path] in c]
            if left == {pairs[path]} and all(not how[j].startswith("ambiguous") for j in rivals):
                how[path], others[path], changed = "order+kind+shape", [], True
