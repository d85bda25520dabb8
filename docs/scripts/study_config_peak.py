"""The memory one configuration of the full study needs, built and run alone.

Usage:
    python docs/scripts/study_config_peak.py ["per-head h32 1024 (32, 64)"]

Builds the named step of ``crosscheck study``'s full plan on the CPU (its description as the progress
bar shows it; default the largest per-head one), runs it with the study's engine
(:func:`crosscheck.study.engine.run_config`, one timed round after the warm-up, under the study's
session) and prints each record's verdict and the process's peak resident memory (``VmHWM`` from
``/proc/self/status``, Linux) after the imports, after building the configuration and after running it.
"""

from __future__ import annotations

import sys
import time

from crosscheck.cli import common
from crosscheck.study import engine, plan


def peak_gb() -> str:
    """``VmHWM`` and ``VmRSS`` of this process, in GB (10^9 bytes)."""
    with open("/proc/self/status") as status:
        kb = {
            line.split(":")[0]: int(line.split()[1]) for line in status if line.startswith(("VmHWM", "VmRSS"))
        }
    return f"peak {kb['VmHWM'] / 1e6:.2f} GB, now {kb['VmRSS'] / 1e6:.2f} GB"


def main(description: str) -> None:
    print(f"after imports: {peak_gb()}")
    (step,) = [s for s in plan.plan(False, "cpu", compiled=True) if s.description == description]
    start = time.time()
    with common.session("pinned", "cpu"):
        config = step.build()
        print(f"built {config.label} ({len(config.impls)} implementations): {peak_gb()}")
        records = engine.run_config(config, torch_device="cpu", repeats=1)
    for record in records:
        print(f"  {record['impl']}: equal={record.get('equal')} {record.get('error', '')}")
    print(f"after run_config: {peak_gb()}, {time.time() - start:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "per-head h32 1024 (32, 64)")
