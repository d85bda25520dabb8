"""``jitted``: the fastest way found to call a jaxlin module under ``jax.jit``."""

from __future__ import annotations

from collections.abc import Callable

import jax
from flax import nnx


def jitted(module: nnx.Module) -> Callable:
    """``module``'s forward compiled once: split the module, ``jax.jit`` a pure function of its state.

    ``graphdef, state = nnx.split(module)`` happens here, once, and so does flattening ``state``
    to its list of arrays; each call passes that list to a ``jax.jit``-compiled function that
    rebuilds the module (``nnx.merge``) and calls it. The compiled program is the one a hand-written
    pure function with the same math gives, and the per-call cost is jit's own dispatch: passing
    the ``nnx.State`` itself costs about 25 µs more per call here (its pytree is flattened on every
    call), and ``nnx.jit(lambda m, x: m(x))`` walks the whole module graph in Python on every
    call, about 0.25 ms — more than small layers take to run (docs/study.md).

    ``forward.lower(*inputs)`` lowers the compiled function like ``jax.jit(...).lower``, e.g. to
    read its HLO. The state is captured at this call: after changing parameters (an optimizer step), call
    ``jitted`` again, or split yourself and pass the new state to your own ``jax.jit`` function.

    Shape:
        whatever ``module`` takes and returns.

    >>> import jax.numpy as jnp
    >>> from jaxlin import Linear
    >>> forward = jitted(Linear(3, 2, rngs=nnx.Rngs(0)))
    >>> forward(jnp.ones((4, 3))).shape
    (4, 2)
    >>> "dot" in forward.lower(jnp.ones((4, 3))).as_text()
    True
    """
    graphdef, state = nnx.split(module)
    leaves, treedef = jax.tree.flatten(state)

    @jax.jit
    def forward(leaves, *inputs):
        return nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves))(*inputs)

    def call(*inputs):
        return forward(leaves, *inputs)

    call.lower = lambda *inputs: forward.lower(leaves, *inputs)  # for HLO inspection, as jax.jit has
    return call
