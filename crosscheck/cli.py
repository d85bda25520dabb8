"""The ``crosscheck`` command (console script, and ``python -m crosscheck``).

``crosscheck run`` builds every selected case in both frameworks from one set of weights, checks
outputs and gradients against each other and against float64 truth (:func:`crosscheck.check.check`),
times both frameworks (:mod:`crosscheck.timing`), prints a summary table and writes
``DIR/report.json`` and ``DIR/report.md`` (:mod:`crosscheck.report`).

Exit status: 0 when every case passes, 1 when any fails (or raises), 2 for a usage error.

>>> build_parser().parse_args(["run", "--cases", "linear", "--dtype", "float32,float64"]).dtype
[['float32', 'float64']]
>>> compact_names(["perhead-einsum-bmm", "perhead-einsum-vmap", "perhead-vmap-bmm", "perhead-vmap-vmap"])
'perhead-{einsum,vmap}-{bmm,vmap}'
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import itertools
import math
import os
import shlex
import sys

DTYPES = ("float32", "bfloat16", "float64")
DEFAULT_DTYPES = ("float32", "bfloat16")
DEFAULT_OUT = "crosscheck-out"
DEFAULT_REPEATS = 10
PRECISIONS = ("pinned", "default")  # crosscheck.precision.PRECISIONS, without importing JAX for --help
DEVICES = ("auto", "cpu", "gpu", "tpu")  # crosscheck.timing.DEVICES


def _dtypes(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    bad = [name for name in names if name not in DTYPES] or ([] if names else [text])
    if bad:
        raise argparse.ArgumentTypeError(
            f"invalid dtype {bad[0]!r} (choose from {', '.join(DTYPES)}; several comma-separated)"
        )
    return names


def _positive(text: str, least: int = 1) -> int:
    if not text.strip().isdigit() or int(text) < least:
        raise argparse.ArgumentTypeError(f"invalid count {text!r} (an integer >= {least})")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """``crosscheck`` with its subcommands (``run``; ``batch-probe`` and ``study`` join here)."""
    parser = argparse.ArgumentParser(
        prog="crosscheck", description="jaxlin against torch_ref and float64 truth, with size-aware verdicts."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="check every case in both frameworks, time them, write the report",
        description="Check outputs and gradients of every selected case against float64 truth in both "
        "frameworks, time them, print a summary and write DIR/report.json and DIR/report.md. "
        "Exit 0 when all pass, 1 when any fails, 2 for a usage error.",
    )
    run.add_argument(
        "--cases", default="*", metavar="PATTERN",
        help="comma-separated globs over case names, e.g. 'pooled-*,linear' (default: all)",
    )  # fmt: skip
    run.add_argument(
        "--dtype", action="append", type=_dtypes, metavar="DTYPES",
        help=f"working dtypes, comma-separated or repeated: {', '.join(DTYPES)} (default: float32,bfloat16)",
    )  # fmt: skip
    run.add_argument(
        "--precision", choices=PRECISIONS, default="pinned",
        help="pinned: highest matmul precision, TF32 off (default); default: each framework's defaults",
    )  # fmt: skip
    run.add_argument(
        "--device", choices=DEVICES, default="auto", help="where to run (default: auto, what JAX reports)"
    )
    run.add_argument(
        "--weights", metavar="FILE", help="safetensors file (torch_ref names) for every case it fits"
    )
    run.add_argument(
        "--out", default=DEFAULT_OUT, metavar="DIR", help=f"report directory (default: {DEFAULT_OUT})"
    )
    run.add_argument(
        "--repeats", type=_positive, default=DEFAULT_REPEATS, metavar="N",
        help=f"timed calls per measurement (default: {DEFAULT_REPEATS})",
    )  # fmt: skip
    run.add_argument("--seed", type=int, default=0, help="seed for weights and inputs (default: 0)")
    run.add_argument(
        "--workers", type=lambda text: _positive(text, least=0), default=None, metavar="N",
        help="processes that run the checks while this one compiles the timed functions; 0: all in this one "
        "(default: 1 on a CPU-only machine with 2+ cores, else 0). Timed calls run alone, at the end.",
    )  # fmt: skip
    run.set_defaults(handler=run_command)
    return parser


def compact_names(names: list[str]) -> str:
    """Case names grouped by family; a family that is a full product of options reads ``a-{b,c}-{d,e}``."""
    parts = []
    for _, group in itertools.groupby(names, key=lambda name: name.split("-")[0]):
        group = list(group)
        split = [name.split("-") for name in group]
        options = (
            [list(dict.fromkeys(column)) for column in zip(*split, strict=True)]
            if len({len(s) for s in split}) == 1
            else []
        )
        if len(group) > 1 and options and len(group) == math.prod(len(o) for o in options):
            parts.append("-".join(o[0] if len(o) == 1 else "{" + ",".join(o) + "}" for o in options))
        else:
            parts.extend(group)
    return ", ".join(parts)


def select_cases(pattern: str, names: list[str]) -> list[str]:
    """Names matching any comma-separated glob of ``pattern``, in registry order.

    ``ValueError`` names the first glob that matches nothing.
    """
    globs = [glob.strip() for glob in pattern.split(",") if glob.strip()] or ["*"]
    for glob in globs:
        if not fnmatch.filter(names, glob):
            raise ValueError(f"--cases: {glob!r} matches no case; the cases are {compact_names(names)}")
    return [name for name in names if any(fnmatch.fnmatchcase(name, glob) for glob in globs)]


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.handler(args, parser, argv)
    except SystemExit as exit_:  # argparse's usage errors (2) and --help (0)
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)


def _weights_fit(path: str, torch_module) -> str | None:
    """``None`` when the file's keys and shapes are the module's state_dict, else why not."""
    from crosscheck import weightfile

    declared = {key: shape for key, (shape, _) in weightfile.header(path).items()}
    expected = {key: tuple(t.shape) for key, t in torch_module.state_dict().items()}
    return (
        None
        if declared == expected
        else f"--weights {path} does not fit: it holds {declared}, not {expected}"
    )


def build_modules(case, dtype: str, *, seed: int, weights: str | None):
    """The case's jaxlin and torch_ref modules with one set of weights (torch's init, or ``weights``)."""
    import jax.numpy as jnp
    import torch
    from flax import nnx

    from crosscheck.weights import copy_torch_to_jax, load_weights

    torch.manual_seed(seed)
    torch_module = case.make_torch(getattr(torch, dtype))
    jax_module = case.make_jax(nnx.Rngs(seed), jnp.dtype(dtype))
    copy_torch_to_jax(torch_module, jax_module)
    if weights is not None:
        load_weights(torch_module, weights, cast=True)
        load_weights(jax_module, weights, cast=True)
    return jax_module, torch_module


def _x64(dtype: str):
    import jax

    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


def check_job(case, dtype: str, *, seed: int, weights: str | None, device: str, modules=None) -> dict:
    """The report record of :func:`crosscheck.check.check` for one case; an exception fails the case."""
    import jax
    import numpy as np

    from crosscheck.check import check
    from crosscheck.report import case_record
    from crosscheck.timing import jax_device

    try:
        with _x64(dtype), jax.default_device(jax_device(device)):
            jax_module, torch_module = modules or build_modules(case, dtype, seed=seed, weights=weights)
            inputs = case.make_inputs(np.random.default_rng(seed))
            result = check(jax_module, torch_module, *inputs, name=case.name)
    except Exception as error:  # a case that raises fails; the run goes on
        return case_record(case.name, dtype, error=f"{type(error).__name__}: {error}")
    return case_record(case.name, dtype, result=result)


def _check_worker(tasks, options: dict, precision: str, results) -> None:
    """Run in a spawned process: check ``(index, name, dtype)`` jobs from ``tasks`` until ``None``,
    putting ``(index, record)`` on ``results``."""
    from crosscheck.cases import all_cases
    from crosscheck.precision import precision_mode

    cases = all_cases()
    with precision_mode(precision):
        for index, name, dtype in iter(tasks.get, None):
            results.put((index, check_job(cases[name], dtype, **options)))


def _default_workers() -> int:
    """One check worker on a CPU-only machine with 2+ cores; none beside an accelerator (a second
    process would claim its memory too)."""
    import jax

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 1 if jax.default_backend() == "cpu" and cores >= 2 else 0


def run_jobs(cases, jobs, args, misfit, progress) -> list[dict]:
    """Check, compile and time every ``(name, dtype)`` job; one report record each, in order."""
    import multiprocessing
    import queue as queues

    from crosscheck.report import case_record, timing_fields
    from crosscheck.timing import measure_case, prepare_case

    options = {"seed": args.seed, "weights": args.weights, "device": args.device}
    records: list[dict | None] = [None] * len(jobs)
    todo = [(i, name, dtype) for i, (name, dtype) in enumerate(jobs) if name not in misfit]
    for i, (name, dtype) in enumerate(jobs):
        records[i] = case_record(name, dtype, skipped=misfit[name]) if name in misfit else None
    tasks = {key: progress.add_task(key, total=len(todo)) for key in ("checks", "compiling timers")}
    tasks["timing"] = progress.add_task("timing", total=len(todo), start=False)
    context = multiprocessing.get_context("spawn")
    workers, pending, results = [], context.Queue(), context.Queue()
    if args.workers:  # the workers take jobs from `pending`; this process joins in once its compiles are done
        for job in todo:
            pending.put(job)
        for _ in range(args.workers + 1):
            pending.put(None)
        for _ in range(min(args.workers, len(todo))):
            work = (pending, options, args.precision, results)
            workers.append(context.Process(target=_check_worker, args=work, daemon=True))
            workers[-1].start()

    def collect(block: bool) -> None:
        try:
            while True:
                index, record = results.get(timeout=0.5) if block else results.get_nowait()
                records[index] = record
                progress.advance(tasks["checks"])
        except queues.Empty:
            pass

    prepared, failures = {}, {}
    for index, name, dtype in todo:
        try:
            with _x64(dtype):
                modules = build_modules(cases[name], dtype, seed=args.seed, weights=args.weights)
        except Exception as error:  # check_job meets the same error and records it
            modules, failures[index] = None, f"{type(error).__name__}: {error}"
        if not workers:
            records[index] = check_job(cases[name], dtype, modules=modules, **options)
            progress.advance(tasks["checks"])
        try:
            if modules is not None:
                prepared[index] = prepare_case(
                    cases[name], *modules, dtype, device=args.device, seed=args.seed
                )
        except Exception as error:  # timing a case that raises fails it; the run goes on
            failures[index] = f"timing: {type(error).__name__}: {error}"
        progress.advance(tasks["compiling timers"])
        collect(block=False)
    for index, name, dtype in iter(pending.get, None) if workers else ():
        records[index] = check_job(cases[name], dtype, **options)
        progress.advance(tasks["checks"])
        collect(block=False)
    while any(records[i] is None for i, _, _ in todo) and any(p.is_alive() for p in workers):
        collect(block=True)
    for process in workers:  # let them exit (and free their memory) before anything is timed
        process.join(timeout=30)
    collect(block=False)
    progress.start_task(tasks["timing"])
    for index, name, dtype in todo:
        if records[index] is None:
            codes = ", ".join(str(p.exitcode) for p in workers)
            records[index] = case_record(name, dtype, error=f"the check worker exited (code {codes})")
        if index in prepared:
            records[index] |= timing_fields(measure_case(prepared[index], repeats=args.repeats))
        elif "error" not in records[index]:
            records[index] |= {"passed": False, "error": failures[index]}
        progress.advance(tasks["timing"])
    return records


def run_command(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """``crosscheck run``: see :func:`build_parser` for the options."""
    from crosscheck.cases import all_cases

    cases = all_cases()
    try:
        names = select_cases(args.cases, list(cases))
    except ValueError as error:
        parser.error(str(error))
    dtypes = list(dict.fromkeys(itertools.chain.from_iterable(args.dtype or [DEFAULT_DTYPES])))
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as error:
        parser.error(f"--out {args.out}: cannot create the report directory ({error.strerror})")

    import torch

    from crosscheck.timing import jax_device
    from crosscheck.weightfile import WeightsError

    try:
        jax_device(args.device)
    except RuntimeError as error:
        parser.error(f"--device {args.device}: not available here ({error})")
    if args.workers is None:
        args.workers = _default_workers()
    misfit: dict[str, str] = {}
    if args.weights is not None:
        try:
            for name in names:
                torch.manual_seed(args.seed)
                reason = _weights_fit(args.weights, cases[name].make_torch(torch.float32))
                if reason is not None:
                    misfit[name] = reason
        except WeightsError as error:
            parser.error(f"--weights: {error}")
        if len(misfit) == len(names):
            parser.error(f"--weights {args.weights} fits none of the selected cases ({compact_names(names)})")
    return _run(cases, [(n, d) for n in names for d in dtypes], args, misfit, argv)


def _run(cases, jobs, args, misfit, argv) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from crosscheck import report as reporting
    from crosscheck.precision import describe_precision, precision_mode
    from crosscheck.timing import device_info

    console = Console(width=None if sys.stdout.isatty() else 200)
    columns = (TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with precision_mode(args.precision):
        precision, machine = describe_precision(args.precision), device_info(args.device)
        with Progress(*columns, console=Console(stderr=True)) as progress:
            records = run_jobs(cases, jobs, args, misfit, progress)
    env = reporting.environment(shlex.join(["crosscheck", *argv]), device=machine, precision=precision)
    report = reporting.build_report(env, records)
    json_path, md_path = reporting.write_report(args.out, report)
    reporting.print_summary(console, report)
    for record in report["cases"]:
        for message in ([record["error"]] if record.get("error") else []) + record.get("failures", []):
            print(message, end="\n\n")
    summary = report["summary"]
    print(
        f"{summary['cases']} cases: {summary['passed']} passed, {summary['failed']} failed"
        + (f", {summary['skipped']} skipped" if summary["skipped"] else "")
        + f" · report: {json_path}, {md_path}"
    )
    return 1 if summary["failed"] else 0
