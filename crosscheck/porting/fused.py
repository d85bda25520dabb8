"""Many JAX evaluations in one compiled program: what makes the checks of ``crosscheck run`` cheap.

A check needs three evaluations of its module (working dtype, float64 truth, magnitudes) and the run
checks dozens of modules. XLA:CPU compiles one program holding many small, independent computations
in a fraction of the time the same computations take as separate programs (docs/crosscheck-run.md).
Each computation is :func:`crosscheck.porting.evaluate.forward_and_grads` under a nested ``jax.jit``:
evaluations of one structure (a case's float64 truth and magnitudes, in both working dtypes) are traced
once. Results are the same bits as each evaluation compiled alone (tests/crosscheck/porting/test_fused.py).
Requests that are equal (the same structure, the same values) are computed once.

Every call traces afresh: ``jax.jit`` keys its cache on the module's structure, not on its code, so a
port whose ``__call__`` was edited since (a notebook) would otherwise get the old program. Tracing is
cheap; compiling is not, so compiled programs are kept by the text of the lowered program: an edit
that changes the computation changes the text, and one that does not reuses the compiled program.
Within :func:`traced_once` (one ``locate`` call, whose code cannot change under it) a program is traced
once per structure and argument shapes: the rows of a model's repeated layers share one.

>>> import jaxlin
>>> layer = jaxlin.Linear(3, 2, rngs=nnx.Rngs(0))
>>> x = np.ones((4, 3), np.float32)
>>> requests = [Request(layer, (x,), np.ones((4, 2))), Request(layer, (2 * x,), None, grads=False)]
>>> first, second = evaluate_all(requests)
>>> first.output.shape, sorted(first.grads), second.grads
((4, 2), ['bias', 'input', 'weight'], {})
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import hashlib
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from crosscheck.porting.evaluate import (
    Evaluation,
    differentiated,
    evaluate_jax,
    evaluation_of,
    fresh_forward_and_grads,
    jax_keywords,
    split_keywords,
)
from crosscheck.porting.truth import TruthNotes
from crosscheck.weights.arrays import jax_array
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
    cotangent: dict | np.ndarray | None
    grads: bool = True
    rename: Rename = None
    place: Callable[[tuple], tuple] | None = None
    kwargs: dict | None = None  # keyword arguments of the module (arrays and constants)
    promote: bool = False  # a float64 truth run: narrowing casts promoted (crosscheck.porting.truth)
    x64: bool = True  # traced in 64-bit mode: the float64 runs; a working-dtype run of float32 is not
    widen: bool = False  # floating parameters widened to float64 in the program: the gradients are float64's
    select: frozenset[tuple] | None = None  # the graph paths of the parameters differentiated (None: all)


def _fresh_program():
    """One jitted program for many evaluations, traced anew (see the module's docstring)."""
    evaluate = fresh_forward_and_grads()

    def all_forward_and_grads(structure, params, rests, inputs, cotangents, keywords):
        return [
            evaluate(graphdef, p, r, x, ct, grads, k, constants, notes, widen)
            for (graphdef, grads, constants, widen, notes), p, r, x, ct, k in zip(
                structure, params, rests, inputs, cotangents, keywords, strict=True
            )
        ]

    return jax.jit(all_forward_and_grads, static_argnames=("structure",))


_COMPILED: OrderedDict[str, object] = OrderedDict()
"""Compiled programs by the SHA-1 of their lowered text and the default device, the latest kept."""
_KEEP = 64


_TRACED: contextvars.ContextVar[dict | None] = contextvars.ContextVar("crosscheck_traced", default=None)


@contextlib.contextmanager
def traced_once():
    """Within: a program whose structure (graph definitions, options) and arguments (tree, shapes,
    dtypes, placement) were traced before in this block runs that compiled program again, its truth notes
    given again, without tracing. For one call whose code cannot change while it runs (``locate``'s rows);
    the block's programs are dropped at its end."""
    token = _TRACED.set({})
    try:
        yield
    finally:
        _TRACED.reset(token)


def traced_programs() -> dict | None:
    """The programs traced in the enclosing :func:`traced_once` block, by key (``None`` outside one):
    :mod:`crosscheck.porting.compiled_call` keeps its own there too."""
    return _TRACED.get()


def argument_shapes(arguments) -> tuple:
    """The tree, and each leaf's shape, dtype and placement: what a traced program depends on."""
    leaves, tree = jax.tree.flatten(arguments)
    shapes = tuple(
        (
            np.shape(leaf),
            str(getattr(leaf, "dtype", type(leaf))),
            getattr(leaf, "weak_type", False),
            getattr(leaf, "sharding", None),
        )
        for leaf in leaves
    )
    return tree, shapes


def _program(structure, arguments) -> Callable[[], object]:
    """The program of ``structure`` on ``arguments``, traced now; calling what is returned compiles it
    (or finds it compiled). Tracing holds the interpreter, compiling does not: ``evaluate_all`` traces
    every group first, so that torch's runs beside it overlap the tracing, not XLA's compiling."""
    traced = _TRACED.get()
    if traced is None:
        lowered = _lowered(structure, arguments)
        return lambda: _compiled(lowered)
    tree, shapes = argument_shapes(arguments)
    # a part of the structure: graphdef, grads, constants, widen, notes (a float64 run's, else None)
    options = tuple(((seen_through(part[0]), *part[1:-1]), part[-1] is None) for part in structure)
    key = (jax.config.jax_default_device, bool(jax.config.jax_enable_x64), options, tree, shapes)
    if key in traced:
        program, said = traced[key]
        for (*_, notes), traced_notes in zip(structure, said, strict=True):
            if notes is not None:
                notes.merge(traced_notes)
        return lambda: program
    lowered = _lowered(structure, arguments)
    said = [copy.deepcopy(notes) for *_, notes in structure]

    def compiled():
        program = _compiled(lowered)
        traced[key] = program, said
        return program

    return compiled


def seen_through(graphdef):
    """The graph definition with each ``functools.partial`` held as a static attribute (an activation
    with its options) keyed by its function and arguments: a partial is equal only to itself, so each
    instance of a repeated layer holding its own would otherwise be traced again."""
    attributes = getattr(graphdef, "attributes", None)
    if attributes is None:
        return graphdef
    nodes, leaves = tuple(graphdef.nodes), graphdef.num_leaves
    return type(graphdef), nodes, tuple(_attribute_key(a) for a in attributes), leaves


def _attribute_key(attribute):
    name, value = attribute
    held = getattr(value, "value", None)
    if not isinstance(held, functools.partial):
        return attribute
    try:
        key = (name, "partial", held.func, held.args, tuple(sorted(held.keywords.items())))
        hash(key)
    except TypeError:  # an argument that is not hashable: the partial itself
        return attribute
    return key


def _lowered(structure, arguments) -> tuple[str, object]:
    """The traced program of ``structure`` on ``arguments`` and the key its compiled program is kept by."""
    lowered = _fresh_program().lower(structure, *arguments)
    # jit drops unused arguments from the program: their tree and shapes are part of the key too
    tree, shapes = argument_shapes(arguments)
    text = f"{jax.config.jax_default_device}|{tree}|{shapes}|{lowered.as_text()}"
    return hashlib.sha1(text.encode()).hexdigest(), lowered


def _compiled(lowered: tuple[str, object]):
    """The compiled program of a :func:`_lowered` one, compiled once per key."""
    key, program = lowered
    if key not in _COMPILED:
        _COMPILED[key] = program.compile()
        while len(_COMPILED) > _KEEP:
            _COMPILED.popitem(last=False)
    _COMPILED.move_to_end(key)
    return _COMPILED[key]


def _kind(graphdef, request: Request, constants, leaves) -> tuple:
    """What two equal requests share before their values: structure, options, leaves' shapes and dtypes."""
    shapes = tuple((np.shape(leaf), str(leaf.dtype)) for leaf in leaves)
    kwargs = tuple(request.kwargs or ())
    return graphdef, request.grads, constants, kwargs, request.promote, request.widen, request.select, shapes


def _values_digest(leaves) -> str:
    digest = hashlib.sha1()
    for leaf in leaves:
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):  # an nnx.Rngs key: its raw bits
            leaf = jax.random.key_data(leaf)
        array = np.asarray(leaf)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
    return digest.hexdigest()


def evaluate_all(requests: list[Request]) -> list[Evaluation]:
    """Every request's :class:`~crosscheck.porting.evaluate.Evaluation`, in order: those in 64-bit mode
    (``Request.x64``: the float64 runs) from one compiled program, the others from another traced
    without it (a port's Python ints stay int32 beside its int32 indices, as when it runs alone); one by
    one when any request places its inputs (sharded inputs and single-device ones cannot share a
    program). Both programs are traced before either is compiled, and both run before any result is
    read (XLA runs them asynchronously)."""
    results: list[Evaluation | None] = [None] * len(requests)
    groups = []
    for x64 in (False, True):
        chosen = [i for i, request in enumerate(requests) if request.x64 == x64]
        if chosen:
            with jax.enable_x64(x64):
                groups.append((x64, chosen, _group_program([requests[i] for i in chosen])))
    running = []
    for x64, chosen, (program, finish) in groups:
        with jax.enable_x64(x64):
            running.append((x64, chosen, program(), finish))
    for x64, chosen, computed, finish in running:
        with jax.enable_x64(x64):
            for i, evaluation in zip(chosen, finish(computed), strict=True):
                results[i] = evaluation
    return results


def _group_program(requests: list[Request]) -> tuple[Callable[[], object], Callable[[object], list]]:
    """One group of requests, all in the mode ``evaluate_all`` chose for them, traced: a function that
    compiles and starts the program, and one that reads its results as the requests' evaluations."""
    if any(request.place is not None for request in requests):
        return lambda: None, lambda _: [
            evaluate_jax(
                r.module,
                r.inputs,
                r.cotangent,
                grads=r.grads,
                rename=r.rename,
                place=r.place,
                kwargs=r.kwargs,
                promote=r.promote,
                widen=r.widen,
                select=r.select,
            )  # fmt: skip
            for r in requests
        ]
    unique: dict[tuple, int] = {}
    order, parts, split = [], [], []
    for request in requests:
        graphdef, params, rest = nnx.split(request.module, differentiated(request.select), ...)
        inputs = tuple(jax_array(a) for a in request.inputs)
        cotangent = jax.tree.map(jax_array, request.cotangent) if request.grads else None
        keywords, constants = split_keywords(jax_keywords(request.kwargs))
        leaves = jax.tree.leaves((params, rest, inputs, cotangent, keywords))
        kind = _kind(graphdef, request, constants, leaves)
        split.append((request, graphdef, params, rest, inputs, cotangent, keywords, constants, leaves, kind))
    kinds = Counter(entry[-1] for entry in split)
    for request, graphdef, params, rest, inputs, cotangent, keywords, constants, leaves, kind in split:
        # only requests that could be equal have their values hashed (a whole model's are GBs)
        key = (kind, _values_digest(leaves) if kinds[kind] > 1 else id(request))
        if key not in unique:
            unique[key] = len(parts)
            notes = TruthNotes() if request.promote else None
            parts.append(
                (
                    (graphdef, request.grads, constants, request.widen, notes),
                    params,
                    rest,
                    inputs,
                    cotangent,
                    keywords,
                )
            )
        order.append(unique[key])
    structure = tuple(part[0] for part in parts)
    arguments = tuple([part[i] for part in parts] for i in range(1, 6))
    program = _program(structure, arguments)
    return lambda: program()(*arguments), lambda computed: [
        evaluation_of(
            parts[i][0][0],
            parts[i][2],
            computed[i],
            grads=r.grads,
            rename=r.rename,
            notes=parts[i][0][-1],
            select=r.select,
        )  # fmt: skip
        for r, i in zip(requests, order, strict=True)
    ]
