"""What ``crosscheck run`` times: one entry per distinct computation, at the shape of its question.

The checks run at tiny shapes, where a call costs what dispatching it costs (20–140 µs). Timing
those says nothing about the arithmetic, so each entry here builds its modules again at the size
the seed questions and the study use, where compute dominates, and is timed once, in float32:

- ``linear``, ``pointwise-matmul``, ``pointwise-conv``: the 1×1 convolution question, at
  (16, 1024, 256)→256 (16,384 rows; the study's tall shape has 64 batches, 4× the time);
- ``batch-invariant-linear``: the batch-size question's fix, at the same shape as ``linear``;
- ``pooled-output-linear-full-{reorder,literal}``: the mean before or after both linear layers
  (PooledHead 512→512→16) at the study's (16, 2048, 512). Every other PooledHead case computes at
  one of these two stages, or at the hidden one (an activation between the layers), which costs
  about what the literal one costs (its projector runs on every position) and is not timed apart;
- ``perhead-einsum-bmm``, ``perhead-vmap-vmap``: each one-pass per-head formulation of both
  frameworks once, at 16 heads, 128→128, 32×64 rows (a study target shape). The loops are what one
  pass replaces: checked, not timed (jaxlin's loop alone takes 2 s to compile at this shape here).

An entry is timed when a case it ``covers`` is checked (the batch-size entries: with the probe).
Its dispatch cost is the same call on one row (:attr:`TimedEntry.dispatch_inputs`). The entries that
one answer compares share a :attr:`TimedEntry.group` (``dense``, ``pooled``, ``per-head``) and are
timed together, round by round, so that their ratios pair up round by round.

>>> [entry.name for entry in timed_entries(["pooled-input-relu-masked-literal"], probe=False)]
['pooled-output-linear-full-reorder']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import jaxlin
import torch_ref
from crosscheck.suite.cases import POOLED_VARIANTS, Case, pair_of
from layer_rules import compute_stage

Inputs = Callable[[np.random.Generator], tuple[np.ndarray, ...]]


@dataclass(frozen=True)
class TimedEntry:
    """A case rebuilt at its seed shape: ``case`` (its modules and float32 inputs), the ``shape`` in
    words, the check cases whose computation it times (``covers``), and one row of input for the
    dispatch time. ``probe``: timed with the batch-size probe instead. ``group``: the entries of one
    group are timed in the same interleaved rounds (none: alone)."""

    case: Case
    shape: str
    covers: tuple[str, ...]
    dispatch_inputs: Inputs
    probe: bool = False
    group: str = ""

    @property
    def name(self) -> str:
        return self.case.name


def _uniform32(*shape: int) -> Inputs:
    """float32 inputs in [-0.5, 0.5): drawn 5× faster than normal ones (200 MB for the pooled head)."""

    def make(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        values = rng.random(shape, dtype=np.float32)
        values -= 0.5
        return (values,)

    return make


LINEAR = {"batch": 16, "seq": 1024, "features": 256}
POOLED = {"batch": 16, "seq": 2048, "features": 512, "out": 16}
PER_HEAD = {"batch": 32, "windows": 64, "heads": 16, "features": 128}


def _entry(
    name: str, makers, shape: str, covers, inputs: Inputs, one_row: Inputs, *, group: str, **options
) -> TimedEntry:
    return TimedEntry(Case(name, *makers, inputs, **options), shape, tuple(covers), one_row, group=group)


def _dense_entries() -> list[TimedEntry]:
    b, t, f = LINEAR.values()
    shape, inputs, one_row = f"({b}, {t}, {f})→{f}", _uniform32(b, t, f), _uniform32(1, 1, f)
    linear = pair_of(jaxlin.Linear, torch_ref.Linear, f, f)
    invariant = pair_of(jaxlin.BatchInvariantLinear, torch_ref.BatchInvariantLinear, f, f)
    entries = [
        _entry("linear", linear, shape, ("linear", "collapse"), inputs, one_row, group="dense"),
        TimedEntry(
            Case("batch-invariant-linear", *invariant, inputs), shape, (), one_row, probe=True, group="dense"
        ),
    ]
    for impl in ("matmul", "conv"):
        makers = pair_of(jaxlin.PointwiseConv, torch_ref.PointwiseConv, f, f, impl=impl)
        name = f"pointwise-{impl}"
        entries.append(
            _entry(name, makers, shape, (name,), inputs, one_row, group="dense", channels_first=True)
        )
    return entries


def _pooled_entries() -> list[TimedEntry]:
    """Pool first (what ``reorder`` does without an activation) and pool last; the cases that compute
    at the hidden stage (an activation between the layers) are covered by the literal one."""
    b, t, f, o = POOLED.values()
    shape, inputs, one_row = f"({b}, {t}, {f}) {f}→{f}→{o}", _uniform32(b, t, f), _uniform32(1, 1, f)
    stage_of = {
        v.name: compute_stage(v.pool_at, v.activation is not None, v.reorder) for v in POOLED_VARIANTS
    }
    entries = []
    for order, stages in (("reorder", ("input",)), ("literal", ("hidden", "output"))):
        makers = pair_of(
            jaxlin.PooledHead, torch_ref.PooledHead, f, f, o, pool_at="output", reorder=order == "reorder"
        )
        covers = [name for name, stage in stage_of.items() if stage in stages]
        name = f"pooled-output-linear-full-{order}"
        entries.append(_entry(name, makers, shape, covers, inputs, one_row, group="pooled"))
    return entries


def _per_head_entries() -> list[TimedEntry]:
    b, w, h, f = PER_HEAD.values()
    entries = []
    for jax_impl, torch_impl in (("einsum", "bmm"), ("vmap", "vmap")):
        jax_make = pair_of(jaxlin.PerHeadLinear, torch_ref.PerHeadLinear, h, f, f, impl=jax_impl)[0]
        torch_make = pair_of(jaxlin.PerHeadLinear, torch_ref.PerHeadLinear, h, f, f, impl=torch_impl)[1]
        name = f"perhead-{jax_impl}-{torch_impl}"
        covers = tuple(
            f"perhead-{j}-{t}"
            for j in ("einsum", "vmap", "loop")
            for t in ("bmm", "vmap", "loop")
            if j == jax_impl or t == torch_impl or (jax_impl == "einsum" and "loop" in (j, t))
        )
        shape = f"({b}×{w} rows, {h} heads, {f}→{f})"
        inputs, one_row = _uniform32(b, w, h, f), _uniform32(1, h, f)
        entries.append(_entry(name, (jax_make, torch_make), shape, covers, inputs, one_row, group="per-head"))
    return entries


def all_timed_entries() -> list[TimedEntry]:
    """Every entry, in the order they are timed and shown."""
    return _dense_entries() + _pooled_entries() + _per_head_entries()


def timed_entries(checked: list[str], *, probe: bool) -> list[TimedEntry]:
    """The entries that time a computation among the ``checked`` cases (and the probe's, with it)."""
    chosen = set(checked)
    return [
        entry
        for entry in all_timed_entries()
        if chosen.intersection(entry.covers) or (probe and (entry.probe or entry.name == "linear"))
    ]
