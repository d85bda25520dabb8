"""``main``, the entry point: parse the command line, run the command, return its exit status.

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
        args = parser.parse_args(argv)
        return args.handler(args, args.command_parser, argv)  # usage errors show the subcommand's usage
    except SystemExit as exit_:  # argparse's usage errors (2) and --help (0)
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
