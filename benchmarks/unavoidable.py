"""The work a check cannot avoid: one forward+backward of each model in the working dtype (float32) and
in float64, each timed cold (the first call: JAX traces and compiles) and warm (the median of further
calls). A loss ``sum(output · cotangent)`` with a fixed random cotangent; every parameter's gradient.
The forward alone is timed too (``forward_*``): what a check without gradients cannot avoid.

The float64 passes run with one model in memory at a time (the other freed, the torch model rebuilt
from its seed afterwards), so that at 1 B parameters the float64 weights and gradients of one model
(4× its float32 bytes) are all that is held besides the runtime.

Moving each model's weights to float64 (torch's ``model.to(torch.float64)``, JAX's cast of every leaf in
one jitted program, compiling included) is timed apart, as ``widen_s`` of each float64 pass and in all:
the passes' ``cold_s`` leave it out, as they always have. A check widens both models too (torch's in
place, JAX's inside its float64 program), so ``benchmarks.report`` sets a job against both: the plain
ratio, and the ratio with the widening, which goal 3 is judged on (docs/scale.md).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from benchmarks.memory import peak_bytes, reset_peak


def _timed(step: Callable[[], None], repeats: int) -> dict[str, float | None]:
    start = time.perf_counter()
    step()
    cold = time.perf_counter() - start
    warm = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        warm.append(time.perf_counter() - start)
    return {"cold_s": cold, "warm_s": statistics.median(warm) if warm else None}


def _forward(timing: dict) -> dict:
    return {f"forward_{key}": value for key, value in timing.items()}


def _cotangent(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(1).standard_normal(shape)


def torch_pass(model, torch_inputs: tuple, dtype, repeats: int) -> dict:
    """Forward+backward of the torch model in ``dtype`` (cast in place, cast back to float32 after)."""
    import torch

    start = time.perf_counter()
    model.to(dtype)
    widen = time.perf_counter() - start
    args = [torch.from_numpy(np.asarray(a)) for a in torch_inputs]

    def step() -> None:
        for parameter in model.parameters():
            parameter.grad = None
        output = model(*args)
        output = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]
        output.backward(torch.from_numpy(_cotangent(tuple(output.shape))).to(output.dtype))

    def forward() -> None:
        with torch.no_grad():
            model(*args)

    timing = _timed(step, repeats) | _forward(_timed(forward, repeats))
    if dtype == torch.float64:
        timing["widen_s"] = widen
    for parameter in model.parameters():
        parameter.grad = None
    model.to(torch.float32)
    return timing


def jax_pass(graphdef, params, rest, inputs: tuple, repeats: int) -> dict:
    """Forward+backward of the port merged from ``(graphdef, params, rest)``, in ``params``' dtype."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    shape = jax.eval_shape(lambda p, r: nnx.merge(graphdef, p, r)(*inputs), params, rest).shape
    dtype = jax.tree.leaves(params)[0].dtype
    cotangent = jnp.asarray(_cotangent(shape), dtype)

    @jax.jit
    def gradient(params, rest, inputs):
        return jax.grad(lambda p: jnp.vdot(nnx.merge(graphdef, p, rest)(*inputs), cotangent))(params)

    forward = jax.jit(lambda params, rest, inputs: nnx.merge(graphdef, params, rest)(*inputs))
    timing = _timed(lambda: jax.block_until_ready(gradient(params, rest, inputs)), repeats)
    return timing | _forward(_timed(lambda: jax.block_until_ready(forward(params, rest, inputs)), repeats))


def measure(pair: dict, rebuild_torch: Callable[[], object], repeats: int) -> dict:
    """Time the four passes; ``pair`` (``port``, ``reference``, ``inputs``, ``torch_inputs``) is emptied
    of its models on the way (each freed before the other's float64 pass)."""
    import jax
    import torch
    from flax import nnx

    reset_peak()
    passes = {"torch_float32": torch_pass(pair["reference"], pair["torch_inputs"], torch.float32, repeats)}
    graphdef, params, rest = nnx.split(pair.pop("port"), nnx.Param, ...)
    passes["jax_float32"] = jax_pass(graphdef, params, rest, pair["inputs"], repeats)
    del pair["reference"]
    gc.collect()
    with jax.enable_x64(True):
        # one program for every leaf, compiled and run: 0.06-0.15 s less than each leaf's astype at 124 M
        wide = jax.jit(partial(jax.tree.map, lambda a: a.astype("float64") if a.dtype == "float32" else a))
        start = time.perf_counter()
        params, rest = jax.block_until_ready(wide((params, rest)))
        widen = time.perf_counter() - start
        passes["jax_float64"] = jax_pass(graphdef, params, rest, pair["inputs"], repeats) | {"widen_s": widen}
    del params, rest
    gc.collect()
    reference = rebuild_torch()
    passes["torch_float64"] = torch_pass(reference, pair["torch_inputs"], torch.float64, repeats)
    del reference
    gc.collect()
    total = {}
    for key in ("cold_s", "warm_s", "forward_cold_s", "forward_warm_s"):
        times = [p[key] for p in passes.values()]
        total[key] = sum(times) if None not in times else None
    total["widen_s"] = sum(p.get("widen_s", 0.0) for p in passes.values())
    return {"passes": passes} | total | {"peak_bytes": peak_bytes()}
