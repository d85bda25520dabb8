"""``main``, the entry point: parse the command line, run the command, return its exit status.

A usage error inside a subcommand — an unknown option included, which argparse would otherwise report
with the top-level ``usage: crosscheck [-h] COMMAND ...`` — shows that subcommand's usage.

>>> main(["run", "--precision", "fast"])
2
"""

from __future__ import annotations

import sys

from crosscheck.cli.parser import build_parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return the exit status:
    0 all pass, 1 a check failed, 2 a usage error (``--help``: 0)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:  # unknown options: the subcommand's when they follow its name, else crosscheck's own
            after = argv.index(args.command) < argv.index(extras[0]) if extras[0] in argv else True
            (args.command_parser if after else parser).error(f"unrecognized arguments: {' '.join(extras)}")
        return args.handler(args, args.command_parser, argv)  # usage errors show the subcommand's usage
    except SystemExit as exit_:  # argparse's usage errors (2) and --help (0)
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
