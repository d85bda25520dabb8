"""The full study's kernel-parity rows only, in ~2 minutes instead of the whole study's (over 25
minutes here: two runs had not finished after 21–26). Before implementations shared their input sets,
the whole study also needed about 20 GB at per-head h32 1024->1024 with 2048 rows; that configuration
now peaks at ~9 GB.

Usage:
    python docs/scripts/kernel_parity_rows.py DIR

Runs the GEMM peak, the per-head configurations at the three target shapes (2048 rows, torch.compile
included) and the three blocks with the study's own plan, engine, targets and outputs
(``crosscheck study``'s code: nothing here times anything itself), prints the targets and every row's
kernel parity, and writes DIR/study.{json,md,csv} and the plots.
"""

from __future__ import annotations

import sys
import time

from crosscheck.cli import common
from crosscheck.study import configs, names, outputs, parity, plan, summary, targets


def kernel_parity_steps() -> list[plan.Step]:
    """The full plan's GEMM peak, per-head target shapes and blocks."""
    wanted = {f"per-head h{heads} {size} (32, 64)" for heads, size in configs.TARGET_SHAPES}
    steps = plan.plan(False, "cpu", compiled=True)
    return [s for s in steps if s.study in (names.PEAK, names.BLOCK) or s.description in wanted]


def main(out: str) -> None:
    steps = kernel_parity_steps()
    print([step.description for step in steps])
    start = time.time()
    with common.session("pinned", "cpu") as session:
        records = plan.run_plan(steps, torch_device="cpu")
    env = session.environment(["python", "docs/scripts/kernel_parity_rows.py", out])
    goals = targets.evaluate(targets.TARGETS, records)
    print("\n".join(summary.terminal_lines(goals, quick=False)))
    print("\n".join(parity.terminal_lines(records)))
    print(outputs.write_outputs(out, env, records, goals))
    print(f"{time.time() - start:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1])
