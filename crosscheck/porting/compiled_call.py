"""A module called once as one compiled program, not primitive by primitive: ``locate``'s rows judged
forward only (the whole model, an embedding table, every row of a locate without gradients) ran eagerly,
and XLA compiled every primitive of every new shape on its own, about 25 ms each on the 2-core machine of
docs/scale.md, dozens per row.

The program is traced afresh for each call (the module's code as it is now) with its arguments' arrays
as parameters and everything else (flags, sizes, ``None``) as constants, as the eager call sees them;
the module's variables go in as arguments too, so no weight is baked into the program. Within
:func:`crosscheck.porting.fused.traced_once` (one ``locate``), a call of the same structure, constants and
shapes as one before runs that one's program, its truth notes given again: the rows of a model's repeated
layers compile one. What cannot be compiled (an output that is not arrays, a value a trace cannot take)
runs eagerly, as before.

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

from crosscheck.porting.fused import argument_shapes, seen_through, traced_programs
from crosscheck.porting.truth import TruthNotes, promoted_call


def called(module: nnx.Module, args: tuple, kwargs: dict, compiled: bool, notes: TruthNotes | None = None):
    """``module(*args, **kwargs)``, a float64 truth run's narrowing casts promoted into ``notes`` where
    given (:func:`crosscheck.porting.truth.promoted_call`): as one compiled program where ``compiled``
    and it can be, else eagerly (a model near the machine's size: one layer's float64 weights at a time).

    Shape:
        as the module takes and gives.
    """
    if compiled:
        own = None if notes is None else TruthNotes()  # this call's promotions alone: kept with its program
        try:
            returned, said = _compiled_call(module, args, kwargs, own)
        except Exception:  # noqa: BLE001 - what a trace cannot take runs as it is: its error, if any, there
            pass
        else:
            if notes is not None:
                notes.merge(said)
            return returned
    return _call(module, args, kwargs, notes)


def _call(layer: nnx.Module, args: tuple, kwargs: dict, notes: TruthNotes | None):
    """``layer(*args, **kwargs)``, its narrowing casts promoted into ``notes`` where given."""
    run = lambda: layer(*args, **kwargs)  # noqa: E731
    return run() if notes is None else promoted_call(layer, run, notes)


def _compiled_call(module: nnx.Module, args: tuple, kwargs: dict, notes: TruthNotes | None):
    """The call's outputs and the promotions its trace noted: from a program of the same structure,
    constants and shapes traced before in this ``traced_once`` block, else from one traced now."""
    leaves, tree = jax.tree.flatten((args, kwargs))
    is_array = [isinstance(leaf, (jax.Array, np.ndarray)) for leaf in leaves]
    arrays = [i for i, array in enumerate(is_array) if array]
    graphdef, state = nnx.split(module)
    values = [leaves[i] for i in arrays]
    traced, key = traced_programs(), None
    if traced is not None:
        constants = tuple((i, leaves[i]) for i, array in enumerate(is_array) if not array)
        shapes = argument_shapes((state, values))
        device, x64 = jax.config.jax_default_device, bool(jax.config.jax_enable_x64)
        key = ("called", device, x64, seen_through(graphdef), tree, constants, shapes, notes is None)
        try:
            hash(key)
        except TypeError:  # a constant that is not hashable: this call's program is its own
            key = None
    if key is not None and key in traced:
        program, said = traced[key]
        return program(state, values), copy.deepcopy(said)

    def run(state, values):
        filled = list(leaves)
        for i, value in zip(arrays, values, strict=True):
            filled[i] = value
        given_args, given_kwargs = jax.tree.unflatten(tree, filled)
        return _call(nnx.merge(graphdef, state), given_args, given_kwargs, notes)

    program = jax.jit(run)
    returned = program(state, values)
    if key is not None:
        traced[key] = program, copy.deepcopy(notes)
    return returned, notes
