"""Which configurations the study runs (the full grid, or ``--quick``), and running them.

>>> steps = plan(quick=True, device="cpu", compiled=False)
>>> steps[0].description, len(steps) > 5
('GEMM peak', True)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from crosscheck.study import configs, names, sharded
from crosscheck.study.engine import Config, run_config
from crosscheck.study.per_head import per_head


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
    steps = [Step("GEMM peak", names.PEAK, lambda: configs.peak(grid["peak_n"]))]
    for leading in grid["leading"]:
        for heads in grid["heads"]:
            for size in grid["sizes"]:
                target = leading == (32, 64) and (heads, size) in configs.TARGET_SHAPES
                build = functools.partial(
                    per_head, heads, size, leading, device, compiled=compiled and target
                )
                steps.append(Step(f"per-head h{heads} {size} {leading}", names.PER_HEAD, build))
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
    if mesh_devices:
        shapes = [(16, 64, (4, 16))] if quick else [(16, 128, (32, 64)), (8, 64, (32, 64))]
        for heads, size, leading in shapes:
            build = functools.partial(sharded.sharded_per_head, heads, size, leading, mesh_devices)
            steps.append(Step(f"sharded h{heads} {size}", names.SHARDED, build))
    return steps


def run_plan(steps: list[Step], *, torch_device: str, advance=None, repeats: int | None = None) -> list[dict]:
    """Build and run every step; a configuration that cannot be built is one error record. Each
    timed record gets ``peak_fraction``: its GFLOP/s over the best GEMM of this run."""
    records = []
    for step in steps:
        try:
            records += run_config(step.build(), torch_device=torch_device, repeats=repeats)
        except Exception as error:  # one configuration that cannot be built does not stop the study
            records.append(
                {
                    "study": step.study,
                    "config": step.description,
                    "impl": "–",
                    "error": f"{type(error).__name__}: {error}",
                }
            )
        if advance is not None:
            advance()
    peak = max((r.get("gflops", 0) for r in records if r.get("study") == names.PEAK), default=0) or None
    for record in records:
        if peak and "gflops" in record:
            record["peak_fraction"] = record["gflops"] / peak
    return records
