"""``crosscheck study``: the vmap-vs-matmul performance study (the measurements are
:mod:`crosscheck.study`).

>>> from crosscheck.cli.parser import build_parser
>>> build_parser().parse_args(["study", "--quick"]).quick
True
"""

from __future__ import annotations

import argparse

from crosscheck.cli import common, options


def add_parser(commands) -> None:
    study = commands.add_parser(
        "study",
        help="the vmap-vs-matmul performance study (per-head linears, pointwise, pooling, call paths)",
        description="Time every formulation of the per-head linear (and the other variants) on one set of "
        "weights after checking they agree, against the GEMM peak measured in the same run; write "
        "DIR/study.{csv,json,md} and one PNG per study. Exit 1 when a formulation disagrees.",
    )
    study.add_argument("--quick", action="store_true", help="a small subset that runs in under a minute")
    study.add_argument(
        "--device", choices=options.DEVICES, default="auto", help="where to run (default: auto)"
    )
    study.add_argument(
        "--out",
        default=options.DEFAULT_STUDY_OUT,
        metavar="DIR",
        help=f"output directory (default: {options.DEFAULT_STUDY_OUT})",
    )
    study.add_argument(
        "--no-compile",
        dest="compile",
        action="store_false",
        help="skip torch.compile (tried at the three target configurations of the full study)",
    )
    study.add_argument(
        "--mesh",
        type=options.mesh,
        metavar="AXES",
        help="add the heads-sharded per-head rows over 1, 2, 4, ... devices up to the mesh's size, e.g. "
        "heads=8 (on CPU set XLA_FLAGS=--xla_force_host_platform_device_count=8)",
    )
    study.set_defaults(handler=command)


def command(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """``crosscheck study``: see :func:`add_parser` for the options."""
    common.extra_or_exit("study", "matplotlib", "plot")  # the plots, written at the end
    # JAX and PyTorch load here, when the command runs, not for --help.
    from crosscheck.runtime import meshes
    from crosscheck.runtime.devices import torch_device
    from crosscheck.study import outputs, parity, plan, summary, targets

    common.jax_device_or_exit(parser, args.device)
    mesh_devices = 0
    if args.mesh:
        try:
            mesh_devices = meshes.make_mesh(args.mesh).size
        except ValueError as error:
            parser.error(f"--mesh: {common.flat(error)}")
    common.out_dir_or_exit(parser, "--out", args.out)
    torch_target = torch_device(args.device)
    compiled = args.compile and not args.quick
    steps = plan.plan(args.quick, torch_target, compiled=compiled, mesh_devices=mesh_devices)
    with common.session("pinned", args.device) as session:
        task = session.progress.add_task("study", total=len(steps))
        advance = lambda: session.progress.advance(task)  # noqa: E731
        budget_s = plan.QUICK_BUDGET_S if args.quick else plan.TIME_BUDGET_S
        records = plan.run_plan(steps, torch_device=torch_target, advance=advance, budget_s=budget_s)
    env = session.environment(argv, mesh=dict(args.mesh) if args.mesh else None)
    goals = targets.evaluate(targets.TARGETS, records)
    print("\n".join(summary.terminal_lines(goals, quick=args.quick)))
    if args.quick:  # a handful of rows: every row's kernel parity here (the full run's are in study.md)
        print("\n".join(["", *parity.terminal_lines(records)]))
    disagree = [r for r in records if r.get("equal") is False]
    for record in disagree:
        print(f"DISAGREES: {record['study']} {record['config']} {record['impl']}")
    write = lambda: outputs.write_outputs(args.out, env, records, goals, quick=args.quick)  # noqa: E731
    paths = common.write_or_report(write, f"the study to {args.out}")
    listed = f" · {', '.join(paths[:3])} and {len(paths) - 3} plots" if paths else ""
    print(f"{len(records)} measurements{listed}")
    return 1 if disagree or paths is None else 0
