"""Which configurations the study runs (the full grid, or ``--quick``), and running them.

>>> steps = plan(quick=True, device="cpu", compiled=False)
>>> steps[0].description, len(steps) > 5
('GEMM peak', True)
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from dataclasses import dataclass

from crosscheck.runtime.timing import TIME_BUDGET_S
from crosscheck.study import bfloat16, configs, names, roofline, sharded
from crosscheck.study.block import block
from crosscheck.study.engine import Config, run_config
from crosscheck.study.per_head import per_head

MEMORY_BYTES = 256 * 2**20  # a streaming read at least this large comes from main memory
QUICK_BUDGET_S = 0.15  # --quick: about this long timing each call (the full study: TIME_BUDGET_S)


@dataclass(frozen=True)
class Step:
    """One configuration to build and run: what the progress bar shows, and how to build it."""

    description: str
    study: str
    build: Callable[[], Config]


def plan(quick: bool, device: str, *, compiled: bool, mesh_devices: int = 0) -> list[Step]:
    """Every configuration of the study, in the order it runs (the GEMM peak first); with
    ``mesh_devices``, the heads-sharded per-head layer over 1, 2, 4, ... up to that many devices."""
    grid = configs.QUICK if quick else configs.FULL
    steps = [
        Step("GEMM peak", names.PEAK, lambda shape=shape: configs.peak(*shape))
        for shape in grid["peak_shapes"]
    ]
    steps += _bandwidth_steps(quick, device)
    for leading in grid["leading"]:
        for heads in grid["heads"]:
            for size in grid["sizes"]:
                target = leading == (32, 64) and (heads, size) in configs.TARGET_SHAPES
                build = functools.partial(
                    per_head, heads, size, leading, device, compiled=compiled and target
                )
                steps.append(Step(f"per-head h{heads} {size} {leading}", names.PER_HEAD, build))
    for heads, size in configs.TARGET_SHAPES if not quick else ((4, 32),):
        build = functools.partial(
            block, heads, size, (32, 64) if not quick else (4, 16), device, compiled=compiled
        )
        steps.append(Step(f"block h{heads} {size}", names.BLOCK, build))
    steps += _bfloat16_steps(quick, device)
    seed_shape = (128, 8, 256, 32)  # the 1x1-convolution question's shape
    for shape in [seed_shape] if quick else [seed_shape, (64, 1024, 256, 256)]:
        steps.append(
            Step(f"pointwise {shape}", names.POINTWISE, lambda sh=shape: configs.pointwise(*sh, device))
        )
    width = 64 if quick else 512
    for length in grid["pooled_lengths"]:
        build = functools.partial(configs.pooled, 16, length, width, device)
        steps.append(Step(f"pooled T={length}", names.POOLED, build))
    for shape in [(128, 256, 256)] if quick else [(128, 768, 768), (4096, 1024, 1024), (1, 768, 768)]:
        steps.append(
            Step(f"invariant {shape}", names.INVARIANT, lambda sh=shape: configs.invariant(*sh, device))
        )
    for heads, size, leading in [(4, 32, (4, 16))] if quick else [(16, 64, (32, 64)), (8, 64, (32, 64))]:
        build = lambda h=heads, s=size, lead=leading: configs.call_path(h, s, lead, device)  # noqa: E731
        steps.append(Step(f"call path h{heads}", names.CALL_PATH, build))
    rows = 4096 if quick else 65536
    steps.append(Step(f"bias ({rows}, 256)", names.BIAS, lambda: configs.bias(rows, 256, device)))
    for rows in configs.QUICK_ROWS if quick else configs.ROW_SWEEP:
        build = functools.partial(configs.linear_rows, rows, 256, 256, device)
        steps.append(Step(f"Linear rows {rows}", names.LINEAR_ROWS, build))
    if mesh_devices:
        shapes = [(16, 64, (4, 16))] if quick else [(16, 128, (32, 64)), (8, 64, (32, 64))]
        for heads, size, leading in shapes:
            build = functools.partial(sharded.sharded_per_head, heads, size, leading, mesh_devices)
            steps.append(Step(f"sharded h{heads} {size}", names.SHARDED, build))
    return steps


def _bfloat16_steps(quick: bool, device: str) -> list[Step]:
    """The bfloat16 rows (:mod:`crosscheck.study.bfloat16`): PerHeadLinear at each target shape, and the
    block's projection ``Linear(size, heads·size)`` on the same rows; ``quick``: one small shape."""
    leading = (4, 16) if quick else (32, 64)
    rows = leading[0] * leading[1]
    steps = []
    for heads, size in ((4, 32),) if quick else configs.TARGET_SHAPES:
        build = functools.partial(bfloat16.per_head_bfloat16, heads, size, leading, device)
        steps.append(Step(f"bfloat16 per-head h{heads} {size}", names.BF16_PER_HEAD, build))
        build = functools.partial(bfloat16.linear_bfloat16, rows, size, heads * size, device)
        steps.append(Step(f"bfloat16 Linear {size}→{heads * size}", names.BF16_LINEAR, build))
    return steps


def _bandwidth_steps(quick: bool, device: str) -> list[Step]:
    """The streaming reads that measure memory bandwidth: main memory, and (on CPU, where the cache
    size is known) a read of half the last-level cache."""
    sizes = [("memory", MEMORY_BYTES // (4 if quick else 1))]
    cache = roofline.last_level_cache_bytes() if device == "cpu" else None
    if cache:
        sizes.append(("cache", cache // 2))
    return [
        Step(f"bandwidth ({level})", names.BANDWIDTH, functools.partial(configs.bandwidth, n_bytes, level))
        for level, n_bytes in sizes
    ]


def run_plan(
    steps: list[Step],
    *,
    torch_device: str,
    advance=None,
    repeats: int | None = None,
    budget_s: float = TIME_BUDGET_S,
) -> list[dict]:
    """Build and run every step, one configuration's arrays freed before the next is built; a
    configuration that cannot be built is one error record. Each call is timed for ``repeats`` rounds,
    or for about ``budget_s`` (``--quick``: :data:`QUICK_BUDGET_S`). Each timed record gets its GFLOP/s,
    GB/s and fraction of this run's roofline (:func:`crosscheck.study.roofline.annotate`)."""
    records = []
    for step in steps:
        try:
            records += run_config(step.build(), torch_device=torch_device, repeats=repeats, budget_s=budget_s)
        except Exception as error:  # one configuration that cannot be built does not stop the study
            records.append(
                {
                    "study": step.study,
                    "config": step.description,
                    "impl": "–",
                    "error": f"{type(error).__name__}: {error}",
                }
            )
        gc.collect()  # this configuration's arrays, some held by reference cycles, before the next is built
        if advance is not None:
            advance()
    cache = roofline.last_level_cache_bytes() if torch_device == "cpu" else None
    return roofline.annotate(records, cache_bytes=cache)
