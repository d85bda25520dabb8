"""A module called once as one compiled program, not primitive by primitive: ``locate``'s rows judged
forward only (the whole model, an embedding table) ran eagerly, and XLA compiled every primitive of
every new shape on its own, about 25 ms each on the 2-core machine of docs/scale.md, dozens per row.

The program is traced afresh for each call (the module's code as it is now) with its arguments' arrays
as parameters and everything else (flags, sizes, ``None``) as constants, as the eager call sees them;
the module's variables go in as arguments too, so no weight is baked into the program. What cannot be
compiled (an output that is not arrays, a value a trace cannot take) runs eagerly, as before.

>>> import jaxlin
>>> layer = jaxlin.Linear(3, 2, rngs=nnx.Rngs(0))
>>> x = jnp.ones((4, 3))
>>> bool(jnp.all(called(layer, (x,), {}, True) == layer(x)))
True
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp  # noqa: F401 - the doctest's
import numpy as np
from flax import nnx

from crosscheck.porting.truth import TruthNotes, promoted_call


def called(module: nnx.Module, args: tuple, kwargs: dict, compiled: bool, notes: TruthNotes | None = None):
    """``module(*args, **kwargs)``, a float64 truth run's narrowing casts promoted into ``notes`` where
    given (:func:`crosscheck.porting.truth.promoted_call`): as one compiled program where ``compiled``
    and it can be, else eagerly (a model near the machine's size: one layer's float64 weights at a time).

    Shape:
        as the module takes and gives.
    """

    def call(layer, args, kwargs):
        run = lambda: layer(*args, **kwargs)  # noqa: E731
        return run() if notes is None else promoted_call(layer, run, notes)

    if compiled:
        before = copy.deepcopy(notes)
        try:
            return _compiled_call(module, args, kwargs, call)
        except Exception:  # noqa: BLE001 - what a trace cannot take runs as it is: its error, if any, there
            if notes is not None:
                notes.promoted, notes.limited = before.promoted, before.limited
    return call(module, args, kwargs)


def _compiled_call(module: nnx.Module, args: tuple, kwargs: dict, call):
    leaves, tree = jax.tree.flatten((args, kwargs))
    arrays = [i for i, leaf in enumerate(leaves) if isinstance(leaf, (jax.Array, np.ndarray))]
    graphdef, state = nnx.split(module)

    def program(state, values):
        filled = list(leaves)
        for i, value in zip(arrays, values, strict=True):
            filled[i] = value
        given_args, given_kwargs = jax.tree.unflatten(tree, filled)
        return call(nnx.merge(graphdef, state), given_args, given_kwargs)

    return jax.jit(program)(state, [leaves[i] for i in arrays])
