"""The ``crosscheck`` argument parser: one subcommand per module of this package.

Each subcommand sets ``handler(args, parser, argv)`` and ``command_parser``, its own parser: the one its
handler reports usage errors with, so that they show ``usage: crosscheck locate ...`` and
``crosscheck locate: error: ...``, as argparse's own errors inside a subcommand do.

>>> parser = build_parser()
>>> sorted(parser._subparsers._group_actions[0].choices)
['batch-probe', 'locate', 'run', 'study', 'train']
>>> parser.parse_args(["study"]).command_parser.prog
'crosscheck study'
"""

from __future__ import annotations

import argparse

from crosscheck.cli import batch_probe, locate, run, study, train


def build_parser() -> argparse.ArgumentParser:
    """``crosscheck`` with its subcommands; each sets ``handler(args, parser, argv)`` and
    ``command_parser`` (the ``parser`` its handler is given)."""
    parser = argparse.ArgumentParser(
        prog="crosscheck", description="jaxlin against torch_ref and float64 truth, with size-aware verdicts."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (run, batch_probe, study, locate, train):
        command.add_parser(commands)
    for subcommand in commands.choices.values():
        subcommand.set_defaults(command_parser=subcommand)
    return parser
