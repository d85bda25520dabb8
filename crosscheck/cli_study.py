"""``crosscheck study``: its options and its command (the measurements are :mod:`crosscheck.study`,
the configurations :mod:`crosscheck.study_configs`, the outputs :mod:`crosscheck.study_report`).

>>> from crosscheck.cli import build_parser
>>> build_parser().parse_args(["study", "--quick"]).quick
True
"""

from __future__ import annotations

import argparse
import shlex
import sys

from crosscheck.cli import DEVICES, jax_device_or_exit, make_out_dir, progress_bars

DEFAULT_STUDY_OUT = "crosscheck-study"


def add_study_parser(commands) -> None:
    study = commands.add_parser(
        "study",
        help="the vmap-vs-matmul performance study (per-head linears, pointwise, pooling, call paths)",
        description="Time every formulation of the per-head linear (and the other variants) on one set of "
        "weights after checking they agree, against the GEMM peak measured in the same run; write "
        "DIR/study.{csv,json,md} and one PNG per study. Exit 1 when a formulation disagrees.",
    )
    study.add_argument("--quick", action="store_true", help="a small subset that runs in under a minute")
    study.add_argument("--device", choices=DEVICES, default="auto", help="where to run (default: auto)")
    study.add_argument(
        "--out",
        default=DEFAULT_STUDY_OUT,
        metavar="DIR",
        help=f"output directory (default: {DEFAULT_STUDY_OUT})",
    )
    study.add_argument(
        "--no-compile",
        dest="compile",
        action="store_false",
        help="skip torch.compile (tried at the three target configurations of the full study)",
    )
    study.set_defaults(handler=study_command)


def study_command(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """``crosscheck study``: see :func:`add_study_parser` for the options."""
    make_out_dir(parser, args.out)
    import jax

    from crosscheck import report as reporting
    from crosscheck import study_report
    from crosscheck.precision import describe_precision, precision_mode
    from crosscheck.timing import device_info, torch_device

    device = jax_device_or_exit(parser, args.device)
    torch_target = torch_device(args.device)
    steps = study_report.plan(args.quick, torch_target, compiled=args.compile and not args.quick)
    with precision_mode("pinned"), jax.default_device(device):
        precision, machine = describe_precision("pinned"), device_info(args.device)
        with progress_bars() as progress:
            task = progress.add_task("study", total=len(steps))
            records = study_report.run_plan(
                steps, torch_device=torch_target, advance=lambda: progress.advance(task)
            )
    env = reporting.environment(shlex.join(["crosscheck", *argv]), device=machine, precision=precision)
    goals = study_report.targets(records)
    paths = study_report.write_outputs(args.out, env, records, goals)
    for goal in goals:
        met = {True: "met", False: "NOT MET", None: "not measured"}[goal["met"]]
        value = "–" if goal["value"] is None else f"{goal['value']:.3g}"
        print(f"{met:>12}  {value:>8} (limit {goal['limit']})  {goal['target']}", file=sys.stdout)
    disagree = [r for r in records if r.get("equal") is False]
    for record in disagree:
        print(f"DISAGREES: {record['study']} {record['config']} {record['impl']}")
    print(f"{len(records)} measurements · {', '.join(paths[:3])} and {len(paths) - 3} plots")
    return 1 if disagree else 0
