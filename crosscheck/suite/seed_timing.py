"""Timing the entries of :mod:`crosscheck.suite.seed_shapes` with the one timing engine.

Each entry's calls are made ready first (:func:`prepare_entry`: modules on their devices, inputs
rotated among :data:`~crosscheck.runtime.timing.ROTATE` sets, each call compiled and run once) and
timed later (:func:`measure_groups`), when nothing else runs, the entries of one group together, in
the same interleaved rounds. The calls: jaxlin (through :func:`jaxlin.jitted`) and torch_ref forward
at the seed shape, the same forward on one row (``"dispatch"``: what a call costs beyond its
arithmetic, per call of :data:`DISPATCH_CALLS` in a row), and with ``backward`` forward+backward.

A group gets ``repeats`` rounds, or fewer where a round is slow: as many as fit :data:`ROUND_BUDGET_S`
per entry, never under :data:`MIN_ROUNDS` (a 17-GFLOP pooled head takes 0.2 s a call here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import jax
import numpy as np
import torch
from flax import nnx

from crosscheck.runtime.devices import torch_sync
from crosscheck.runtime.meshes import MeshSpec, input_placer, make_mesh, shard_module
from crosscheck.runtime.timing import (
    MIN_ROUNDS,
    ROTATE,
    Prepared,
    Timing,
    jax_calls,
    measure,
    prepare,
    torch_calls,
)
from crosscheck.suite.pairs import build_pair
from crosscheck.suite.seed_shapes import TimedEntry

ROUND_BUDGET_S = 0.4  # per entry: the rounds that fit in this, at most ``repeats``
DISPATCH_CALLS = 20  # one-row calls back to back in one timed dispatch call


@dataclass
class PreparedEntry:
    """An entry's calls, each run once, and the estimated time of one round of them: torch's first
    calls (eager: nothing to compile) twice over, for both frameworks; :func:`rounds_for` sizes the
    timed rounds with it."""

    calls: dict[tuple[str, str], Prepared]
    round_s: float


def prepare_entry(
    entry: TimedEntry,
    *,
    seed: int,
    device,
    torch_device: str,
    mesh: MeshSpec = (),
    backward: bool = False,
    made: dict | None = None,
) -> PreparedEntry:
    """The entry's calls ``(framework, kind)`` with ``kind`` ``forward``, ``dispatch`` (not on a mesh:
    one row cannot be split) and, with ``backward``, ``forward_backward``; each run once. ``made``
    keeps the inputs for the next entries made by the same function (the pooled entries share 400 MB).

    Shape:
        inputs as ``entry.case.make_inputs`` and ``entry.dispatch_inputs`` make them (float32).
    """
    pair = build_pair(entry.case, "float32", seed=seed)
    if mesh:
        on_mesh = make_mesh(mesh)
        shard_module(pair.jax, on_mesh)
        place = input_placer(on_mesh)
    else:
        nnx.update(pair.jax, jax.device_put(nnx.state(pair.jax), device))
        place = lambda args: tuple(jax.device_put(a, device) for a in args)  # noqa: E731
    made = {} if made is None or mesh else made  # on a mesh each entry places its own inputs
    kinds = {"forward": entry.case.make_inputs} | ({} if mesh else {"dispatch": entry.dispatch_inputs})
    jax_forward, jax_backward = jax_calls(pair.jax)
    torch_forward, torch_backward = torch_calls(pair.torch.to(torch_device))
    syncs = {"jax": jax.block_until_ready, "torch": torch_sync(torch_device)}
    calls = {}
    for kind, make in kinds.items():
        jax_sets, torch_sets = _argument_sets(entry, make, seed, made, place, torch_device)
        forwards = {"jax": jax_forward, "torch": torch_forward}
        if kind == "dispatch":
            forwards = {f: _back_to_back(fn, syncs[f], DISPATCH_CALLS) for f, fn in forwards.items()}
        calls["jax", kind], calls["torch", kind] = (
            (forwards["jax"], jax_sets),
            (forwards["torch"], torch_sets),
        )
    if backward:
        calls["jax", "forward_backward"] = (jax_backward, calls["jax", "forward"][1])
        calls["torch", "forward_backward"] = (torch_backward, calls["torch", "forward"][1])
    prepared = {
        key: prepare(fn, args.__getitem__, sync=syncs[key[0]], group=key[0])
        for key, (fn, args) in sorted(calls.items())
    }
    torch_first = sum(call.compile_s for key, call in prepared.items() if key[0] == "torch")
    return PreparedEntry(prepared, 2 * torch_first)


def _back_to_back(fn, sync, times: int):
    """``fn`` called ``times`` times in a row, each call waited for: one timed call of it, divided by
    ``times``, is what one call costs inside a loop (a single call after the timing engine's pause
    also pays for waking the machine's cores, about 0.2 ms on this virtual machine)."""

    def calls(*args):
        for _ in range(times - 1):
            sync(fn(*args))
        return fn(*args)

    return calls


def _argument_sets(entry: TimedEntry, make, seed: int, made: dict, place, torch_device: str):
    """:data:`ROTATE` input sets from ``make`` on JAX's devices and in torch_ref's layout, each made
    once per function and seed (``made``). On the CPU the torch tensors hold the NumPy arrays' memory
    (float32 only, never written: copying 64 MB costs 0.1 s here)."""
    if (make, seed) not in made:
        rng = np.random.default_rng(seed + 1)
        made[make, seed] = [tuple(make(rng)) for _ in range(ROTATE)]
    sets = made[make, seed]
    if (make, seed, "jax") not in made:
        made[make, seed, "jax"] = [place(s) for s in sets]
    layout = (make, seed, "torch", entry.case.channels_first)
    if layout not in made:
        made[layout] = [
            tuple(
                torch.from_numpy(np.ascontiguousarray(a)).to(torch_device) for a in entry.case.torch_inputs(s)
            )
            for s in sets
        ]
    return made[make, seed, "jax"], made[layout]


def rounds_for(one_round_s: float, repeats: int, entries: int = 1) -> int:
    """``repeats``, or as many rounds as fit :data:`ROUND_BUDGET_S` per entry if fewer, but at least
    :data:`MIN_ROUNDS`.

    >>> rounds_for(0.001, 10), rounds_for(0.2, 10), rounds_for(0.2, 3), rounds_for(0.2, 10, entries=3)
    (10, 5, 3, 6)
    """
    budget = ROUND_BUDGET_S * entries
    return min(repeats, max(MIN_ROUNDS, int(budget / max(one_round_s, 1e-9))))


Timings = dict[tuple[str, str], Timing]


def measure_entries(
    prepared: Mapping[str, PreparedEntry], *, repeats: int, engine: Callable = measure
) -> dict[str, Timings]:
    """Time the calls of several entries together, in the same interleaved rounds (``engine``: the
    timing engine, :func:`crosscheck.runtime.timing.measure`), so any two of them pair up round by
    round; :func:`rounds_for` rounds. Dispatch times per call (of :data:`DISPATCH_CALLS` back to back).

    Returns ``{entry name: {(framework, kind): Timing}}``.
    """
    calls = {(name, *key): call for name, entry in prepared.items() for key, call in entry.calls.items()}
    one_round_s = sum(entry.round_s for entry in prepared.values())
    timings = engine(calls, repeats=rounds_for(one_round_s, repeats, len(prepared)))
    found: dict[str, Timings] = {name: {} for name in prepared}
    for (name, framework, kind), timing in timings.items():
        found[name][framework, kind] = _per_call(timing) if kind == "dispatch" else timing
    return found


def measure_groups(
    entries: Sequence[TimedEntry],
    prepared: Sequence[PreparedEntry | str],
    *,
    repeats: int,
    advance: Callable[[int], object] = lambda done: None,
    engine: Callable = measure,
) -> list[Timings | str]:
    """Every entry's timings, or the error that stopped it: the entries of one
    :attr:`~crosscheck.suite.seed_shapes.TimedEntry.group` timed together (:func:`measure_entries`),
    an entry without one alone. ``prepared[i]`` is ``entries[i]`` made ready, or the error (a string)
    that stopped it; ``advance(n)`` follows the progress, ``n`` entries at a time."""
    outcomes: list[Timings | str] = list(prepared)
    groups: dict[str, list[int]] = {}
    for index, entry in enumerate(entries):
        groups.setdefault(entry.group or f"alone {index}", []).append(index)
    for members in groups.values():
        ready = {entries[i].name: prepared[i] for i in members if not isinstance(prepared[i], str)}
        try:
            timed = measure_entries(ready, repeats=repeats, engine=engine) if ready else {}
        except Exception as error:  # a timed call that raises fails its group; the run goes on
            timed = {name: f"timing: {type(error).__name__}: {error}" for name in ready}
        for index in members:
            outcomes[index] = timed.get(entries[index].name, outcomes[index])
        advance(len(members))
    return outcomes


def _per_call(timing: Timing) -> Timing:
    """A timing of :data:`DISPATCH_CALLS` calls as one call's (the first of them keeps its compile)."""
    n = DISPATCH_CALLS
    return Timing(
        timing.median_s / n,
        timing.spread_s / n,
        timing.min_s / n,
        timing.max_s / n,
        timing.compile_s,
        timing.repeats,
        samples_s=tuple(sample / n for sample in timing.samples_s),
    )
