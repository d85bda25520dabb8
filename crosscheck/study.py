"""The vmap-vs-matmul performance study (``crosscheck study``): what each formulation costs.

Every study builds its implementations on one set of weights, checks that they compute the same
function (each output within twice the float32 rounding allowance of the first implementation's,
on the first rows) and only then times them (:mod:`crosscheck.timing`: compile apart, warm-up,
median and interquartile spread of calls on rotating inputs). GFLOP/s are reported against the
GEMM peak measured in the same run (a large float32 matmul in each framework). For JAX
formulations the compiled HLO is searched for its dot instructions: ``one_batched_dot`` says
whether it compiled to exactly one dot with a batch dimension.

Studies: ``per-head`` (the grid), ``pointwise``, ``pooled``, ``invariant``, ``call-path``, ``bias``,
and ``peak``. jaxlin modules are called along the recommended path (:func:`jaxlin.jitted`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from crosscheck.compare import Bound
from crosscheck.timing import prepare_call
from jaxlin.calling import jitted

TIME_BUDGET_S = 0.6  # per implementation: rounds = budget / one call, within [MIN_REPEATS, MAX_REPEATS]
MIN_REPEATS, MAX_REPEATS = 5, 200
PAUSE_S = 0.002  # between the frameworks' turns in a round


jit_module = jitted  # jaxlin's recommended call path (see jaxlin.calling)


def dot_summary(hlo_text: str) -> tuple[int, bool]:
    """``(number of dot instructions, whether any has a batch dimension)`` in compiled HLO text.

    >>> dot_summary("%d = f32[4,8,8]{2,1,0} dot(%a, %b), lhs_batch_dims={0}, lhs_contracting_dims={2}")
    (1, True)
    """
    dots = [line for line in hlo_text.splitlines() if re.search(r"\bdot\(", line)]
    return len(dots), any("lhs_batch_dims" in line for line in dots)


@dataclass
class Impl:
    """One implementation: ``call(*inputs)`` returns an array or tensor; ``hlo`` compiles it."""

    name: str
    framework: str  # "jax" or "torch"
    call: Callable
    hlo: Callable[[], str] | None = None
    to_layout: Callable[[np.ndarray], np.ndarray] | None = None  # its input layout, from the common one
    from_layout: Callable[[np.ndarray], np.ndarray] | None = None  # its output, back to the common one


@dataclass
class Config:
    """One point of a study: its label, sizes, FLOPs per call, inputs per framework, impls."""

    study: str
    label: str
    sizes: dict
    flops: float
    make_inputs: Callable[[int, Impl], tuple]  # (seed, impl) -> inputs in that impl's framework and layout
    impls: list[Impl]
    magnitude: Callable[[tuple], np.ndarray] | None = None  # |x|·|W| on the checked rows (float64)
    k: int = 1
    checked_rows: Callable[[np.ndarray], np.ndarray] = lambda y: y
    extra: dict = field(default_factory=dict)


def _to_numpy(y) -> np.ndarray:
    if hasattr(y, "detach"):
        return y.detach().cpu().float().numpy()
    return np.asarray(y, np.float32)


def _sync(framework: str, device: str):
    if framework == "torch" and device == "cuda":
        import torch

        return lambda _: torch.cuda.synchronize()
    return jax.block_until_ready if framework == "jax" else (lambda _: None)


def _check(config: Config, impl: Impl, sync, reference) -> tuple[dict, np.ndarray, np.ndarray | None]:
    """First call (trace, compile, one run), timed; the checked rows in the first impl's layout."""
    inputs0 = config.make_inputs(0, impl)
    start = time.perf_counter()
    first = impl.call(*inputs0)
    sync(first)
    compile_s = time.perf_counter() - start
    out = _to_numpy(first)
    out = config.checked_rows(impl.from_layout(out) if impl.from_layout else out)
    if reference is None:
        return {"compile_s": compile_s, "equal": True}, out, inputs0
    return {"compile_s": compile_s}, out, None


def run_config(config: Config, *, torch_device: str = "cpu", repeats: int | None = None) -> list[dict]:
    """Check every implementation against the first, then time them all, interleaved.

    Timing goes round by round, each round calling every implementation once (in a fresh random
    order, one framework after the other), so a change of load on the machine hits all of them
    alike and their ratios stay meaningful; each gets the median and interquartile range of its
    rounds. One record each.
    """
    records, prepared, reference, allowed = [], {}, None, None
    for index, impl in enumerate(config.impls):
        record = {"study": config.study, "config": config.label, **config.sizes}
        record |= {"impl": impl.name, "framework": impl.framework, "flops": config.flops} | config.extra
        records.append(record)
        try:
            sync = _sync(impl.framework, torch_device)
            fields, out, inputs0 = _check(config, impl, sync, reference)
            record |= fields
            if reference is None:
                reference = out
                if config.magnitude is not None:
                    allowed = 2 * Bound(config.magnitude(inputs0), config.k, "float32").allowed()
            else:
                gap = np.abs(out.astype(np.float64) - reference)
                same = np.all(gap <= allowed) if allowed is not None else np.array_equal(out, reference)
                record["equal"] = bool(out.shape == reference.shape and same)
            if not record["equal"]:
                record["error"] = "output differs from the first implementation beyond rounding"
            if impl.hlo is not None:
                count, batched = dot_summary(impl.hlo())
                record |= {"dots": count, "one_batched_dot": count == 1 and batched}
            prepared[index] = prepare_call(
                impl.call, lambda i, impl=impl: config.make_inputs(i + 1, impl), sync=sync
            )
        except Exception as error:  # an implementation that fails on this device is recorded, not fatal
            record["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    samples = _interleaved(prepared, {i: impl.framework for i, impl in enumerate(config.impls)}, repeats)
    for index, times in samples.items():
        quartiles = np.percentile(times, [25, 50, 75])
        records[index] |= {"median_s": float(quartiles[1]), "spread_s": float(quartiles[2] - quartiles[0])}
        records[index] |= {"min_s": min(times), "max_s": max(times), "repeats": len(times)}
        records[index]["gflops"] = config.flops / records[index]["median_s"] / 1e9
    return records


def _interleaved(prepared: dict, frameworks: dict, repeats: int | None) -> dict[int, list[float]]:
    """``repeats`` rounds (else as many as fit :data:`TIME_BUDGET_S` per implementation, within
    ``[MIN_REPEATS, MAX_REPEATS]``), after one untimed warm-up round."""
    once = {}
    for index, p in prepared.items():  # the warm-up round, timed only to size the rest
        start = time.perf_counter()
        p.sync(p.fn(*p.argsets[1 % len(p.argsets)]))
        once[index] = max(time.perf_counter() - start, 1e-7)
    if repeats is None:
        per_round = sum(once.values()) or 1e-7
        repeats = int(min(MAX_REPEATS, max(MIN_REPEATS, TIME_BUDGET_S * len(once) // per_round)))
    samples: dict[int, list[float]] = {index: [] for index in prepared}
    groups = [[i for i in prepared if frameworks[i] == name] for name in dict.fromkeys(frameworks.values())]
    shuffle = np.random.default_rng(0)
    for round_ in range(repeats):
        for group in groups:
            # A fresh order every round, one framework at a time with a pause between: torch's OpenMP
            # threads keep spinning after a call and would slow whichever JAX call came next.
            for index in shuffle.permutation(group):
                p = prepared[index]
                args = p.argsets[round_ % len(p.argsets)]
                start = time.perf_counter()
                p.sync(p.fn(*args))
                samples[index].append(time.perf_counter() - start)
            time.sleep(PAUSE_S)
    return samples


def peak_config(n: int) -> Config:
    """A float32 ``(n, n) @ (n, n)`` matmul in each framework: the machine's GEMM peak."""
    import torch

    def make(seed, impl):
        rng = np.random.default_rng(seed)
        a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
        return (
            (jnp.asarray(a), jnp.asarray(b))
            if impl.framework == "jax"
            else (torch.from_numpy(a), torch.from_numpy(b))
        )

    jax_mm = jax.jit(jnp.matmul)
    impls = [
        Impl("jax matmul", "jax", jax_mm, lambda: jax_mm.lower(*make(0, impls[0])).compile().as_text()),
        Impl("torch mm", "torch", torch.mm),
    ]

    def magnitude(inputs):
        a, b = (np.abs(np.asarray(t, np.float64)) for t in inputs)
        return a[:8] @ b

    return Config(
        "peak",
        f"{n}x{n}x{n}",
        {"n": n},
        2.0 * n**3,
        make,
        impls,
        magnitude,
        k=n,
        checked_rows=lambda y: y[:8],
    )
