"""``crosscheck batch-probe``: its options and its command (the probe itself is
:mod:`crosscheck.probe`, the probed modules :mod:`crosscheck.batch_probe`).

>>> from crosscheck.cli import build_parser
>>> args = build_parser().parse_args(["batch-probe", "--batch-sizes", "1-3,8", "--modes", "torch"])
>>> args.batch_sizes, args.modes
([1, 2, 3, 8], ['torch'])
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import sys

from crosscheck.cli import (
    DEFAULT_DTYPES,
    DEFAULT_OUT,
    DEVICES,
    DTYPES,
    PRECISIONS,
    PROBE_MODES,
    _dtypes,
    _positive,
    jax_device_or_exit,
    make_out_dir,
    progress_bars,
    select_names,
)

DEFAULT_MAX_BATCH = 256  # crosscheck.probe.DEFAULT_MAX_BATCH, without importing NumPy for --help


def _batch_sizes(text: str) -> list[int]:
    from crosscheck.probe import parse_batch_sizes

    try:
        return parse_batch_sizes(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _modes(text: str) -> list[str]:
    modes = [mode.strip() for mode in text.split(",") if mode.strip()]
    bad = [mode for mode in modes if mode not in PROBE_MODES] or ([] if modes else [text])
    if bad:
        raise argparse.ArgumentTypeError(f"invalid mode {bad[0]!r} (choose from {', '.join(PROBE_MODES)})")
    return modes


def add_probe_parser(commands) -> None:
    probe = commands.add_parser(
        "batch-probe",
        help="is each output row the same whatever the batch size? (and is a repeated call?)",
        description="Compute rows alone and in batches of many sizes at several positions, compare bitwise, "
        "print a table and write DIR/probe.json and DIR/probe.md. Exit 1 when a module that promises "
        "batch invariance varies, a difference exceeds rounding, or a repeated call differs.",
    )
    probe.add_argument(
        "--modules", default="*", metavar="PATTERN", help="comma-separated globs (default: all)"
    )
    probe.add_argument(
        "--dtype", action="append", type=_dtypes, metavar="DTYPES",
        help=f"working dtypes, comma-separated or repeated: {', '.join(DTYPES)} (default: float32,bfloat16)",
    )  # fmt: skip
    probe.add_argument(
        "--max-batch", type=_positive, default=DEFAULT_MAX_BATCH, metavar="N",
        help=f"largest batch; sizes 1,2,3,4,7,8,16,... up to N (default: {DEFAULT_MAX_BATCH})",
    )  # fmt: skip
    probe.add_argument(
        "--batch-sizes", type=_batch_sizes, metavar="LIST",
        help="exact sizes instead, e.g. '1,2,8' or '1-4096' (every size); overrides --max-batch",
    )  # fmt: skip
    probe.add_argument(
        "--modes", type=_modes, default=list(PROBE_MODES), metavar="MODES",
        help=f"call paths, comma-separated: {', '.join(PROBE_MODES)} (default: all)",
    )  # fmt: skip
    probe.add_argument(
        "--repeats", type=_positive, default=5, metavar="N", help="calls of the largest batch (default: 5)"
    )
    probe.add_argument("--threads", type=_positive, metavar="N", help="torch.set_num_threads(N) first")
    probe.add_argument(
        "--torch-deterministic", action="store_true", help="torch.use_deterministic_algorithms(True) first"
    )
    probe.add_argument(
        "--precision", choices=PRECISIONS, default="pinned", help="as for `run` (default: pinned)"
    )
    probe.add_argument("--device", choices=DEVICES, default="auto", help="where to run (default: auto)")
    probe.add_argument("--seed", type=int, default=0, help="seed for weights and rows (default: 0)")
    probe.add_argument(
        "--out", default=DEFAULT_OUT, metavar="DIR", help=f"report directory (default: {DEFAULT_OUT})"
    )
    probe.set_defaults(handler=probe_command)


def probe_all(progress, names, dtypes, modes, batch_sizes, *, seed: int, repeats: int, device: str) -> dict:
    """``{"batch_sizes", "records"}``: :func:`crosscheck.runner.probe_job` (the job ``crosscheck run``
    uses too) for every named module in every dtype, with a progress bar."""
    from crosscheck.runner import probe_job

    task = progress.add_task("batch-size probe", total=len(names) * len(dtypes))
    records = []
    for name in names:
        for dtype in dtypes:
            records += probe_job(name, dtype, seed=seed, device=device, batch_sizes=batch_sizes, modes=modes,
                                 repeats=repeats)  # fmt: skip
            progress.advance(task)
    return {"batch_sizes": list(batch_sizes), "records": records}


def probe_command(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """``crosscheck batch-probe``: see :func:`add_probe_parser` for the options."""
    from crosscheck.batch_probe import subjects

    modules = list(subjects())
    try:
        listing = ", ".join(modules)
        names = select_names(args.modules, modules, option="--modules", noun="module", listing=listing)
    except ValueError as error:
        parser.error(str(error))
    dtypes = list(dict.fromkeys(itertools.chain.from_iterable(args.dtype or [DEFAULT_DTYPES])))
    make_out_dir(parser, args.out)
    import jax
    import torch
    from rich.console import Console

    from crosscheck import report as reporting
    from crosscheck.batch_probe import print_table, render_document
    from crosscheck.precision import describe_precision, precision_mode
    from crosscheck.probe import default_batch_sizes
    from crosscheck.timing import device_info

    device = jax_device_or_exit(parser, args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(args.torch_deterministic)
    sizes = args.batch_sizes or default_batch_sizes(args.max_batch)
    with precision_mode(args.precision), jax.default_device(device):
        precision, machine = describe_precision(args.precision), device_info(args.device)
        with progress_bars() as progress:
            options = {"seed": args.seed, "repeats": args.repeats, "device": args.device}
            probe = probe_all(progress, names, dtypes, args.modes, sizes, **options)
    env = reporting.environment(shlex.join(["crosscheck", *argv]), device=machine, precision=precision)
    env["torch_deterministic"] = args.torch_deterministic
    document = {"schema": reporting.SCHEMA, "environment": env, "batch_probe": probe}
    paths = reporting.write_documents(args.out, "probe", document, render_document(env, probe))
    console = Console(width=None if sys.stdout.isatty() else 250)
    print_table(console, probe["records"], reporting.title({"environment": env}))
    failed = sum(1 for record in probe["records"] if not record["passed"])
    print(f"{len(probe['records'])} probed: {failed} failed · report: {', '.join(paths)}")
    return 1 if failed else 0
