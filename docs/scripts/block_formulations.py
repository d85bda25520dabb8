"""The seed's per-head block, every JAX formulation tried, against torch eager: time and cores busy.

``x (2048, size) -> Linear(size, heads·size) -> split heads -> heads size→size linears``, at the
study's three target shapes. Each formulation is checked against torch (float32, within 1e-3 of
the float64 result's scale) and then timed interleaved with the others by crosscheck's timing
engine; "cores busy" is the process CPU time over the wall time of 20 back-to-back calls (2.0 =
both cores of this machine the whole time). A second table times the block's pieces alone: the
two GEMMs, and the copies XLA adds to reach the batched dot's heads-major layout.

Usage (from the repository root, nothing else running):
    PYTHONPATH=. python docs/scripts/block_formulations.py
    XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= PYTHONPATH=. python docs/scripts/block_formulations.py
    TORCH_THREADS=1 PYTHONPATH=. python docs/scripts/block_formulations.py
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=4294967295 \
        PYTHONPATH=. python docs/scripts/block_formulations.py   # glibc keeps freed memory: no faults
"""

from __future__ import annotations

import os
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch

from crosscheck.runtime.timing import measure, prepare

ROWS = 2048
SHAPES = ((8, 64), (16, 128), (4, 512))  # (heads, size)


def jax_formulations(w1, b1, w2, b2, heads: int, size: int) -> dict:
    """Every way tried to write the block in JAX (each under ``jax.jit``)."""

    def per_head_einsum(y):  # jaxlin's "einsum": heads-major batched dot
        z = jnp.einsum("hri,hio->hro", jnp.moveaxis(y, 1, 0), w2) + b2[:, None]
        return jnp.moveaxis(z, 0, 1)

    def default(x):
        return per_head_einsum((x @ w1 + b1).reshape(-1, heads, size))

    def loop(x):  # jaxlin's "loop" after the projection
        y = (x @ w1 + b1).reshape(-1, heads, size)
        return jnp.stack([y[:, h] @ w2[h] + b2[h] for h in range(heads)], axis=1)

    def loop_from_input(x):  # each head's two linears from x: no (rows, heads, size) intermediate
        cols = [slice(h * size, (h + 1) * size) for h in range(heads)]
        return jnp.stack([(x @ w1[:, c] + b1[c]) @ w2[h] + b2[h] for h, c in enumerate(cols)], axis=1)

    def heads_major_projection(x):  # the first dot written to produce heads-major output
        y = jnp.einsum("ri,ihd->hrd", x, w1.reshape(size, heads, size)) + b1.reshape(heads, 1, size)
        return jnp.moveaxis(jnp.einsum("hri,hio->hro", y, w2) + b2[:, None], 0, 1)

    def split_rows(x, parts=2):  # independent halves XLA may run side by side
        return jnp.concatenate([default(part) for part in jnp.split(x, parts)], axis=0)

    def vmap_heads(x):
        y = (x @ w1 + b1).reshape(-1, heads, size)
        return jax.vmap(lambda yh, k, b: yh @ k + b, in_axes=(1, 0, 0), out_axes=1)(y, w2, b2)

    found = {
        "default (einsum)": default,
        "loop": loop,
        "loop from the input": loop_from_input,
        "heads-major projection": heads_major_projection,
        "rows split in 2": split_rows,
        "rows split in 4": lambda x: split_rows(x, 4),
        "vmap": vmap_heads,
    }
    return {name: jax.jit(fn) for name, fn in found.items()}


def torch_block(w1, b1, w2, b2, heads: int, size: int):
    """torch_ref's block: ``F.linear``, a view into heads, ``torch.baddbmm`` on the strided view."""
    weight, bias = torch.from_numpy(np.ascontiguousarray(w1.T)), torch.from_numpy(b1)
    kernel, head_bias = torch.from_numpy(w2), torch.from_numpy(b2)

    def block(x):
        with torch.no_grad():
            y = torch.nn.functional.linear(x, weight, bias).view(-1, heads, size).transpose(0, 1)
            return torch.baddbmm(head_bias[:, None], y, kernel).transpose(0, 1)

    return block


def cores_busy(fn, arg, sync, calls: int = 20) -> tuple[float, float]:
    """Process CPU time over wall time across ``calls`` back-to-back calls, and the minor page faults
    per call (a fault is a fresh page touched for the first time: memory the allocator handed back
    to the system and took again)."""
    sync(fn(arg))
    usage, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(calls):
        sync(fn(arg))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    busy = (after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime) / wall
    return busy, (after.ru_minflt - usage.ru_minflt) / calls


def pieces(w1, b1, w2, b2, heads: int, size: int, rng) -> dict:
    """The block's pieces alone, each jitted: the projection GEMM, the copy to heads-major (with the
    projection's bias, as XLA fuses it), the batched GEMM on heads-major data, the copy back (with the
    heads' bias); and torch's two GEMMs."""
    y = rng.standard_normal((ROWS, heads, size)).astype(np.float32)
    y_heads_major = np.ascontiguousarray(np.moveaxis(y, 1, 0))
    x = rng.standard_normal((ROWS, size)).astype(np.float32)
    kernel, head_bias = torch.from_numpy(w2), torch.from_numpy(b2)
    weight, bias = torch.from_numpy(np.ascontiguousarray(w1.T)), torch.from_numpy(b1)
    t_y = torch.from_numpy(y).transpose(0, 1)
    return {
        "jax: projection GEMM": (jax.jit(lambda a: a @ w1), jnp.asarray(x), "jax"),
        "jax: copy to heads-major (+ bias)": (
            jax.jit(lambda a: jnp.moveaxis(a + b1.reshape(heads, size), 1, 0)),
            jnp.asarray(y),
            "jax",
        ),
        "jax: batched GEMM (heads-major)": (
            jax.jit(lambda a: jnp.einsum("hri,hio->hro", a, w2)),
            jnp.asarray(y_heads_major),
            "jax",
        ),
        "jax: copy back (+ bias)": (
            jax.jit(lambda a: jnp.moveaxis(a + b2[:, None], 0, 1)),
            jnp.asarray(y_heads_major),
            "jax",
        ),
        "torch: projection GEMM (+ bias)": (
            lambda a: torch.nn.functional.linear(a, weight, bias),
            torch.from_numpy(x),
            "torch",
        ),
        "torch: baddbmm on the strided view": (
            lambda a: torch.baddbmm(head_bias[:, None], a, kernel),
            t_y,
            "torch",
        ),
    }


def run(heads: int, size: int) -> None:
    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((size, heads * size)) / np.sqrt(size)).astype(np.float32)
    b1 = rng.standard_normal(heads * size).astype(np.float32)
    w2 = (rng.standard_normal((heads, size, size)) / np.sqrt(size)).astype(np.float32)
    b2 = rng.standard_normal((heads, size)).astype(np.float32)
    xs = [rng.standard_normal((ROWS, size)).astype(np.float32) for _ in range(3)]
    theirs = torch_block(w1, b1, w2, b2, heads, size)
    truth = np.asarray(theirs(torch.from_numpy(xs[0])), np.float64)
    scale = np.abs(truth).max()
    prepared, busy = {}, {}
    for name, fn in jax_formulations(*map(jnp.asarray, (w1, b1, w2, b2)), heads, size).items():
        err = np.abs(np.asarray(fn(jnp.asarray(xs[0])), np.float64) - truth).max()
        assert err <= 1e-5 * scale * size, (name, err)
        prepared[name] = prepare(fn, lambda i: (jnp.asarray(xs[i]),), sync=jax.block_until_ready, group="jax")
        busy[name] = cores_busy(fn, jnp.asarray(xs[1]), jax.block_until_ready)
    prepared["torch eager"] = prepare(
        theirs, lambda i: (torch.from_numpy(xs[i]),), sync=lambda r: r, group="torch"
    )
    busy["torch eager"] = cores_busy(theirs, torch.from_numpy(xs[1]), lambda r: r)
    timings = measure(prepared, repeats=30)
    base = timings["torch eager"].median_s
    print(f"\n## h{heads} {size}→{heads}·{size}→{size}, {ROWS} rows\n")
    print("| formulation | median | / torch eager | cores busy | page faults / call |\n|---|---|---|---|---|")
    for name, timing in timings.items():
        cores, faults = busy[name]
        median = timing.median_s
        print(f"| {name} | {median * 1e3:.2f} ms | {median / base:.2f} | {cores:.2f} | {faults:.0f} |")
    parts = pieces(w1, b1, w2, b2, heads, size, rng)
    prepared = {
        name: prepare(
            fn, lambda i, a=arg: (a,), sync=jax.block_until_ready if fw == "jax" else (lambda r: r), group=fw
        )
        for name, (fn, arg, fw) in parts.items()
    }
    with torch.no_grad():
        timings = measure(prepared, repeats=30)
    print("\n| piece | median |\n|---|---|")
    for name, timing in timings.items():
        print(f"| {name} | {timing.median_s * 1e3:.2f} ms |")


def main() -> None:
    if os.environ.get("TORCH_THREADS"):
        torch.set_num_threads(int(os.environ["TORCH_THREADS"]))
    print(
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '(unset)')} · "
        f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')} · "
        f"torch threads {torch.get_num_threads()} · "
        f"jax {jax.__version__} · torch {torch.__version__}"
    )
    for heads, size in SHAPES:
        run(heads, size)


if __name__ == "__main__":
    main()
