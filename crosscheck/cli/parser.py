"""The ``crosscheck`` argument parser: one subcommand per module of this package.

>>> sorted(build_parser()._subparsers._group_actions[0].choices)
['batch-probe', 'locate', 'run', 'study', 'train']
"""

from __future__ import annotations

import argparse

from crosscheck.cli import batch_probe, locate, run, study, train


def build_parser() -> argparse.ArgumentParser:
    """``crosscheck`` with its subcommands; each sets ``handler(args, parser, argv)``."""
    parser = argparse.ArgumentParser(
        prog="crosscheck", description="jaxlin against torch_ref and float64 truth, with size-aware verdicts."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (run, batch_probe, study, locate, train):
        command.add_parser(commands)
    return parser
