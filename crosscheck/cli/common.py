"""What every command does the same way: the output directory, the device, the console and its
progress bars.

>>> import argparse, tempfile
>>> out_dir_or_exit(argparse.ArgumentParser(), "--out", tempfile.mkdtemp())
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shlex
import sys
import tempfile
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from crosscheck.cli import options
from crosscheck.reporting import environment


def flat(message) -> str:
    """``message`` (an exception's, say) on one line, its whitespace runs made single spaces.

    >>> flat(ValueError("a\\n   b"))
    'a b'
    """
    return " ".join(str(message).split())


def out_dir_or_exit(parser: argparse.ArgumentParser, option: str, out: str) -> None:
    """Create ``out`` (or find it) and prove it writable by writing a file there, or exit 2 saying why —
    before any work, so that no result is lost at the end."""
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".crosscheck-write-test-"):
            pass
    except OSError as error:
        parser.error(f"{option} {out}: cannot write there ({error.strerror or error})")


def chosen_or_exit(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    pattern: str,
    names: list[str],
    *,
    option: str,
    noun: str,
) -> tuple[list[str], list[str]]:
    """The names ``pattern`` selects (:func:`crosscheck.cli.options.select_names`) and the dtypes asked
    for, once ``--device`` is known to be here; or exit 2 saying what does not fit."""
    try:
        selected = options.select_names(pattern, names, option=option, noun=noun)
    except ValueError as error:
        parser.error(str(error))
    jax_device_or_exit(parser, args.device)
    return selected, options.merged_dtypes(args.dtype)


def extra_or_exit(command: str, module: str, extra: str) -> None:
    """Exit 2 with one line naming the install command when ``module`` (an optional extra's) is missing —
    before any work, so that a command does not fail at the end, after its work, for want of it.

    >>> extra_or_exit("study", "json", "plot")  # present: nothing happens
    """
    if importlib.util.find_spec(module) is None:
        print(
            f"crosscheck {command}: error: needs {module} (the {extra} extra): pip install -e '.[{extra}]'",
            file=sys.stderr,
        )
        raise SystemExit(2)


def jax_device_or_exit(parser: argparse.ArgumentParser, device: str):
    """The JAX device for ``--device``, or exit 2 saying it is not available here."""
    from crosscheck.runtime.devices import jax_device  # JAX: loaded by the commands, not by --help

    try:
        return jax_device(device)
    except RuntimeError as error:
        parser.error(f"--device {device}: not available here ({error})")


def console() -> Console:
    """The terminal: the full width on a TTY, wide enough for the tables in a log."""
    return Console(width=None if sys.stdout.isatty() else 250)


def progress_bars() -> Progress:
    """Progress bars on standard error, so that standard output stays the summary."""
    columns = (TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=Console(stderr=True))


def write_or_report(write, what: str) -> tuple[str, ...] | None:
    """``write()``, or ``None`` after printing one line saying that ``what`` could not be written."""
    try:
        return write()
    except OSError as error:
        print(
            f"crosscheck: could not write {what} ({error.strerror or error}); "
            "the summary above is all that was kept"
        )
        return None


@dataclass
class Session:
    """What a command runs inside: the precision record, the machine, and the progress bars."""

    precision: dict
    machine: dict
    progress: Progress

    def environment(self, argv: list[str], **extra) -> dict:
        """The report's environment record for ``crosscheck <argv>``."""
        command = shlex.join(["crosscheck", *argv])
        return environment.environment(command, device=self.machine, precision=self.precision, **extra)


@contextlib.contextmanager
def session(mode: str, device: str):
    """The precision ``mode`` in force, JAX's default device set, progress bars shown (standard error)."""
    import jax  # JAX and PyTorch: loaded by the commands, not by --help

    from crosscheck.runtime import precision
    from crosscheck.runtime.devices import device_info, jax_device

    with precision.precision_mode(mode), jax.default_device(jax_device(device)):
        recorded, machine = precision.describe_precision(mode), device_info(device)
        with progress_bars() as progress:
            yield Session(recorded, machine, progress)
