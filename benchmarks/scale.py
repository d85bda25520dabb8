"""What a check and a locate cost against model size: each job at each named size in its own process,
its wall time beside the unavoidable work measured in the same process, its peak resident memory beside
one model's float32 weights; the rows as JSON lines, a Markdown table and a log–log plot.

    python -m benchmarks.scale                                # every size up to BERT-base, the four jobs
    python -m benchmarks.scale --sizes bert-large decoder-1b  # the big ones (added to the same files)
    python -m benchmarks.scale --quick                        # the tiny sizes, one warm repeat

A job that dies (killed for memory, a timeout, an exception, or stopped because the machine's available
memory fell below ``--min-available-gb``) is a row with its reason, and the next job runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.memory import available_bytes
from benchmarks.worker import JOBS

ROOT = Path(__file__).resolve().parents[1]
BIG = ("bert-large", "decoder-1b")
"""Sizes run only when named: they need most of a 24 GB machine."""
TINY = ("bert-tiny", "decoder-tiny")
DEFAULT_JOBS = JOBS[:4]


def machine() -> dict:
    """The CPU model, cores, memory and versions every row records."""
    cpu = platform.processor() or platform.machine()
    fields: dict[str, str] = {}
    try:  # the first processor's fields: a VM may name every AMD EPYC generation alike ("AMD EPYC")
        for line in Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        pass
    cpu = fields.get("model name", cpu)
    memory = None
    try:
        total = [
            line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
        ]
        memory = round(int(total[0].split()[1]) * 1024 / 2**30, 1)
    except (OSError, IndexError):
        pass
    from importlib import metadata

    versions = {name: metadata.version(name) for name in ("jax", "flax", "torch", "transformers", "numpy")}
    return {
        "cpu": cpu,
        "cpu_family": fields.get("cpu family"),
        "cpu_model": fields.get("model"),
        "avx512": "avx512f" in fields.get("flags", "").split(),
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "python": platform.python_version(),
    } | {"versions": versions}


def slug(info: dict) -> str:
    """A file name for the machine: ``amd-epyc-family26-model2-2cores`` (the family and model where
    known: one model name covers several CPU generations).

    >>> slug({"cpu": "AMD EPYC", "cpu_family": "26", "cpu_model": "2", "cores": 2})
    'amd-epyc-family26-model2-2cores'
    >>> slug({"cpu": "Intel(R) Xeon(R) Platinum", "cores": 2})
    'intel-r-xeon-r-platinum-2cores'
    """
    words = "".join(c if c.isalnum() else "-" for c in info["cpu"].lower()).split("-")
    generation = [f"{name}{info[key]}" for name, key in (("family", "cpu_family"), ("model", "cpu_model"))
                  if info.get(key)]  # fmt: skip
    return "-".join([w for w in words if w] + generation + [f"{info['cores']}cores"])


MEASURED = ["crosscheck", "jaxlin", "torch_ref", "layer_rules", "examples"]
"""The code a row measures (``benchmarks/`` itself is the ruler, not the thing measured)."""


def git_commit() -> dict[str, str | None]:
    """``git_commit``: the checkout's commit; ``code_commit``: the last commit that changed the measured
    code, with ``+dirty`` when it has changes not committed."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head, code = git("rev-parse", "HEAD"), git("log", "-1", "--format=%H", "--", *MEASURED)
    changed = git("status", "--porcelain", "--untracked-files=no", "--", *MEASURED)
    return {"git_commit": head or None, "code_commit": (code + ("+dirty" if changed else "")) or None}


def _reason(code: int | None, stopped: str | None, log: Path) -> str:
    if stopped:
        return stopped
    tail = (
        [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
        if log.exists()
        else []
    )
    if code is not None and code < 0:
        name = "SIGKILL (out of memory?)" if code == -9 else f"signal {-code}"
        return f"killed by {name}" + (f"; last line: {tail[0][:200]}" if tail else "")
    return f"exit {code}" + (f": {tail[0][:200]}" if tail else "")


def _resident(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            line = next(line for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return None
    return int(line.split()[1]) * 1024


def _wait_for_memory(wanted: float, patience: float) -> None:
    """Wait (up to ``patience`` seconds) until the machine has ``wanted`` bytes available: other work may
    be holding it for a while; a job started anyway would be stopped at once."""
    deadline = time.monotonic() + patience
    while (available_bytes() or wanted) < wanted and time.monotonic() < deadline:
        time.sleep(5)


def run_one(size: str, job: str, *, repeats: int, timeout: float, min_available: float, logs: Path) -> dict:
    """One job in its own process, watched: killed past ``timeout`` seconds or when the machine's
    available memory falls below ``min_available`` bytes. The worker's row, with ``status`` and, when
    the process did not finish, ``reason``."""
    result, log = logs / f"{size}-{job}.json", logs / f"{size}-{job}.log"
    command = [sys.executable, "-m", "benchmarks.worker", size, job, str(result), "--repeats", str(repeats)]
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    }
    _wait_for_memory(2 * min_available + 1e9, timeout)
    start, stopped = time.monotonic(), None
    with open(log, "w") as err:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=err, stderr=subprocess.STDOUT)
        while process.poll() is None:
            time.sleep(0.25)
            available = available_bytes()
            if time.monotonic() - start > timeout:
                stopped = f"stopped after the {timeout:.0f} s timeout"
            elif available is not None and available < min_available:
                held = _resident(process.pid)
                stopped = f"stopped: the machine's available memory fell to {available / 1e9:.2f} GB" + (
                    f" while this job held {held / 1e9:.2f} GB" if held else ""
                )
            if stopped:
                process.kill()
                process.wait()
    row = json.loads(result.read_text()) if result.exists() else {"size": size, "job": job}
    row.setdefault("family", size.split("-")[0])
    if process.returncode == 0:
        return row | {"status": "ok"}
    finished_job = "wall_s" in row or (job == "unavoidable" and "build_s" in row)
    phase = "in the unavoidable work" if finished_job else "in the build or the job"
    reason = f"{phase}: {_reason(process.returncode, stopped, log)}"
    return row | {"status": "partial" if finished_job else "failed", "reason": reason}


def write(rows_path: Path, new: list[dict], title: str) -> list[dict]:
    """Merge ``new`` into the JSON-lines file (a later row replaces an earlier one of the same size and
    job), then rewrite the Markdown table and the plot beside it; the merged rows."""
    from benchmarks.report import load, table

    with open(rows_path, "a") as out:
        for row in new:
            out.write(json.dumps(row) + "\n")
    rows = load(rows_path)
    rows_path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    rows_path.with_suffix(".md").write_text(table(rows))
    try:
        from benchmarks.plot import plot
    except ImportError:
        return rows
    try:
        plot(rows, rows_path.with_suffix(".png"), title)
    except ImportError as missing:  # matplotlib: the plot extra
        print(f"no plot: {missing}", file=sys.stderr)
    return rows


def parse(argv: list[str] | None):
    from benchmarks.sizes import SIZES

    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        nargs="+",
        choices=sorted(SIZES),
        metavar="SIZE",
        help=f"of {', '.join(SIZES)} (default: all but {', '.join(BIG)})",
    )
    parser.add_argument(
        "--jobs",
        nargs="+",
        choices=JOBS,
        default=list(DEFAULT_JOBS),
        help=f"of {', '.join(JOBS)} (default: the first four)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"one warm repeat of the unavoidable work; sizes {' and '.join(TINY)} unless --sizes",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="warm repeats of each unavoidable pass (median)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "scale")
    parser.add_argument("--machine", help="the results' file name (default: from the CPU model and cores)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per job before it is stopped")
    parser.add_argument(
        "--min-available-gb",
        type=float,
        default=1.0,
        help="stop a job when the machine's available memory falls below this",
    )
    parser.add_argument("--fresh", action="store_true", help="start the results file afresh")
    parser.add_argument("--report-only", action="store_true", help="rewrite the table and plot; run nothing")
    return parser.parse_args(argv)  # fmt: skip


def main(argv: list[str] | None = None) -> list[dict]:
    """Run every selected job at every selected size; print and write the rows after each."""
    from benchmarks.sizes import SIZES

    args = parse(argv)
    sizes = args.sizes or (list(TINY) if args.quick else [name for name in SIZES if name not in BIG])
    repeats = 1 if args.quick else args.repeats
    info = machine()
    args.out.mkdir(parents=True, exist_ok=True)
    rows_path = args.out / f"{args.machine or slug(info)}.jsonl"
    if args.fresh and rows_path.exists():
        rows_path.unlink()
    command = "python -m benchmarks.scale " + shlex.join(argv if argv is not None else sys.argv[1:])
    title = f"{info['cpu']} · {info['cores']} cores · {info['memory_gib']} GiB RAM · {rows_path.stem}"
    common = {"machine": info, "command": command.strip()} | git_commit()
    if args.report_only:
        return write(rows_path, [], title)
    rows = []
    with tempfile.TemporaryDirectory(prefix="scale-") as logs:
        for size in sizes:
            for job in args.jobs:
                row = run_one(size, job, repeats=repeats, timeout=args.timeout,
                              min_available=args.min_available_gb * 1e9, logs=Path(logs))  # fmt: skip
                row |= common | {"finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                rows = write(rows_path, [row], title)
                print(json.dumps({k: row.get(k) for k in ("size", "job", "status", "wall_s", "job_peak_bytes",
                                                          "reason")}), flush=True)  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
