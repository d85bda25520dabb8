"""The one timing engine of crosscheck (``crosscheck run``, ``crosscheck study``, docs/scripts).

Rules (DESIGN.md, Timing): each call is prepared first (:func:`prepare`: its inputs made, its first
call — trace, compile and one run — timed apart), then :func:`measure` times all the prepared calls
of one comparison together, round by round: one untimed warm-up round, then each round calls every
call once, one framework's calls after the other's in a fresh random order, with a short pause
between the frameworks (torch's OpenMP threads spin after a call and would slow whichever JAX call
came next). A change of load on the machine then hits every call alike, so ratios from one run
mean something. Inputs rotate among :data:`ROTATE` random sets (never zeros); each call waits for
its result (``block_until_ready``; ``torch.cuda.synchronize()`` on CUDA); the garbage collector is
off during the rounds, as :mod:`timeit` does. Each call gets the median of its rounds, the
interquartile range and every round's time (``samples_s``, in round order: round ``r`` of two calls of
one :func:`measure` ran side by side, so :mod:`crosscheck.runtime.ratio_intervals` pairs them).

jaxlin modules are called through :func:`jaxlin.jitted` (the recommended path); their
forward+backward is ``jax.jit(jax.grad(sum of the output))`` over the split parameters.

>>> t = time_call(lambda x: x * 2, lambda i: (np.full(4, i + 1.0),), sync=lambda r: r, repeats=5)
>>> t.repeats, t.min_s <= t.median_s <= t.max_s
(5, True)
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

import jaxlin
from crosscheck.runtime.devices import torch_sync
from crosscheck.weights import torch_of_numpy

ROTATE = 3  # distinct input sets cycled through the timed calls
TIME_BUDGET_S = 0.6  # per call, when no number of rounds is given: rounds = budget / one round
MIN_ROUNDS, MAX_ROUNDS = 5, 200
PAUSE_S = 0.002  # between the frameworks' turns in a round


@dataclass(frozen=True)
class Timing:
    """Seconds per call: ``median_s`` over ``repeats`` rounds, ``spread_s`` their interquartile range,
    ``compile_s`` the first call (trace, compile and one run) on its own, ``samples_s`` each round's time.

    Shape:
        ``samples_s``: ``(repeats,)``, in round order (empty where only the summary is known).
    """

    median_s: float
    spread_s: float
    min_s: float
    max_s: float
    compile_s: float
    repeats: int
    samples_s: tuple[float, ...] = field(default=(), repr=False)

    def as_dict(self) -> dict[str, float]:
        """The summary numbers, without the per-round ``samples_s``."""
        summary = asdict(self)
        del summary["samples_s"]
        return summary


@dataclass
class Prepared:
    """A call that has run once (compiled, caches filled), ready for :func:`measure`."""

    fn: Callable
    argsets: list[tuple]
    sync: Callable
    compile_s: float
    group: str = ""  # calls of one group (a framework) run back to back within a round
    context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext


def prepare(
    fn: Callable,
    make_args: Callable[[int], Sequence],
    *,
    sync: Callable,
    group: str = "",
    context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> Prepared:
    """Make the :data:`ROTATE` input sets and time the first call (trace, compile, one run) alone.

    ``context()`` is entered around every call (e.g. ``jax.enable_x64`` for float64 cases), here and
    in :func:`measure`, so the compiled function is the one that gets timed.
    """
    argsets = [tuple(make_args(i)) for i in range(ROTATE)]
    with context():
        start = time.perf_counter()
        sync(fn(*argsets[0]))
        compile_s = time.perf_counter() - start
    return Prepared(fn, argsets, sync, compile_s, group, context)


def _call(p: Prepared, args: tuple) -> float:
    with p.context():
        start = time.perf_counter()
        p.sync(p.fn(*args))
        return time.perf_counter() - start


def _rounds(prepared: Mapping, repeats: int | None, budget_s: float) -> int:
    """``repeats``, or as many rounds as fit ``budget_s`` per call (the warm-up round sizes it)."""
    once = sum(max(_call(p, p.argsets[1 % ROTATE]), 1e-7) for p in prepared.values())
    if repeats is not None:
        return repeats
    return int(min(MAX_ROUNDS, max(MIN_ROUNDS, budget_s * len(prepared) // once)))


def measure(
    prepared: Mapping[Hashable, Prepared], *, repeats: int | None = None, budget_s: float = TIME_BUDGET_S
) -> dict[Hashable, Timing]:
    """Time every prepared call, interleaved round by round (see the module docstring): ``repeats``
    rounds, or as many as take about ``budget_s`` per call (never fewer than :data:`MIN_ROUNDS`).

    Raises:
        ValueError: ``repeats`` below 1, or ``budget_s`` not above 0.
    """
    if repeats is not None and repeats < 1:
        raise ValueError(f"measure: repeats must be at least 1, got {repeats}.")
    if not budget_s > 0:
        raise ValueError(f"measure: budget_s must be above 0 seconds, got {budget_s}.")
    rounds = _rounds(prepared, repeats, budget_s)
    groups = [
        [k for k, p in prepared.items() if p.group == g]
        for g in dict.fromkeys(p.group for p in prepared.values())
    ]
    samples: dict[Hashable, list[float]] = {key: [] for key in prepared}
    shuffle = np.random.default_rng(0)
    collecting = gc.isenabled()
    gc.disable()  # as timeit does: a collection of the whole heap is not the function's cost
    try:
        for round_ in range(rounds):
            for group in groups:
                for position in shuffle.permutation(len(group)):
                    key = group[position]
                    samples[key].append(_call(prepared[key], prepared[key].argsets[round_ % ROTATE]))
                time.sleep(PAUSE_S)
    finally:
        if collecting:
            gc.enable()
    return {key: _timing(times, prepared[key].compile_s) for key, times in samples.items()}


def _timing(times: list[float], compile_s: float) -> Timing:
    low, median, high = np.percentile(times, [25, 50, 75])
    summary = (float(median), float(high - low), min(times), max(times), compile_s, len(times))
    return Timing(*summary, samples_s=tuple(times))


def time_call(
    fn: Callable, make_args: Callable[[int], Sequence], *, sync: Callable, repeats: int | None = None
) -> Timing:
    """Time one call alone: :func:`prepare`, then :func:`measure` it.

    ``sync(result)`` must block until the result exists (``jax.block_until_ready``, a CUDA sync).
    """
    return measure({0: prepare(fn, make_args, sync=sync)}, repeats=repeats)[0]


def jax_calls(module: nnx.Module) -> tuple[Callable, Callable]:
    """``forward(*inputs)`` through :func:`jaxlin.jitted` and ``backward(x, *others)``: the jit-compiled
    gradient of ``sum(module(x, *others))`` with respect to the parameters and ``x``."""
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)

    def loss(p, x, *others):
        return jnp.sum(nnx.merge(graphdef, p, rest)(x, *others))

    grads = jax.jit(jax.grad(loss, argnums=(0, 1)))
    return jaxlin.jitted(module), lambda x, *others: grads(params, x, *others)


def torch_calls(module) -> tuple[Callable, Callable]:
    """``forward(*inputs)`` without autograd and ``backward(x, *others)``: ``module(x).sum().backward()``."""

    def forward(*inputs):
        with torch.no_grad():
            return module(*inputs)

    def backward(x, *others):
        module.zero_grad(set_to_none=True)
        x = x.detach().requires_grad_(True)
        module(x, *others).sum().backward()
        return x.grad

    return forward, backward


def prepare_pair(
    jax_module,
    torch_module,
    argsets,
    torch_argsets,
    *,
    device,
    torch_device: str,
    x64: bool = False,
    place=None,
):
    """The four calls of a module pair — ``("jax" | "torch", "forward" | "forward_backward")`` — run once
    each on their devices, ready for :func:`measure`. ``place(inputs)`` instead of ``device``: the JAX
    module stays where it is (sharded on a mesh) and its inputs go where ``place`` puts them.

    Shape:
        ``argsets`` (jaxlin layout) and ``torch_argsets`` (torch layout): :data:`ROTATE` input tuples.
    """
    context = (lambda: jax.enable_x64(True)) if x64 else contextlib.nullcontext
    with context():
        if place is None:
            nnx.update(jax_module, jax.device_put(nnx.state(jax_module), device))
            place = lambda args: tuple(jax.device_put(a, device) for a in args)  # noqa: E731
        jax_args = [place(tuple(args)) for args in argsets]
        jax_forward, jax_backward = jax_calls(jax_module)
    module = torch_module.to(torch_device)
    torch_args = [tuple(torch_of_numpy(a).to(torch_device) for a in args) for args in torch_argsets]
    torch_forward, torch_backward = torch_calls(module)
    calls = {
        ("jax", "forward"): (jax_forward, jax_args, jax.block_until_ready, context),
        ("jax", "forward_backward"): (jax_backward, jax_args, jax.block_until_ready, context),
        ("torch", "forward"): (torch_forward, torch_args, torch_sync(torch_device), contextlib.nullcontext),
        ("torch", "forward_backward"): (
            torch_backward,
            torch_args,
            torch_sync(torch_device),
            contextlib.nullcontext,
        ),
    }
    return {
        key: prepare(fn, args.__getitem__, sync=sync, group=key[0], context=ctx)
        for key, (fn, args, sync, ctx) in calls.items()
    }
