"""``crosscheck locate``'s random inputs: ``--input KIND:SHAPE`` and ``--input-shape SHAPE``.

Every spec the parser accepts can be built: the sizes are positive ASCII integers, a vocabulary is
between 1 and :data:`MAX_VOCAB`, a mask has (batch, seq) or more axes, and one input, like all of them
together, takes at most :data:`MAX_INPUT_BYTES` (each element is made as 8 bytes: float64 or int64).

>>> spec = input_spec("tokens=100:2,16")
>>> spec.kind, spec.shape, spec.high, spec.nbytes
('tokens', (2, 16), 100, 256)
>>> input_spec("normal:100000,100000,100000")
Traceback (most recent call last):
argparse.ArgumentTypeError: invalid input 'normal:100000,100000,100000'
(1,000,000,000,000,000 elements take 7.1 PiB; the inputs may take at most 1.0 GiB together)
>>> input_spec("mask:5")
Traceback (most recent call last):
argparse.ArgumentTypeError: invalid input 'mask:5' (a mask needs (batch, seq) or more axes; got 1 axis)
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field

import numpy as np

from crosscheck.cli.options import is_digits

KINDS = ("normal", "tokens", "mask")
ITEM_BYTES = 8  # normal: float64, tokens and mask: int64
MAX_INPUT_BYTES = 2**30
"""All inputs together, as made (8 bytes an element): 1 GiB, far above what a layer-by-layer check of a
port wants at the command line (the float64 truth and every layer's activations come on top)."""
MAX_VOCAB = 2**31  # token ids stay below 2**31: JAX without x64 holds them as int32
FORMS = "normal:2,16,64, tokens=VOCAB:2,16 or mask:2,16; positive sizes"


def byte_size(count: int) -> str:
    """``count`` bytes in binary units.

    >>> byte_size(512), byte_size(2**30), byte_size(3 * 2**20), byte_size(2**70)
    ('512 B', '1.0 GiB', '3.0 MiB', '1024.0 EiB')
    """
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    power = 0
    while power < len(units) - 1 and count >= 1024 ** (power + 1):
        power += 1
    return f"{count} B" if power == 0 else f"{count / 1024**power:.1f} {units[power]}"


@dataclass(frozen=True)
class InputSpec:
    """One random input: ``normal`` N(0, 1) floats, ``tokens=V`` integers in [0, V), or a 0/1 ``mask``
    (the last row padded after two thirds of its length). ``given`` is the option as written."""

    kind: str
    shape: tuple[int, ...]
    high: int = 0
    given: str = field(default="", compare=False)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * ITEM_BYTES

    def make(self, rng: np.random.Generator) -> np.ndarray:
        if self.kind == "tokens":
            return rng.integers(0, self.high, self.shape)
        if self.kind == "mask":
            mask = np.ones(self.shape, np.int64)
            mask[-1, (2 * self.shape[-1]) // 3 :] = 0
            return mask
        return rng.standard_normal(self.shape)


def _checked(spec: InputSpec, shown: str) -> InputSpec:
    """``spec``, or ArgumentTypeError naming what cannot be built."""
    if spec.kind == "tokens" and not 1 <= spec.high <= MAX_VOCAB:
        problem = f"a vocabulary of 1 to {MAX_VOCAB} token ids for tokens=VOCAB; got {spec.high}"
    elif spec.kind == "mask" and len(spec.shape) < 2:
        problem = f"a mask needs (batch, seq) or more axes; got {len(spec.shape)} axis"
    elif spec.nbytes > MAX_INPUT_BYTES:
        count = math.prod(spec.shape)
        problem = (
            f"{count:,} elements take {byte_size(spec.nbytes)}; "
            f"the inputs may take at most {byte_size(MAX_INPUT_BYTES)} together"
        )
    else:
        return spec
    raise argparse.ArgumentTypeError(f"invalid {shown} ({problem})")


def input_spec(text: str) -> InputSpec:
    """``normal:2,16,64``, ``tokens=100:2,16`` or ``mask:2,16``."""
    kind, _, shape = text.partition(":")
    kind, _, high = kind.partition("=")
    sizes = [part.strip() for part in shape.split(",") if part.strip()]
    valid = kind in KINDS and sizes and all(is_digits(s) and int(s) > 0 for s in sizes)
    if not valid or (kind == "tokens") != bool(high) or (high and not is_digits(high)):
        raise argparse.ArgumentTypeError(f"invalid input {text!r} ({FORMS})")
    spec = InputSpec(kind, tuple(int(s) for s in sizes), int(high or 0), f"--input {text}")
    return _checked(spec, f"input {text!r}")


def shape_spec(text: str) -> InputSpec:
    """``--input-shape 2,16,64``: one N(0, 1) input of that shape."""
    sizes = [part.strip() for part in text.split(",") if part.strip()]
    if not sizes or not all(is_digits(s) and int(s) > 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"invalid shape {text!r} (positive sizes, comma-separated: 2,16,64)")
    spec = InputSpec("normal", tuple(int(s) for s in sizes), 0, f"--input-shape {text}")
    return _checked(spec, f"shape {text!r}")


def specs_or_exit(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[InputSpec]:
    """The inputs asked for (``--input`` in order, then ``--input-shape``), or exit 2: none given, or
    more than :data:`MAX_INPUT_BYTES` together."""
    specs = (args.input or []) + ([args.input_shape] if args.input_shape else [])
    if not specs:
        parser.error("give the inputs: --input KIND:SHAPE (repeatable) or --input-shape SHAPE")
    total = sum(spec.nbytes for spec in specs)
    if total > MAX_INPUT_BYTES:
        parser.error(
            f"{given(specs)}: the inputs take {byte_size(total)} together; "
            f"at most {byte_size(MAX_INPUT_BYTES)}"
        )
    return specs


def given(specs: list[InputSpec]) -> str:
    """The input options as the command line gave them, e.g. ``--input tokens=100:2,16 --input mask:2,16``."""
    return " ".join(spec.given for spec in specs)
