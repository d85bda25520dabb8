"""``locate``'s float64 pass of the JAX model as one compiled program: the same calls as the eager
:func:`crosscheck.porting.capture.capture_jax`, whose hundred-odd operations each compile a program
of their own the first time (on a 2-core machine most of a small model's pass).

The pass is traced once with every submodule's ``__call__`` recorded; each recorded array (arguments,
outputs) becomes an output of the program, and the :class:`~crosscheck.porting.capture.Call` records
are rebuilt outside around the computed values and the model's own layers. What a compiled pass cannot
show as the eager one does, it does not try: a pass that changes the model's state (a cache, a counter:
its layers' states before their calls would not be those before the pass), that records something
other than arrays and plain values, or that cannot be traced, runs eagerly instead.

>>> import jaxlin, jax.numpy as jnp
>>> from crosscheck.porting.truth import TruthNotes
>>> head = jaxlin.PooledHead(4, 3, 2, rngs=nnx.Rngs(0))
>>> with jax.enable_x64(True):
...     calls, output = compiled_capture(head, (jnp.ones((2, 5, 4)),), {}, TruthNotes())
>>> [call.path for call in calls], output.shape
(['', 'projector', 'classifier'], (2, 2))
"""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx

from crosscheck.porting.capture import Call, capture_jax
from crosscheck.porting.evaluate import split_keywords
from crosscheck.porting.modes import snapshot
from crosscheck.porting.truth import TruthNotes, promoted_call
from crosscheck.weights.tree import submodules

_PLAIN = (type(None), bool, int, float, complex, str)


class _NotCompiled(Exception):
    """The pass shows something a compiled program cannot give back as the eager pass does."""


def compiled_capture(module: nnx.Module, arrays: tuple, keywords: dict, notes: TruthNotes):
    """The calls and output of ``module(*arrays, **keywords)`` with narrowing casts promoted (``notes``),
    as :func:`~crosscheck.porting.truth.promoted_call` around :func:`capture_jax` gives them; from one
    compiled program where the pass allows it (see the module's docstring), else eagerly. Call under
    ``jax.enable_x64``.

    Shape:
        inputs as the module takes them.
    """
    try:
        return _compiled(module, arrays, keywords, notes)
    except Exception:  # noqa: BLE001 - the eager pass says what is wrong, if anything is
        return promoted_call(module, lambda: capture_jax(module, arrays, keywords), notes)


def _compiled(module: nnx.Module, arrays: tuple, keywords: dict, notes: TruthNotes):
    traced, constants = split_keywords(keywords)
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)  # rest: the state a pass may change
    found: dict = {}
    said = TruthNotes()  # the trace's notes, kept where the compiled pass is the one used

    def passed(params, rest, arrays, traced):
        clone = nnx.merge(graphdef, params, rest)
        calls, output = promoted_call(
            clone, lambda: capture_jax(clone, arrays, {**traced, **dict(constants)}), said
        )
        records = [(call.path, call.order, call.count, call.args, call.kwargs, call.output) for call in calls]
        leaves, tree = jax.tree.flatten((records, output))
        kept = [i for i, leaf in enumerate(leaves) if isinstance(leaf, jax.Array)]
        if any(not isinstance(leaf, (jax.Array, *_PLAIN)) for leaf in leaves):
            raise _NotCompiled("a call holds something other than arrays and plain values")
        found.update(tree=tree, leaves=leaves, kept=kept)
        return [leaves[i] for i in kept], nnx.state(clone, nnx.Not(nnx.Param))

    values, after = jax.jit(passed)(params, rest, arrays, traced)
    if not _same_state(rest, after):
        raise _NotCompiled("the pass changed the model's state")
    leaves = list(found["leaves"])
    for i, value in zip(found["kept"], values, strict=True):
        leaves[i] = value
    records, output = jax.tree.unflatten(found["tree"], leaves)
    notes.merge(said)
    layers = dict(submodules(module))
    calls = [
        Call(
            path,
            order,
            args,
            kwargs,
            output=out,
            module=layers[path],
            state=snapshot(layers[path]),
            count=count,
        )
        for path, order, count, args, kwargs, out in records
    ]
    return calls, output


def _same_state(before, after) -> bool:
    """Whether every variable that is not a parameter holds what it held before (a key by its bits)."""
    old, new = jax.tree.leaves(before), jax.tree.leaves(after)
    if len(old) != len(new):
        return False
    for a, b in zip(old, new, strict=True):
        if jax.dtypes.issubdtype(getattr(a, "dtype", np.float64), jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        if np.shape(a) != np.shape(b) or not np.array_equal(np.asarray(a), np.asarray(b)):
            return False
    return True
