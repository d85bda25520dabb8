"""Run a module forward and backward in either framework and return NumPy arrays in torch names.

The loss is fixed: ``sum(output * cotangent)`` with one cotangent shared by both frameworks, so
the gradients are comparable element by element. Parameter gradients are keyed by PyTorch's
``state_dict`` names and laid out like torch's parameters (a JAX module's are mapped through
:mod:`crosscheck.weights`); the input gradient is ``"input"``, in jaxlin's layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

from crosscheck.numerics import is_floating
from crosscheck.porting.channels import Channels, channels_option, to_channels_first, to_channels_last
from crosscheck.porting.outputs import flatten_output, is_floating_array
from crosscheck.porting.truth import TruthNotes, promoted_call
from crosscheck.weights import numpy_of_torch, torch_of_numpy
from crosscheck.weights.arrays import jax_array, numpy_view_of_torch, torch_view_of_numpy
from crosscheck.weights.tree import Rename, describe_module, plan


class ModelCallError(ValueError):
    """A model raised when called on the inputs it was given (they do not fit it): the message names the
    framework and the module, then the model's own error in one line."""


@dataclass
class Evaluation:
    """One framework's outputs and gradients for one set of inputs.

    ``outputs``: every array of the output tree by path (:mod:`crosscheck.porting.outputs`; ``""`` is
    a bare array); ``grads``: parameter gradients by torch key, and ``"input"``.
    """

    outputs: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    truth_notes: list[str] = field(default_factory=list)  # what a float64 run promoted (truth.py)

    @property
    def output(self) -> np.ndarray:
        """The first floating output (the first output when none floats)."""
        floating = [a for a in self.outputs.values() if is_floating(np.asarray(a).dtype)]
        return (floating or list(self.outputs.values()))[0]


def cast_inputs(inputs, dtype) -> tuple[np.ndarray, ...]:
    """Floating inputs cast to ``dtype`` (rounded once, here); masks and integers kept as they are."""
    arrays = [np.asarray(a) for a in inputs]
    return tuple(a.astype(dtype) if is_floating(a.dtype) else a for a in arrays)


def first_array(output):
    """A module's output as one array: itself, or the first array of a tuple, list or ``ModelOutput``
    (what a Hugging Face model returns), whichever framework it comes from."""
    while isinstance(output, (tuple, list, dict)):
        output = next(iter(output.values())) if isinstance(output, dict) else output[0]
    return output


def _loss(outputs: dict, cotangents) -> jax.Array:
    """``Σ sum(y · g)`` over the outputs given a cotangent (a bare array: the first floating output's),
    accumulated in float64 for float64 outputs, else float32."""
    if not isinstance(cotangents, dict):
        first = next(path for path, y in outputs.items() if is_floating_array(y))
        cotangents = {first: cotangents}
    total = jnp.zeros((), jnp.float32)
    for path, cotangent in cotangents.items():
        y = outputs[path]
        accumulate = jnp.float64 if y.dtype == jnp.float64 else jnp.float32
        total = total + jnp.sum(y.astype(accumulate) * cotangent.astype(accumulate))
    return total


def split_keywords(kwargs: dict | None) -> tuple[dict, tuple]:
    """Keyword arguments as ``(arrays, constants)``: arrays traced like inputs, the rest (flags, sizes,
    ``None``) held as static ``(name, value)`` pairs.

    Raises:
        TypeError: a keyword value that is neither an array nor hashable (a cache object), by name.
    """
    arrays, constants = {}, []
    for name, value in (kwargs or {}).items():
        if isinstance(value, (np.ndarray, jax.Array)):
            arrays[name] = value
            continue
        try:
            hash(value)
        except TypeError:
            raise TypeError(
                f"jax_kwargs[{name!r}] is a {type(value).__name__}: give arrays or constants (a flag, a "
                "size, None); a stateful argument such as a cache is not supported here yet"
            ) from None
        constants.append((name, value))
    return arrays, tuple(constants)


def forward_and_grads(
    graphdef, params, rest, inputs, cotangent, grads: bool, keywords=None, constants=(),
    promote: TruthNotes | None = None, widen: bool = False,
):  # fmt: skip
    """The traced computation of one evaluation: ``(outputs by path, parameter grads, input grad)``;
    the first input gets a gradient when it is floating. ``cotangent``: ``{path: array}`` for the
    outputs the loss sums over, or one array for the first floating output. ``keywords`` (arrays) and
    ``constants`` (static pairs) are the module's keyword arguments. ``promote``: a float64 run's notes,
    its narrowing casts promoted (:mod:`crosscheck.porting.truth`). ``widen``: floating parameters widened
    to float64 first (exactly), inside the program, so that a float64 run differentiates float64
    parameters without a float64 copy of the model on the host."""
    if widen:  # the parameters not differentiated (in ``rest`` when a check selects some) too
        params, rest = jax.tree.map(_widened, (params, rest))

    def outputs_of(p, x):
        module = nnx.merge(graphdef, p, rest, copy=True)  # fresh variables: a module may change its state

        def call():
            return module(x, *inputs[1:], **(keywords or {}), **dict(constants))

        returned = call() if promote is None else promoted_call(module, call, promote)
        return dict(flatten_output(returned, type(module).__name__))

    if not grads:
        return outputs_of(params, inputs[0]), None, None

    def loss(p, x):
        outputs = outputs_of(p, x)
        return _loss(outputs, cotangent), outputs

    if not jnp.issubdtype(inputs[0].dtype, jnp.floating):
        param_grads, outputs = jax.grad(lambda p: loss(p, inputs[0]), has_aux=True)(params)
        return outputs, param_grads, None
    (param_grads, input_grad), outputs = jax.grad(loss, argnums=(0, 1), has_aux=True)(params, inputs[0])
    return outputs, param_grads, input_grad


def _widened(array):
    return array.astype(jnp.float64) if jnp.issubdtype(array.dtype, jnp.floating) else array


def fresh_forward_and_grads():
    """:func:`forward_and_grads` under a ``jax.jit`` of its own: a new function object, so nothing traced
    before (a module whose code has since been edited) is reused. Called inside another jitted
    function (:mod:`crosscheck.porting.fused`) it is traced once per structure there."""

    def evaluation(graphdef, params, rest, inputs, cotangent, grads, *static):
        return forward_and_grads(graphdef, params, rest, inputs, cotangent, grads, *static)

    # keywords (arrays) are traced; constants, promote (a float64 run's notes) and widen are static
    return jax.jit(evaluation, static_argnums=(0, 5, 7, 8, 9))


def c_order(array: np.ndarray) -> np.ndarray:
    """``array`` in C order: itself where it is, else copied by torch, whose blocked, threaded copy
    moves a transposed kernel several times faster than NumPy's (a model's gradients are hundreds of
    MB; NumPy's copy for what torch cannot view: negative strides, a foreign byte order, dtypes
    torch lacks).

    >>> c_order(np.arange(6.0).reshape(2, 3).T).tolist()
    [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    """
    array = np.asarray(array)
    if array.flags.c_contiguous or array.dtype.kind != "f" or array.dtype.itemsize < 4:
        return np.ascontiguousarray(array)
    source = torch_view_of_numpy(array)
    if source is None:
        return np.ascontiguousarray(array)
    out = np.empty(array.shape, array.dtype)
    # each new page touched first here, in order, by one thread: a new page's first touch is the costly
    # part of the copy (on the 2-core VM of docs/scale.md, in a check of decoder-medium: 46 ms for a
    # 33 MB float64 kernel's pages, then 12 ms for the copy); left to the threads of torch's transposing
    # copy, the 12 copies of that shape took 0.88 s, not 0.70 s
    out.reshape(-1)[:: _PAGE // out.itemsize] = 0
    torch.from_numpy(out).copy_(source)
    return out


def judged_layout(array: np.ndarray) -> np.ndarray:
    """A gradient in torch's layout as the verdicts read it: itself where it is in C order or a matrix
    (a transposed kernel's gradient: the judging copies it a few rows at a time into one buffer,
    :func:`crosscheck.numerics.relative.difference`, instead of into as much new memory as it holds),
    else :func:`c_order`.

    >>> kernel = np.zeros((3, 2))
    >>> judged_layout(kernel.T).base is kernel
    True
    >>> judged_layout(np.zeros((2, 3, 4)).transpose(2, 0, 1)).flags.c_contiguous
    True
    """
    array = np.asarray(array)
    if array.ndim == 2 and min(array.strides, default=0) >= 0 and array.dtype.isnative:
        return array
    return c_order(array)


_PAGE = 4096
"""Bytes of a memory page (the smallest: touching one element of each faults every page in)."""


def param_paths(module: nnx.Module, variables) -> frozenset[tuple]:
    """The graph paths of ``variables`` (some of ``module``'s), as a split's filter sees them: what
    ``select`` takes to differentiate only those."""
    wanted = {id(variable) for variable in variables}
    return frozenset(tuple(path) for path, node in nnx.iter_graph(module) if id(node) in wanted)


def differentiated(select: frozenset[tuple] | None):
    """The ``nnx.split`` filter of the parameters an evaluation differentiates: every ``nnx.Param``, or
    those at the graph paths ``select`` names (:func:`param_paths`)."""
    if select is None:
        return nnx.Param
    return nnx.All(nnx.Param, lambda path, _: tuple(path) in select)


def param_grads_by_key(
    graphdef, param_grads, rest, rename: Rename = None, select: frozenset[tuple] | None = None
) -> dict[str, np.ndarray]:
    """Parameter gradients in torch names and layouts: ``nnx.Param`` variables only (statistics such
    as ``nnx.BatchStat`` are never gradients), those ``select`` names where it is given."""
    merged = nnx.merge(graphdef, param_grads, rest)
    chosen = None if select is None else {id(node) for path, node in nnx.iter_graph(merged) if path in select}
    return {  # read-only views of the computed gradients; copied only into torch's layout
        entry.key: judged_layout(entry.torch_value())
        for entry in plan(merged, rename=rename)
        if isinstance(entry.variable, nnx.Param) and (chosen is None or id(entry.variable) in chosen)
    }


def evaluation_of(
    graphdef, rest, computed, *, grads: bool, rename: Rename = None, notes: TruthNotes | None = None,
    select: frozenset[tuple] | None = None,
) -> Evaluation:  # fmt: skip
    """:func:`forward_and_grads`'s result as NumPy arrays, the parameter gradients in torch names."""
    outputs, param_grads, input_grad = computed
    outputs = {path: np.asarray(y) for path, y in outputs.items()}
    said = notes.lines() if notes is not None else []
    if not grads:
        return Evaluation(outputs, {}, said)
    named = param_grads_by_key(graphdef, param_grads, rest, rename, select)
    if input_grad is not None:
        named["input"] = np.asarray(input_grad)
    return Evaluation(outputs, named, said)


def evaluate_jax(
    module: nnx.Module, inputs, cotangent, *, grads: bool = True, rename: Rename = None,
    place: Callable[[tuple], tuple] | None = None, kwargs: dict | None = None, promote: bool = False,
    widen: bool = False, select: frozenset[tuple] | None = None,
) -> Evaluation:  # fmt: skip
    """Forward (and backward) of a JAX module on NumPy inputs in jaxlin's layout, under ``jax.jit``;
    ``place`` puts the inputs on devices (sharded on a mesh, say) instead of the default device;
    ``select``: only the parameters at these graph paths are differentiated (:func:`param_paths`).

    Shape:
        inputs as the module takes them; ``cotangent``: ``{output path: array of its shape}``, or one
        array shaped like the first floating output.
    """
    graphdef, params, rest = nnx.split(module, differentiated(select), ...)
    arrays = place(tuple(inputs)) if place is not None else tuple(jax_array(a) for a in inputs)
    ct = None if not grads else jax.tree.map(jax_array, cotangent)
    keywords, constants = split_keywords(jax_keywords(kwargs))
    notes = TruthNotes() if promote else None
    evaluate = fresh_forward_and_grads()
    computed = evaluate(graphdef, params, rest, arrays, ct, grads, keywords, constants, notes, widen)
    return evaluation_of(graphdef, rest, computed, grads=grads, rename=rename, notes=notes, select=select)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def model_call_error(framework: str, module, error: BaseException) -> ModelCallError:
    """The :class:`ModelCallError` for ``module`` raising ``error`` on its inputs."""
    return ModelCallError(
        f"the {framework} model {describe_module(module)} raised on the inputs it was given "
        f"({_one_line(error)}); give inputs in the layout and dtype it takes"
    )


def jax_keywords(kwargs: dict | None) -> dict:
    """Keyword arguments for a JAX module: NumPy arrays as JAX arrays, anything else as it is."""
    return {k: jax_array(v) if isinstance(v, np.ndarray) else v for k, v in (kwargs or {}).items()}


def torch_keywords(kwargs: dict | None) -> dict:
    """Keyword arguments for a torch module: NumPy arrays as tensors, anything else as it is."""
    return {k: torch_of_numpy(v) if isinstance(v, np.ndarray) else v for k, v in (kwargs or {}).items()}


def torch_parameters(module) -> dict[str, object]:
    """Every parameter name of a torch module, tied ones under each of their names."""
    return dict(module.named_parameters(remove_duplicate=False))


def _layout_message(path: str, ours: tuple, theirs: tuple) -> str:
    moved = np.shape(to_channels_last(np.empty(theirs, np.int8)))
    return (
        f"output{path} has shape {theirs} in torch, read channels first as {moved} channels last, but "
        f"{ours} in JAX; channels_first='input' leaves torch's outputs as they are (a classifier's logits)"
    )


def evaluate_torch(
    module, inputs, cotangent, *, grads: bool = True, channels_first: bool | str | Channels = False,
    kwargs: dict | None = None, params: frozenset[str] | None = None,
) -> Evaluation:  # fmt: skip
    """Forward (and backward) of a torch module on NumPy inputs given in jaxlin's layout; ``.grad``
    of the module's parameters is neither read nor written (``torch.autograd.grad``). ``params``: the
    parameter names differentiated (autograd computes nothing for the others); ``None``: every one.

    ``cotangent``: ``{torch output path: array}`` (or one array for the first floating output), in
    jaxlin's layout. Frozen parameters (``requires_grad=False``) get no gradient; tied ones get the
    same gradient under each name. ``channels_first`` (:mod:`crosscheck.porting.channels`: ``True``,
    ``"input"``, ``"output"``) moves the features axis of the first input to position 1 for the module
    (NHWC -> NCHW, as ``nn.Conv2d`` takes it) and its gradient back, and the outputs (and their
    cotangents) between the layouts.
    ``kwargs``: keyword arguments, NumPy arrays among them given as tensors.

    Raises:
        ModelCallError: the module raised on the inputs.
    """
    layout = channels_option(channels_first) or Channels()
    first = to_channels_first(inputs[0]) if layout.input else inputs[0]
    floating = is_floating(np.asarray(first).dtype)
    x = torch_of_numpy(first).requires_grad_(grads and floating)
    rest = [torch_of_numpy(a) for a in inputs[1:]]
    keywords = torch_keywords(kwargs)
    with torch.set_grad_enabled(grads):
        try:
            returned = module(x, *rest, **keywords)
        except Exception as error:
            raise model_call_error("torch", module, error) from error
        tensors = dict(flatten_output(returned, describe_module(module)))
    back = to_channels_last if layout.output else (lambda a: a)
    outputs = {path: back(numpy_of_torch(y)) for path, y in tensors.items()}
    if not grads:
        return Evaluation(outputs, {})
    if not isinstance(cotangent, dict):
        cotangent = {next(p for p, y in tensors.items() if y.is_floating_point()): cotangent}
    named = torch_parameters(module)
    if params is not None:
        named = {name: p for name, p in named.items() if name in params}
    trainable = list({id(p): p for p in named.values() if p.requires_grad}.values())
    targets = trainable + ([x] if floating else [])
    total = None
    for path, ct in cotangent.items():
        y = tensors[path]
        accumulate = torch.float64 if y.dtype == torch.float64 else torch.float32
        moved = to_channels_first(ct) if layout.output else ct
        if np.shape(moved) != tuple(y.shape):  # a cotangent in the JAX output's shape, moved for torch
            raise ValueError(_layout_message(path, np.shape(ct), tuple(y.shape)))
        ct = moved
        ct = torch.as_tensor(np.ascontiguousarray(ct), dtype=accumulate)
        term = (y.to(accumulate) * ct).sum()
        total = term if total is None else total + term
    computed = [None] * len(targets)
    if total is not None and total.requires_grad and targets:
        computed = torch.autograd.grad(total, targets, allow_unused=True)
    by_id = {
        id(t): g if g is not None else torch.zeros_like(t) for t, g in zip(targets, computed, strict=True)
    }
    # the gradients are autograd's own new tensors: viewed, not copied (a model's are hundreds of MB)
    grads_named = {name: numpy_view_of_torch(by_id[id(p)]) for name, p in named.items() if id(p) in by_id}
    if floating:
        gradient = numpy_view_of_torch(by_id[id(x)])
        grads_named["input"] = to_channels_last(gradient) if layout.input else gradient
    return Evaluation(outputs, grads_named)
