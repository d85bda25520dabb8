"""The command line's vocabulary: argument types, defaults and name selection — no JAX or PyTorch
import, so ``crosscheck --help`` answers at once.

>>> dtypes("float32,float64")
['float32', 'float64']
>>> compact_names(["perhead-einsum-bmm", "perhead-einsum-vmap", "perhead-vmap-bmm", "perhead-vmap-vmap"])
'perhead-{einsum,vmap}-{bmm,vmap}'

Numbers are ASCII digits only: ``str.isdigit`` also accepts ``"²"``, which ``int`` then refuses.

>>> is_digits("12"), is_digits("²"), is_digits("١٢"), is_digits("")
(True, False, False, False)
"""

from __future__ import annotations

import argparse
import fnmatch
import itertools
import math

from crosscheck.probes.batch_sizes import BatchSizes
from crosscheck.runtime.choices import (  # noqa: F401 (re-exported for the command modules)
    DEFAULT_DTYPES,
    DEFAULT_MAX_BATCH,
    DEFAULT_REPEATS,
    DEVICES,
    DTYPES,
    PRECISIONS,
    PROBE_MODES,
    RUN_PROBES,
    TIMED_ROUNDS,
)
from crosscheck.runtime.mesh_specs import MeshSpec, parse_mesh

DEFAULT_OUT = "crosscheck-out"
DEFAULT_STUDY_OUT = "crosscheck-study"
SEED_LIMIT = 2**32  # NumPy and torch both take seeds in [0, 2**32)


def dtypes(text: str) -> list[str]:
    """``"float32,bfloat16"`` as a list of known dtypes."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    bad = [name for name in names if name not in DTYPES] or ([] if names else [text])
    if bad:
        raise argparse.ArgumentTypeError(
            f"invalid dtype {bad[0]!r} (choose from {', '.join(DTYPES)}; several comma-separated)"
        )
    return names


def merged_dtypes(given: list[list[str]] | None) -> list[str]:
    """Every ``--dtype`` given (repeated or comma-separated), in order, each once; the default without any."""
    return list(dict.fromkeys(itertools.chain.from_iterable(given or [DEFAULT_DTYPES])))


def is_digits(text: str) -> bool:
    """Whether ``text`` is one or more ASCII digits (what ``int`` reads as a non-negative integer)."""
    return text.isascii() and text.isdigit()


def count(text: str, least: int = 1, most: int | None = None, why: str = "") -> int:
    """A whole number ``>= least`` (and ``<= most``, with the reason ``why`` for that limit).

    >>> count("3"), count("0", least=0)
    (3, 0)
    >>> count("11", most=10, why="a reason")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: invalid count '11' (an integer from 1 to 10; a reason)
    """
    if not is_digits(text.strip()) or int(text) < least or (most is not None and int(text) > most):
        limits = f">= {least}" if most is None else f"from {least} to {most}"
        reason = f"; {why}" if why else ""
        raise argparse.ArgumentTypeError(f"invalid count {text!r} (an integer {limits}{reason})")
    return int(text)


def seed(text: str) -> int:
    """A seed NumPy and torch both accept: an integer in ``[0, 2**32)``."""
    if not is_digits(text.strip()) or int(text) >= SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r} (an integer from 0 to {SEED_LIMIT - 1})")
    return int(text)


def batch_sizes(text: str) -> BatchSizes:
    """``"1,2,8"`` or ``"1-4096"``, kept as ranges (the memory they need is checked by the command)."""
    if not text.isascii():
        raise argparse.ArgumentTypeError(f"invalid batch sizes {text!r} (ASCII digits, e.g. 1,2,8 or 1-4096)")
    try:
        return BatchSizes.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def mesh(text: str) -> MeshSpec:
    """``data=2,heads=4``: a device mesh's axes and sizes (each an ASCII-digit count: ``data=²`` is refused
    here, where ``int`` would fail).

    >>> mesh("data=²")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: invalid mesh 'data=²': the size '²' of axis 'data' is not a whole number of \
devices (ASCII digits, e.g. data=2,heads=4)
    """
    for part in (p.strip() for p in text.split(",")):
        name, equals, size = part.partition("=")
        if equals and not is_digits(size.strip()):
            raise argparse.ArgumentTypeError(
                f"invalid mesh {text!r}: the size {size!r} of axis {name!r} is not a whole number of devices "
                "(ASCII digits, e.g. data=2,heads=4)"
            )
    try:
        return parse_mesh(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("mesh: ")) from None


def modes(text: str) -> list[str]:
    """Probe call paths, comma-separated."""
    chosen = [mode.strip() for mode in text.split(",") if mode.strip()]
    bad = [mode for mode in chosen if mode not in PROBE_MODES] or ([] if chosen else [text])
    if bad:
        raise argparse.ArgumentTypeError(f"invalid mode {bad[0]!r} (choose from {', '.join(PROBE_MODES)})")
    return chosen


def compact_names(names: list[str]) -> str:
    """Names grouped by family; a family that is a full product of options reads ``a-{b,c}-{d,e}``."""
    parts = []
    for _, group in itertools.groupby(names, key=lambda name: name.split("-")[0]):
        group = list(group)
        split = [name.split("-") for name in group]
        options = (
            [list(dict.fromkeys(column)) for column in zip(*split, strict=True)]
            if len({len(s) for s in split}) == 1
            else []
        )
        if len(group) > 1 and options and len(group) == math.prod(len(o) for o in options):
            parts.append("-".join(o[0] if len(o) == 1 else "{" + ",".join(o) + "}" for o in options))
        else:
            parts.extend(group)
    return ", ".join(parts)


def select_names(pattern: str, names: list[str], *, option: str, noun: str) -> list[str]:
    """Names matching any comma-separated glob of ``pattern``, in registry order.

    Raises:
        ValueError: a glob matches nothing, e.g. "--cases: 'x' matches no case; the cases are ...".
    """
    globs = [glob.strip() for glob in pattern.split(",") if glob.strip()] or ["*"]
    for glob in globs:
        if not fnmatch.filter(names, glob):
            raise ValueError(f"{option}: {glob!r} matches no {noun}; the {noun}s are {compact_names(names)}")
    return [name for name in names if any(fnmatch.fnmatchcase(name, glob) for glob in globs)]


def add_shared_arguments(parser: argparse.ArgumentParser, *, out: str, seeded: str) -> None:
    """The options every command that runs modules takes: ``--dtype``, ``--precision``, ``--device``,
    ``--seed`` (what it seeds: ``seeded``) and ``--out`` (default ``out``)."""
    parser.add_argument(
        "--dtype",
        action="append",
        type=dtypes,
        metavar="DTYPES",
        help=f"working dtypes, comma-separated or repeated: {', '.join(DTYPES)} (default: float32,bfloat16)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="pinned",
        help="pinned: highest matmul precision, TF32 off (default); default: each framework's defaults",
    )
    parser.add_argument(
        "--device", choices=DEVICES, default="auto", help="where to run (default: auto, what JAX reports)"
    )
    parser.add_argument("--seed", type=seed, default=0, help=f"seed for {seeded} (default: 0)")
    parser.add_argument("--out", default=out, metavar="DIR", help=f"output directory (default: {out})")
