"""``crosscheck batch-probe``: is each output row the same whatever the batch size (and is a
repeated call)? The probe itself is :mod:`crosscheck.probes.probing`, the probed modules
:mod:`crosscheck.suite.batch_probe`.

>>> from crosscheck.cli.parser import build_parser
>>> args = build_parser().parse_args(["batch-probe", "--batch-sizes", "1-3,8", "--modes", "torch"])
>>> args.batch_sizes.expand(), args.modes
([1, 2, 3, 8], ['torch'])
"""

from __future__ import annotations

import argparse

from crosscheck.cli import common, options


def add_parser(commands) -> None:
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
    options.add_shared_arguments(probe, out=options.DEFAULT_OUT, seeded="weights and rows")
    probe.add_argument(
        "--max-batch",
        type=options.count,
        default=options.DEFAULT_MAX_BATCH,
        metavar="N",
        help=f"largest batch; sizes 1,2,3,4,7,8,16,... up to N (default: {options.DEFAULT_MAX_BATCH})",
    )
    probe.add_argument(
        "--batch-sizes",
        type=options.batch_sizes,
        metavar="LIST",
        help="exact sizes instead, e.g. '1,2,8' or '1-4096' (every size); overrides --max-batch",
    )
    probe.add_argument(
        "--modes",
        type=options.modes,
        default=list(options.PROBE_MODES),
        metavar="MODES",
        help=f"call paths, comma-separated: {', '.join(options.PROBE_MODES)} (default: all)",
    )
    probe.add_argument(
        "--repeats",
        type=options.count,
        default=options.DEFAULT_REPEATS,
        metavar="N",
        help=f"calls of the largest batch (default: {options.DEFAULT_REPEATS})",
    )
    probe.add_argument("--threads", type=options.count, metavar="N", help="torch.set_num_threads(N) first")
    probe.add_argument(
        "--torch-deterministic", action="store_true", help="torch.use_deterministic_algorithms(True) first"
    )
    probe.set_defaults(handler=command)


def command(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """``crosscheck batch-probe``: see :func:`add_parser` for the options."""
    # JAX and PyTorch load here, when the command runs, not for --help.
    import torch

    from crosscheck.probes import probing
    from crosscheck.reporting import documents, environment, probe_report
    from crosscheck.suite import batch_probe, cases, jobs

    registry = cases.probe_cases()
    names, dtypes = common.chosen_or_exit(
        parser, args, args.modules, list(registry), option="--modules", noun="module"
    )
    largest = args.batch_sizes.largest if args.batch_sizes else args.max_batch
    for name in names:
        for dtype in dtypes:
            limit = batch_probe.pool_limit(registry[name], dtype)
            if largest > limit:
                flag = "--batch-sizes" if args.batch_sizes else "--max-batch"
                parser.error(
                    f"{flag}: a batch of {largest} rows of {name} in {dtype} needs more than half the "
                    f"memory available here; the limit is {limit} rows"
                )
    common.out_dir_or_exit(parser, "--out", args.out)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(args.torch_deterministic)
    sizes = args.batch_sizes.expand() if args.batch_sizes else probing.default_batch_sizes(args.max_batch)
    run_options = jobs.Options(
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        probe_batch_sizes=tuple(sizes),
        probe_modes=tuple(args.modes),
        probe_repeats=args.repeats,
    )
    records = []
    with common.session(args.precision, args.device) as session:
        task = session.progress.add_task("batch-size probe", total=len(names) * len(dtypes))
        for index, (name, dtype) in enumerate((n, d) for n in names for d in dtypes):
            records += jobs.ProbeJob(index, name, dtype).run(run_options)  # the job `crosscheck run` runs too
            session.progress.advance(task)
    env = session.environment(argv, torch_deterministic=args.torch_deterministic)
    probe = {"batch_sizes": list(sizes), "records": records}
    document = {"schema": documents.SCHEMA, "environment": env, "batch_probe": probe}
    markdown = probe_report.render_probe_document(env, probe)
    probe_report.print_probe_table(common.console(), records, environment.machine_line(env))
    write = lambda: documents.write_documents(args.out, "probe", document, markdown)  # noqa: E731
    paths = common.write_or_report(write, f"the probe report to {args.out}")
    failed = sum(1 for record in records if not record["passed"])
    print(f"{len(records)} probed: {failed} failed" + (f" · report: {', '.join(paths)}" if paths else ""))
    return 1 if failed or paths is None else 0
