"""``crosscheck run``: every case in both frameworks on shared weights, checked against float64
truth, with the batch-size probe of Linear and BatchInvariantLinear, and one entry per distinct
computation timed at its seed shape (:mod:`crosscheck.suite.seed_shapes`); the four answers and
the summary on the terminal and in ``DIR/report.json`` and ``DIR/report.md``.

Exit status: 0 when every case passes, 1 when any fails (or raises, or the report cannot be
written), 2 for a usage error.

>>> from crosscheck.cli.parser import build_parser
>>> build_parser().parse_args(["run", "--cases", "linear", "--dtype", "float32,float64"]).dtype
[['float32', 'float64']]
"""

from __future__ import annotations

import argparse

from crosscheck.cli import common, options


def add_parser(commands) -> None:
    run = commands.add_parser(
        "run",
        help="check every case in both frameworks, time them, write the report",
        description="Check outputs and gradients of every selected case against float64 truth in both "
        "frameworks, time them, print a summary and write DIR/report.json and DIR/report.md. "
        "Exit 0 when all pass, 1 when any fails, 2 for a usage error.",
    )
    run.add_argument(
        "--cases",
        default="*",
        metavar="PATTERN",
        help="comma-separated globs over case names, e.g. 'pooled-*,linear' (default: all)",
    )
    options.add_shared_arguments(run, out=options.DEFAULT_OUT, seeded="weights and inputs")
    run.add_argument(
        "--weights", metavar="FILE", help="safetensors file (torch_ref names) for every case it fits"
    )
    run.add_argument(
        "--repeats",
        type=options.count,
        default=options.TIMED_ROUNDS,
        metavar="N",
        help=f"rounds of timed calls per timed entry, fewer if slow (default: {options.TIMED_ROUNDS})",
    )
    run.add_argument(
        "--backward",
        action="store_true",
        help="time forward+backward too at the seed shapes (about 3x the timing time)",
    )
    run.add_argument(
        "--workers",
        type=lambda text: options.count(text, least=0),
        default=None,
        metavar="N",
        help="processes that run the checks while this one compiles the timed functions; 0: all in "
        "this one (default: 1 on a CPU-only machine with 2+ cores, else 0). Timed calls run alone, "
        "at the end.",
    )
    run.add_argument(
        "--mesh",
        type=options.mesh,
        metavar="AXES",
        help="run the JAX side sharded on a device mesh, e.g. data=2,heads=4 (the batch on data, heads or "
        "linear outputs on the other axis); on CPU set XLA_FLAGS=--xla_force_host_platform_device_count=N",
    )
    run.add_argument(
        "--no-probe",
        dest="probe",
        action="store_false",
        help="skip the batch-size probe section (see `crosscheck batch-probe`)",
    )
    run.set_defaults(handler=command)


def command(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """``crosscheck run``: see :func:`add_parser` for the options."""
    # JAX and PyTorch load here, when the command runs, not for --help.
    from crosscheck.probes import probing
    from crosscheck.reporting import probe_report, run_report, speed_report
    from crosscheck.runtime import meshes
    from crosscheck.suite import answers, cases, jobs, pairs, seed_shapes
    from crosscheck.weights import WeightsError, files

    registry = cases.all_cases()
    names, dtypes = common.chosen_or_exit(
        parser, args, args.cases, list(registry), option="--cases", noun="case"
    )
    if args.mesh:
        try:
            meshes.make_mesh(args.mesh)
        except ValueError as error:
            parser.error(f"--mesh: {common.flat(error)}")
    common.out_dir_or_exit(parser, "--out", args.out)
    workers = jobs.default_workers() if args.workers is None else args.workers
    misfit, nonfinite = {}, {}
    if args.weights is not None:
        try:
            misfit = {
                name: why
                for name in names
                if (why := pairs.misfit(registry[name], args.weights, seed=args.seed))
            }
            nonfinite = files.nonfinite_counts(args.weights)
        except WeightsError as error:
            parser.error(f"--weights: {common.flat(error)}")
        if len(misfit) == len(names):
            parser.error(
                f"--weights {args.weights} fits none of the selected cases ({options.compact_names(names)})"
            )
    to_check = [(name, dtype) for name in names if name not in misfit for dtype in dtypes]
    probes = [(name, dtype) for name in options.RUN_PROBES for dtype in dtypes] if args.probe else []
    checked = [name for name in names if name not in misfit]
    timed = seed_shapes.timed_entries(checked, probe=args.probe) if "float32" in dtypes else []
    sizes = tuple(probing.default_batch_sizes())
    run_options = jobs.Options(
        seed=args.seed,
        weights=args.weights,
        device=args.device,
        precision=args.precision,
        repeats=args.repeats,
        probe_batch_sizes=sizes,
        probe_modes=("jax.jit", "torch"),
        mesh=args.mesh or (),
        backward=args.backward,
    )
    with common.session(args.precision, args.device) as session:
        runs, probe_records, entry_runs = jobs.run_jobs(
            to_check, probes, run_options, workers=workers, progress=session.progress, timed=timed
        )
    by_case = {(run.name, run.dtype): run for run in runs}
    skipped = [jobs.CaseRun(name, dtype, skipped=misfit[name]) for name in misfit for dtype in dtypes]
    records = [
        run_report.case_record(by_case.get((name, dtype)) or skipped.pop(0))
        for name in names
        for dtype in dtypes
    ]
    probe = {"batch_sizes": list(sizes), "records": probe_records} if args.probe else None
    weights = {"path": args.weights, "nonfinite": nonfinite} if args.weights else None
    mesh = {name: size for name, size in args.mesh} if args.mesh else None
    report = run_report.build_report(
        session.environment(argv, mesh=mesh),
        records,
        probe,
        weights,
        timing=[speed_report.entry_record(run) for run in entry_runs],
        answers=answers.answers(runs, probe_records, entry_runs),
    )
    terminal = common.console()
    run_report.print_summary(terminal, report)
    if probe is not None:
        probe_report.print_probe_table(
            terminal, probe["records"], "batch-size probe: each row alone vs in batches"
        )
    for record in report["cases"]:
        for message in ([record["error"]] if record.get("error") else []) + record.get("failures", []):
            print(message, end="\n\n")
    for record in report.get("timing", {}).get("entries", []):
        if record.get("error"):
            print(f"{record['name']} (timed at {record['shape']}): {record['error']}", end="\n\n")
    paths = common.write_or_report(
        lambda: run_report.write_report(args.out, report), f"the report to {args.out}"
    )
    print(run_report.summary_line(report) + (f" · report: {', '.join(paths)}" if paths else ""))
    summary = report["summary"]
    failed = summary["failed"] or summary.get("probe_failed") or summary.get("timing_failed")
    return 1 if failed or paths is None else 0
