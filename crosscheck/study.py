"""The vmap-vs-matmul performance study (``crosscheck study``): what each formulation costs.

Every study builds its implementations on one set of weights, checks that they compute the same
function (each output within twice the float32 rounding allowance of the first implementation's,
on the first rows) and only then times them (:mod:`crosscheck.timing`: compile apart, warm-up,
median and interquartile spread of calls on rotating inputs). GFLOP/s are reported against the
GEMM peak measured in the same run (a large float32 matmul in each framework). For JAX
formulations the compiled HLO is searched for its dot instructions: ``one_batched_dot`` says
whether it compiled to exactly one dot with a batch dimension.

Studies: ``per-head`` (the grid), ``pointwise``, ``pooled``, ``invariant``, ``call-path``, ``bias``,
and ``peak``. jaxlin modules are called along the recommended path (:func:`jit_module`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from crosscheck.compare import Bound
from crosscheck.timing import measure, prepare_call

TIME_BUDGET_S = 0.6  # per measurement: repeats = budget / one call, within [MIN_REPEATS, MAX_REPEATS]
MIN_REPEATS, MAX_REPEATS = 3, 30


def jit_module(module: nnx.Module) -> Callable:
    """jaxlin's recommended call path: split once, ``jax.jit`` a pure function of the state.

    >>> import jaxlin
    >>> call = jit_module(jaxlin.Linear(3, 2, rngs=nnx.Rngs(0)))
    >>> call(jnp.ones((4, 3))).shape
    (4, 2)
    """
    graphdef, state = nnx.split(module)
    forward = jax.jit(lambda state, *inputs: nnx.merge(graphdef, state)(*inputs))
    return lambda *inputs: forward(state, *inputs)


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
    channels_first: bool = False  # takes (batch, features, length) and returns the same layout


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


def run_config(config: Config, *, torch_device: str = "cpu", repeats: int | None = None) -> list[dict]:
    """Check every implementation against the first, then time each; one record per implementation."""
    records, reference = [], None
    for impl in config.impls:
        record = {"study": config.study, "config": config.label, **config.sizes}
        record |= {"impl": impl.name, "framework": impl.framework, "flops": config.flops}
        try:
            sync = _sync(impl.framework, torch_device)
            inputs0 = config.make_inputs(0, impl)
            start = time.perf_counter()
            first = impl.call(*inputs0)  # trace, compile and one run
            sync(first)
            compile_s = time.perf_counter() - start
            out = _to_numpy(first)
            out = config.checked_rows(np.swapaxes(out, -1, -2) if impl.channels_first else out)
            if reference is None:
                reference = out
                allowed = None
                if config.magnitude is not None:
                    allowed = 2 * Bound(config.magnitude(inputs0), config.k, "float32").allowed()
                record["equal"] = True
            else:
                gap = np.abs(out.astype(np.float64) - reference)
                record["equal"] = (
                    bool(out.shape == reference.shape and np.all(gap <= allowed))
                    if (allowed is not None)
                    else bool(np.array_equal(out, reference))
                )
            prepared = prepare_call(
                impl.call, lambda i, impl=impl: config.make_inputs(i + 1, impl), sync=sync
            )
            start_repeats = repeats or _repeats_for(prepared)
            timing = measure(prepared, repeats=start_repeats, warmup=0)  # the calls above warmed it
        except Exception as error:  # an implementation that fails on this device is recorded, not fatal
            records.append(record | {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"})
            continue
        record |= timing.as_dict() | {"compile_s": compile_s}
        record["gflops"] = config.flops / timing.median_s / 1e9
        if impl.hlo is not None:
            count, batched = dot_summary(impl.hlo())
            record |= {"dots": count, "one_batched_dot": count == 1 and batched}
        if record.get("equal") is False:
            record["error"] = "output differs from the first implementation beyond rounding"
        records.append(record | config.extra)
    return records


def _repeats_for(prepared) -> int:
    args = prepared.argsets[1 % len(prepared.argsets)]
    start = time.perf_counter()
    prepared.sync(prepared.fn(*args))
    once = max(time.perf_counter() - start, 1e-7)
    return int(min(MAX_REPEATS, max(MIN_REPEATS, TIME_BUDGET_S // once)))


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
