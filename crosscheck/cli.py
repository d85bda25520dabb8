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
PROBE_MODES = ("jax.jit", "eager", "torch")  # crosscheck.batch_probe.MODES
RUN_PROBES = ("linear", "batch-invariant-linear")  # probed in `crosscheck run`


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
    run.add_argument(
        "--no-probe", dest="probe", action="store_false",
        help="skip the batch-size probe section (see `crosscheck batch-probe`)",
    )  # fmt: skip
    run.set_defaults(handler=run_command)
    from crosscheck.cli_probe import add_probe_parser

    add_probe_parser(commands)
    from crosscheck.cli_study import add_study_parser

    add_study_parser(commands)
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


def select_names(pattern: str, names: list[str], *, option: str, noun: str, listing: str) -> list[str]:
    """Names matching any comma-separated glob of ``pattern``, in registry order.

    ``ValueError`` names the first glob that matches nothing, e.g. "--cases: 'x' matches no case;
    the cases are {listing}".
    """
    globs = [glob.strip() for glob in pattern.split(",") if glob.strip()] or ["*"]
    for glob in globs:
        if not fnmatch.filter(names, glob):
            raise ValueError(f"{option}: {glob!r} matches no {noun}; the {noun}s are {listing}")
    return [name for name in names if any(fnmatch.fnmatchcase(name, glob) for glob in globs)]


def select_cases(pattern: str, names: list[str]) -> list[str]:
    """:func:`select_names` over case names for ``--cases``."""
    return select_names(pattern, names, option="--cases", noun="case", listing=compact_names(names))


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.handler(args, parser, argv)
    except SystemExit as exit_:  # argparse's usage errors (2) and --help (0)
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)


def make_out_dir(parser: argparse.ArgumentParser, out: str) -> None:
    """Create ``out`` or exit 2 naming it and why."""
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as error:
        parser.error(f"--out {out}: cannot create the report directory ({error.strerror})")


def jax_device_or_exit(parser: argparse.ArgumentParser, device: str):
    """The JAX device for ``--device``, or exit 2 saying it is not available here."""
    from crosscheck.timing import jax_device

    try:
        return jax_device(device)
    except RuntimeError as error:
        parser.error(f"--device {device}: not available here ({error})")


def run_command(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """``crosscheck run``: see :func:`build_parser` for the options."""
    from crosscheck.cases import all_cases

    cases = all_cases()
    try:
        names = select_cases(args.cases, list(cases))
    except ValueError as error:
        parser.error(str(error))
    dtypes = list(dict.fromkeys(itertools.chain.from_iterable(args.dtype or [DEFAULT_DTYPES])))
    make_out_dir(parser, args.out)

    import torch

    from crosscheck.runner import default_workers, weights_fit
    from crosscheck.weightfile import WeightsError

    jax_device_or_exit(parser, args.device)
    if args.workers is None:
        args.workers = default_workers()
    misfit: dict[str, str] = {}
    if args.weights is not None:
        try:
            for name in names:
                torch.manual_seed(args.seed)
                reason = weights_fit(args.weights, cases[name].make_torch(torch.float32))
                if reason is not None:
                    misfit[name] = reason
        except WeightsError as error:
            parser.error(f"--weights: {error}")
        if len(misfit) == len(names):
            parser.error(f"--weights {args.weights} fits none of the selected cases ({compact_names(names)})")
    return _run(cases, [(n, d) for n in names for d in dtypes], args, misfit, argv)


def progress_bars():
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=Console(stderr=True))


def _run(cases, jobs, args, misfit, argv) -> int:
    from rich.console import Console

    from crosscheck import report as reporting
    from crosscheck.batch_probe import print_table
    from crosscheck.precision import describe_precision, precision_mode
    from crosscheck.probe import default_batch_sizes
    from crosscheck.runner import run_jobs
    from crosscheck.timing import device_info

    console = Console(width=None if sys.stdout.isatty() else 250)
    dtypes = list(dict.fromkeys(dtype for _, dtype in jobs))
    # The seed's layer and its batch-invariant twin; `crosscheck batch-probe` probes every module and
    # eager JAX too, which here would take the run past its minute.
    probes = [(name, dtype) for name in RUN_PROBES for dtype in dtypes] if args.probe else []
    probe_options = {"batch_sizes": default_batch_sizes(), "modes": ["jax.jit", "torch"]}
    with precision_mode(args.precision):
        precision, machine = describe_precision(args.precision), device_info(args.device)
        with progress_bars() as progress:
            records, probe_records = run_jobs(cases, jobs, args, misfit, progress, probes, probe_options)
    probe = {"batch_sizes": probe_options["batch_sizes"], "records": probe_records} if args.probe else None
    env = reporting.environment(shlex.join(["crosscheck", *argv]), device=machine, precision=precision)
    report = reporting.build_report(env, records, probe)
    json_path, md_path = reporting.write_report(args.out, report)
    reporting.print_summary(console, report)
    if probe is not None:
        print_table(console, probe["records"], "batch-size probe: each row alone vs in batches")
    for record in report["cases"]:
        for message in ([record["error"]] if record.get("error") else []) + record.get("failures", []):
            print(message, end="\n\n")
    summary = report["summary"]
    print(
        f"{summary['cases']} cases: {summary['passed']} passed, {summary['failed']} failed"
        + (f", {summary['skipped']} skipped" if summary["skipped"] else "")
        + (f"; batch-size probe: {summary['probe_failed']} failed" if probe is not None else "")
        + f" · report: {json_path}, {md_path}"
    )
    return 1 if summary["failed"] or summary.get("probe_failed") else 0
