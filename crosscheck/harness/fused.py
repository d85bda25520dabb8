"""Many JAX evaluations in one compiled program: what makes the checks of ``crosscheck run`` cheap.

A check needs three evaluations of its module (working dtype, float64 truth, magnitudes) and the run
checks dozens of modules. XLA:CPU compiles one program holding many small, independent computations
in a fraction of the time the same computations take as separate programs (docs/crosscheck-run.md).
Each computation is :func:`crosscheck.harness.evaluate.jitted_forward_and_grads`, nested: evaluations
of one structure (a case's float64 truth and magnitudes, in both working dtypes) are traced once.
Results are the same bits as each evaluation compiled alone (tests/crosscheck/harness/test_fused.py).
Requests that are equal (the same structure, the same values) are computed once.

>>> import jaxlin
>>> layer = jaxlin.Linear(3, 2, rngs=nnx.Rngs(0))
>>> x = np.ones((4, 3), np.float32)
>>> requests = [Request(layer, (x,), np.ones((4, 2))), Request(layer, (2 * x,), None, grads=False)]
>>> first, second = evaluate_all(requests)
>>> first.output.shape, sorted(first.grads), second.grads
((4, 2), ['bias', 'input', 'weight'], {})
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from crosscheck.harness.evaluate import Evaluation, evaluate_jax, evaluation_of, jitted_forward_and_grads
from crosscheck.weights.tree import Rename


@dataclass(frozen=True)
class Request:
    """One evaluation: ``module`` forward (and backward, with ``cotangent``) on NumPy ``inputs``;
    ``place`` puts the inputs on devices (such a request is evaluated alone).

    Shape:
        inputs as the module takes them; ``cotangent`` has the output's shape.
    """

    module: nnx.Module
    inputs: tuple
    cotangent: np.ndarray | None
    grads: bool = True
    rename: Rename = None
    place: Callable[[tuple], tuple] | None = None


def _all_forward_and_grads(structure, params, rests, inputs, cotangents):
    return [
        jitted_forward_and_grads(graphdef, p, r, x, ct, grads)
        for (graphdef, grads), p, r, x, ct in zip(structure, params, rests, inputs, cotangents, strict=True)
    ]


_program = jax.jit(_all_forward_and_grads, static_argnames=("structure",))


def _fingerprint(graphdef, grads: bool, leaves) -> tuple:
    digest = hashlib.sha1()
    for leaf in leaves:
        array = np.asarray(leaf)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return graphdef, grads, digest.hexdigest()


def evaluate_all(requests: list[Request]) -> list[Evaluation]:
    """Every request's :class:`~crosscheck.harness.evaluate.Evaluation`, in order: all of them from one
    compiled program (under ``jax.enable_x64``, as :func:`crosscheck.check` evaluates), or one by one
    when any request places its inputs (sharded inputs and single-device ones cannot share a program)."""
    with jax.enable_x64(True):
        if any(request.place is not None for request in requests):
            return [
                evaluate_jax(r.module, r.inputs, r.cotangent, grads=r.grads, rename=r.rename, place=r.place)
                for r in requests
            ]
        unique: dict[tuple, int] = {}
        order, parts = [], []
        for request in requests:
            graphdef, params, rest = nnx.split(request.module, nnx.Param, ...)
            inputs = tuple(jnp.asarray(a) for a in request.inputs)
            cotangent = jnp.asarray(request.cotangent) if request.grads else None
            leaves = jax.tree.leaves((params, rest, inputs, cotangent))
            key = _fingerprint(graphdef, request.grads, leaves)
            if key not in unique:
                unique[key] = len(parts)
                parts.append((graphdef, request.grads, params, rest, inputs, cotangent))
            order.append(unique[key])
        structure = tuple((graphdef, grads) for graphdef, grads, *_ in parts)
        computed = _program(structure, *([part[i] for part in parts] for i in range(2, 6)))
        return [
            evaluation_of(parts[i][0], parts[i][3], computed[i], grads=r.grads, rename=r.rename)
            for r, i in zip(requests, order, strict=True)
        ]
