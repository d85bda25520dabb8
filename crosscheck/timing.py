"""Wall-clock timings of one case in both frameworks: forward and forward+backward.

Rules (DESIGN.md, Timing): the first call (trace + compile + one run) is timed apart from the
steady state; then warm-up calls; then ``repeats`` calls each timed alone, reported as the median
and the interquartile range. Inputs rotate among a few distinct random arrays (never zeros) so no
cache flatters a repeat; each call waits for its result (``block_until_ready`` for JAX,
``torch.cuda.synchronize()`` for torch on CUDA).

**jaxlin's recommended call path**, the one timed here: split the module once,
``graphdef, state = nnx.split(module)`` (here ``nnx.split(module, nnx.Param, ...)``, so that the
parameters are an argument of their own), and call a ``jax.jit``-compiled pure function

.. code-block:: python

    @jax.jit
    def forward(state, *inputs):
        return nnx.merge(graphdef, state)(*inputs)

and ``jax.jit(jax.grad(loss, argnums=(0, 1)))`` over ``(params, x)`` for forward+backward, with
``loss = sum(output)``.
``nnx.jit`` works too but costs about 280 µs of Python dispatch per call here (it splits and
merges the module's graph on every call), more than these layers take to run.

torch runs eagerly; its forward+backward is ``module(x).sum().backward()`` (the same loss, the sum
of the output, as the JAX side).
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

DEVICES = ("auto", "cpu", "gpu", "tpu")
ROTATE = 3  # distinct input sets cycled through the timed calls


@dataclass(frozen=True)
class Timing:
    """Seconds per call: ``median_s`` over ``repeats`` calls, ``spread_s`` their interquartile range,
    ``compile_s`` the first call (trace, compile and one run) on its own."""

    median_s: float
    spread_s: float
    min_s: float
    max_s: float
    compile_s: float
    repeats: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class Prepared:
    """A call that has run once (compiled, caches filled) and is ready to be timed by :func:`measure`."""

    fn: Callable
    argsets: list[tuple]
    sync: Callable
    compile_s: float
    context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext


def prepare_call(
    fn: Callable, make_args: Callable[[int], Sequence], *, sync: Callable, context=contextlib.nullcontext
) -> Prepared:
    """Make the :data:`ROTATE` input sets and time the first call (trace, compile, one run) alone.

    ``context()`` is entered around every call (e.g. ``jax.enable_x64`` for float64 cases), here and in
    :func:`measure`, so the compiled function is the one that gets timed.
    """
    argsets = [tuple(make_args(i)) for i in range(ROTATE)]
    with context():
        start = time.perf_counter()
        sync(fn(*argsets[0]))
        compile_s = time.perf_counter() - start
    return Prepared(fn, argsets, sync, compile_s, context)


def measure(prepared: Prepared, *, repeats: int = 10, warmup: int = 2) -> Timing:
    """``warmup`` untimed calls, then ``repeats`` calls each timed alone, inputs rotating, with the
    garbage collector off (as :mod:`timeit` does)."""
    if repeats < 1:
        raise ValueError(f"measure: repeats must be at least 1, got {repeats}.")
    fn, argsets, sync = prepared.fn, prepared.argsets, prepared.sync
    samples, collecting = [], gc.isenabled()
    gc.disable()  # as timeit does: a collection of the whole heap is not the function's cost
    try:
        with prepared.context():
            for i in range(warmup):
                sync(fn(*argsets[(i + 1) % ROTATE]))
            for i in range(repeats):
                args = argsets[i % ROTATE]
                start = time.perf_counter()
                sync(fn(*args))
                samples.append(time.perf_counter() - start)
    finally:
        if collecting:
            gc.enable()
    quartiles = statistics.quantiles(samples, n=4) if len(samples) > 1 else [samples[0]] * 3
    return Timing(
        median_s=statistics.median(samples),
        spread_s=quartiles[2] - quartiles[0],
        min_s=min(samples),
        max_s=max(samples),
        compile_s=prepared.compile_s,
        repeats=repeats,
    )


def time_call(
    fn: Callable, make_args: Callable[[int], Sequence], *, sync: Callable, repeats: int = 10, warmup: int = 2
) -> Timing:
    """Time ``fn(*make_args(i))``: first call apart, then warm-up, then ``repeats`` timed calls.

    Inputs rotate over :data:`ROTATE` sets made up front; ``sync(result)`` must block until the result
    exists (``jax.block_until_ready``, a CUDA sync).

    >>> t = time_call(lambda x: x * 2, lambda i: (np.full(4, i + 1.0),), sync=lambda r: r, repeats=5)
    >>> t.repeats, t.min_s <= t.median_s <= t.max_s
    (5, True)
    """
    return measure(prepare_call(fn, make_args, sync=sync), repeats=repeats, warmup=warmup)


def jax_device(device: str = "auto"):
    """The JAX device for ``--device``; ``RuntimeError`` when that platform is not present."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}.")
    return jax.devices()[0] if device == "auto" else jax.devices(device)[0]


def torch_device(device: str = "auto") -> str:
    """``"cuda"`` when the run is on a GPU and torch sees CUDA, else ``"cpu"``."""
    import torch

    platform_ = jax_device(device).platform if device == "auto" else device
    return "cuda" if platform_ == "gpu" and torch.cuda.is_available() else "cpu"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(device: str = "auto") -> dict[str, object]:
    """The machine beside every number: JAX backend and device, torch device, CPU model and cores.

    >>> sorted(device_info())[:3]
    ['cpu_cores', 'cpu_cores_usable', 'cpu_model']
    """
    jdev = jax_device(device)
    info: dict[str, object] = {
        "jax_backend": jdev.platform,
        "jax_device": jdev.device_kind,
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average": list(os.getloadavg())
        if hasattr(os, "getloadavg")
        else None,  # other work on the machine
    }
    try:
        import torch
    except ImportError:
        info["torch_device"] = None
        return info
    tdev = torch_device(device)
    info["torch_device"] = torch.cuda.get_device_name() if tdev == "cuda" else "cpu"
    info["torch_threads"] = torch.get_num_threads()
    return info


def _jax_fns(module: nnx.Module):
    """``forward(state, *inputs)`` and ``grads(params, rest, x, *others)``, jit-compiled."""
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)

    @jax.jit
    def forward(params, rest, *inputs):
        return nnx.merge(graphdef, params, rest)(*inputs)

    def loss(params, x, rest, *others):
        return jnp.sum(nnx.merge(graphdef, params, rest)(x, *others))

    return params, rest, forward, jax.jit(jax.grad(loss, argnums=(0, 1)))


def prepare_jax(
    module: nnx.Module, argsets: Sequence[Sequence[np.ndarray]], *, device, context=contextlib.nullcontext
):
    """Compile and run once a jaxlin module's forward and forward+backward on ``device``.

    Shape:
        each of ``argsets`` holds the module's inputs (NumPy, jaxlin layout, working dtype).
    """
    with context():
        params, rest, forward, grads = _jax_fns(module)
        params, rest = jax.device_put((params, rest), device)
        placed = [tuple(jax.device_put(a, device) for a in args) for args in argsets]
    pick, sync = placed.__getitem__, jax.block_until_ready
    return {
        "forward": prepare_call(lambda *a: forward(params, rest, *a), pick, sync=sync, context=context),
        "forward_backward": prepare_call(
            lambda x, *o: grads(params, x, rest, *o), pick, sync=sync, context=context
        ),
    }


def prepare_torch(module, argsets: Sequence[Sequence[np.ndarray]], *, device: str):
    """Run once a torch module's forward and forward+backward (eager) on ``"cpu"`` or ``"cuda"``.

    Shape:
        each of ``argsets`` holds the module's inputs in torch's layout (NumPy, working dtype).
    """
    import torch

    from crosscheck.weights import torch_of_numpy

    module = module.to(device)
    placed = [tuple(torch_of_numpy(np.ascontiguousarray(a)).to(device) for a in args) for args in argsets]
    sync = (lambda _: torch.cuda.synchronize()) if device == "cuda" else (lambda _: None)

    def forward(*inputs):
        with torch.no_grad():
            return module(*inputs)

    def forward_backward(x, *others):
        module.zero_grad(set_to_none=True)
        x = x.detach().requires_grad_(True)
        module(x, *others).sum().backward()
        return x.grad

    pick = placed.__getitem__
    return {
        "forward": prepare_call(forward, pick, sync=sync),
        "forward_backward": prepare_call(forward_backward, pick, sync=sync),
    }


def prepare_case(
    case, jax_module: nnx.Module, torch_module, dtype: str, *, device: str = "auto", seed: int = 0
):
    """``{"jax": {"forward": Prepared, "forward_backward": Prepared}, "torch": {...}}`` for one case.

    Inputs are ``case.make_inputs`` with seeds ``seed+1 ... seed+ROTATE`` cast to ``dtype``. JAX runs
    with 64-bit types off unless ``dtype`` is float64 (what a user's program has by default).
    """
    from crosscheck.evaluate import cast_inputs

    np_dtype = np.dtype(jnp.dtype(dtype))
    argsets = [
        cast_inputs(case.make_inputs(np.random.default_rng(seed + 1 + i)), np_dtype) for i in range(ROTATE)
    ]
    x64 = (lambda: jax.enable_x64(True)) if dtype == "float64" else contextlib.nullcontext
    torch_args = [case.torch_inputs(args) for args in argsets]
    return {
        "jax": prepare_jax(jax_module, argsets, device=jax_device(device), context=x64),
        "torch": prepare_torch(torch_module, torch_args, device=torch_device(device)),
    }


def measure_case(prepared: dict, *, repeats: int = 10, warmup: int = 2) -> dict[str, dict[str, Timing]]:
    """:func:`measure` every call of :func:`prepare_case`'s result, same nesting."""
    return {
        framework: {kind: measure(p, repeats=repeats, warmup=warmup) for kind, p in calls.items()}
        for framework, calls in prepared.items()
    }


def time_case(
    case, jax_module: nnx.Module, torch_module, dtype: str, *, device="auto", repeats=10, warmup=2, seed=0
) -> dict[str, dict[str, Timing]]:
    """:func:`prepare_case` then :func:`measure_case`: forward and forward+backward in both frameworks.

    >>> import jax.numpy as jnp, torch
    >>> from crosscheck.cases import all_cases
    >>> case = all_cases()["linear"]
    >>> ours, theirs = case.make_jax(nnx.Rngs(0), jnp.float32), case.make_torch(torch.float32)
    >>> t = time_case(case, ours, theirs, "float32")
    >>> sorted(t["jax"]), t["torch"]["forward"].repeats
    (['forward', 'forward_backward'], 10)
    """
    prepared = prepare_case(case, jax_module, torch_module, dtype, device=device, seed=seed)
    return measure_case(prepared, repeats=repeats, warmup=warmup)
