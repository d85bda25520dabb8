"""module:factory targets that are wrong in the ways ``crosscheck locate`` must refuse (exit 2, one line)."""

import sys

from flax import nnx


def returns_none():
    return None


def plain():
    return 0


def returns_a_function():
    return plain


def exits_0():
    sys.exit(0)


def raises_multiline():
    raise RuntimeError("cannot load the checkpoint\n  (a second line that must not be printed)")


class Counter(nnx.Module):
    """A JAX model that counts its calls in a variable (as batch statistics would change)."""

    def __init__(self):
        self.calls = nnx.BatchStat(0)
        self.linear = nnx.Linear(16, 4, rngs=nnx.Rngs(0))

    def __call__(self, x):
        self.calls.set_value(self.calls.get_value() + 1)
        return self.linear(x)
