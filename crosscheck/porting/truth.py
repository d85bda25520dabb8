"""A float64 truth that is float64: in the float64 runs every narrowing cast is promoted to float64.

Ports and references narrow on purpose — transformers' RMSNorms compute in ``float32`` whatever the
input, ``jax.nn.dot_product_attention`` runs its softmax in ``float32``, rotary tables are built with
``.float()`` — so a model merely cast to float64 still rounds to float32 inside, and the same-function
tier would judge float32 noise against a float64 allowance. While a truth run is traced or executed:

- torch (:func:`promoting_torch`): a ``TorchFunctionMode`` turns ``.float()``/``.half()``/
  ``.bfloat16()``, ``.to(float32)``, ``.type(float32)`` and every ``dtype=float32`` argument (factories,
  ``softmax(dtype=)``) into float64, the default dtype is float64, and a matmul, convolution,
  normalization or embedding given narrow tensors beside float64 ones gets them widened (a weight read
  outside its own module's call, :mod:`crosscheck.porting.streaming`);
- JAX (:func:`promoting_jax`): every primitive bound while the program is traced gets float64 for a
  narrow ``new_dtype``/``dtype``/``preferred_element_type``, every narrow floating operand is widened
  (float32 parameters shared with the working model, :func:`crosscheck.porting.magnitudes.float64_view`,
  compute as a float64 copy of them would), ``reduce_precision`` is skipped, and inner ``jax.jit``
  functions are traced inline (a cached program traced without promotion is never reused). 64-bit mode
  makes a Python int an int64: beside an int32 (a cache index) an int64 is given back int32, as the port
  runs outside x64.

Each promotion is counted where it happened — the module path on both sides — and reported as
:class:`TruthNotes` lines (``"4 float32 casts promoted in model.norm (LlamaRMSNorm)"``). Values that are
float32 data (a float32 constant, a buffer computed at construction) stay what they are: they are
inputs of the function, as weights are.

>>> import torch
>>> notes = TruthNotes()
>>> layer = torch.nn.Linear(2, 2).double()
>>> with promoting_torch(layer, notes):
...     y = layer(torch.ones(1, 2, dtype=torch.float64).float())
>>> y.dtype, notes.lines()
(torch.float64, ['1 float32 cast promoted in the model (Linear)'])
"""

from __future__ import annotations

import contextlib
import contextvars
from collections import Counter
from dataclasses import dataclass, field

import jax
import numpy as np
import torch
from flax import nnx
from jax._src import core
from jax._src.lax import lax as lax_internal
from torch.overrides import TorchFunctionMode

from crosscheck.porting.capture import wrapped_calls

_NARROW_TORCH = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
_NARROW_JAX = {np.dtype(np.float32), np.dtype(np.float16), np.dtype(jax.numpy.bfloat16)}
_FLOAT64 = np.dtype(np.float64)
_INT32, _INT64 = np.dtype(np.int32), np.dtype(np.int64)
_DTYPE_PARAMS = ("new_dtype", "dtype", "preferred_element_type")
LIMITED = "truth limited to float32 at"
FLOAT32_DATA = "float32 data computed before the check"


def truth_dtype(lines: list[str]) -> str:
    """The precision the float64 runs reached: ``"float32"`` when any narrowing was left as it is, or a
    constant the model computed in float32 before the check (a rotary ``inv_freq``) feeds them."""
    return "float32" if any(LIMITED in line or FLOAT32_DATA in line for line in lines) else "float64"


def side_notes(jax_lines: list[str], torch_lines: list[str]) -> list[str]:
    """Both sides' truth notes as a result lists them: ``"JAX: …"`` first, then ``"torch: …"``."""
    return [f"JAX: {line}" for line in jax_lines] + [f"torch: {line}" for line in torch_lines]


def float32_constants(model: torch.nn.Module) -> list[str]:
    """A line for each floating buffer of ``model`` (before its float64 copy) that is not in its
    ``state_dict`` and narrower than float64: values the model computed itself, at construction, in that
    precision (a rotary ``inv_freq``). The float64 copy holds those roundings as data, so the
    same-function tier allows float32 rounding where they are.

    >>> class Rotary(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.register_buffer("inv_freq", torch.ones(4), persistent=False)
    >>> print(*float32_constants(Rotary()))  # doctest: +NORMALIZE_WHITESPACE
    buffer inv_freq (float32, (4,)) is float32 data computed before the check, not a weight: the
    same-function tier allows float32 rounding
    """
    persistent = set(model.state_dict(keep_vars=True))
    return [
        f"buffer {name} ({str(buffer.dtype).removeprefix('torch.')}, {tuple(buffer.shape)}) is "
        f"{FLOAT32_DATA}, not a weight: the same-function tier allows float32 rounding"
        for name, buffer in model.named_buffers()
        if name not in persistent and buffer.is_floating_point() and buffer.dtype != torch.float64
    ]


@dataclass(eq=False)  # hashed by identity: a jitted evaluation takes one as a static argument
class TruthNotes:
    """What the float64 runs promoted, by place, and where a narrowing could not be promoted."""

    promoted: Counter = field(default_factory=Counter)  # (place, dtype name) -> casts promoted
    limited: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per place and dtype, then one per limit, in the order they happened."""
        said = [
            f"{count} {dtype} cast{'s' if count > 1 else ''} promoted in {place}"
            for (place, dtype), count in self.promoted.items()
        ]
        return said + [f"{LIMITED} {place}" for place in self.limited]

    def merge(self, other: TruthNotes) -> None:
        self.promoted.update(other.promoted)
        self.limited.extend(x for x in other.limited if x not in self.limited)


def _place(path: str, module) -> str:
    return f"{path or 'the model'} ({type(module).__name__})"


def _torch_dtype_argument(func, args, kwargs) -> tuple[tuple, dict, torch.dtype | None]:
    """``(args, kwargs, narrow dtype replaced)`` for one torch call, float64 in place of a narrow dtype."""
    if kwargs.get("dtype") in _NARROW_TORCH:
        narrow, kwargs = kwargs["dtype"], {**kwargs, "dtype": torch.float64}
        return args, kwargs, narrow
    if func in (torch.Tensor.to, torch.Tensor.type):
        for i, value in enumerate(args[1:3], start=1):
            if isinstance(value, torch.Tensor) and value.dtype in _NARROW_TORCH and func is torch.Tensor.to:
                return (*args[:i], torch.float64, *args[i + 1 :]), kwargs, value.dtype
            if value in _NARROW_TORCH:
                return (*args[:i], torch.float64, *args[i + 1 :]), kwargs, value
    return args, kwargs, None


class _PromoteCasts(TorchFunctionMode):
    def __init__(self, notes: TruthNotes, where):
        super().__init__()
        self.notes, self.where = notes, where

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        narrowing = {torch.Tensor.float: torch.float32, torch.Tensor.half: torch.float16}
        narrowing[torch.Tensor.bfloat16] = torch.bfloat16
        if func in narrowing:
            narrow, func = narrowing[func], torch.Tensor.double
        else:
            args, kwargs, narrow = _torch_dtype_argument(func, args, kwargs)
        if narrow is not None:
            self.notes.promoted[(self.where(), _NARROW_TORCH[narrow])] += 1
        elif func in _MIXED_DTYPE_FUNCTIONS:
            args, kwargs = _widened(args, kwargs)
        return func(*args, **kwargs)


def _mixed_dtype_functions() -> set:
    """torch functions that refuse float32 beside float64 (elementwise ones promote by themselves)."""
    functional = torch.nn.functional
    names = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
             "conv_transpose3d", "embedding", "layer_norm", "group_norm", "batch_norm", "rms_norm",
             "scaled_dot_product_attention", "bilinear")  # fmt: skip
    return {getattr(functional, name) for name in names if hasattr(functional, name)} | {
        torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.mm, torch.Tensor.mm, torch.bmm,
        torch.Tensor.bmm, torch.addmm, torch.baddbmm, torch.einsum,
    }  # fmt: skip


_MIXED_DTYPE_FUNCTIONS = _mixed_dtype_functions()


def _widened(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Narrow floating tensors as float64 where a float64 tensor is among the arguments."""
    leaves = [*args, *kwargs.values()]
    leaves += [x for a in args if isinstance(a, (list, tuple)) for x in a]
    if not any(isinstance(t, torch.Tensor) and t.dtype == torch.float64 for t in leaves):
        return args, kwargs

    def one(value):
        if isinstance(value, torch.Tensor) and value.dtype in _NARROW_TORCH:
            return value.double()
        if isinstance(value, (list, tuple)):
            return type(value)(one(v) for v in value)
        return value

    return tuple(one(a) for a in args), {k: one(v) for k, v in kwargs.items()}


@contextlib.contextmanager
def promoting_torch(model: torch.nn.Module, notes: TruthNotes):
    """Run ``model`` (already float64) with every narrowing cast promoted; counts land in ``notes``."""
    paths = {id(module): path for path, module in model.named_modules()}
    stack: list[object] = []

    def before(module, args):
        if id(module) in paths:
            stack.append(module)

    def after(module, args, output):
        if stack and stack[-1] is module:
            stack.pop()

    def where() -> str:
        return _place(paths[id(stack[-1])], stack[-1]) if stack else _place("", model)

    hooks = torch.nn.modules.module
    handles = [hooks.register_module_forward_pre_hook(before), hooks.register_module_forward_hook(after)]
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with _truth_run(), _PromoteCasts(notes, where):
            yield notes
    finally:
        torch.set_default_dtype(default)
        for handle in handles:
            handle.remove()


_TRUTH_RUN: contextvars.ContextVar[bool] = contextvars.ContextVar("crosscheck_truth_run", default=False)


@contextlib.contextmanager
def _truth_run():
    token = _TRUTH_RUN.set(True)
    try:
        yield
    finally:
        _TRUTH_RUN.reset(token)


def in_truth_run() -> bool:
    """Whether a float64 truth run is under way (torch's inside :func:`promoting_torch`, JAX's traced
    inside :func:`promoting_jax`): a value made there without inputs to follow (a stand-in's output) is
    float64, whatever the weights it would take its dtype from hold (streamed or widened only where used,
    they are still the working dtype's there)."""
    return _TRUTH_RUN.get()


def _dtype(value):
    dtype = getattr(value, "dtype", None)
    try:
        return np.dtype(dtype) if dtype is not None else None
    except TypeError:
        return None


@contextlib.contextmanager
def promoting_jax(module: nnx.Module, notes: TruthNotes):
    """Trace ``module``'s calls with every narrowing cast promoted to float64 (see the module's
    docstring); counts land in ``notes`` by module path. Only while tracing: use it around the call
    that traces the float64 program."""
    original = core.Primitive.bind
    convert = lax_internal.convert_element_type_p
    with wrapped_calls(module) as recorder:

        def where() -> str:
            if not recorder.active:
                return _place("", module)
            layer_id = recorder.active[-1]
            return _place(recorder.paths[layer_id], recorder.modules[layer_id])

        def bind(primitive, *args, **params):
            if primitive.name == "reduce_precision" and _dtype(args[0]) == _FLOAT64:
                return args[0]
            if primitive.name == "bitcast_convert_type":  # bits of a narrow float: no float64 stands in
                if _dtype(args[0]) == _FLOAT64 and np.dtype(params["new_dtype"]).itemsize != 8:
                    raise TypeError("bitcast_convert_type of a float32 value promoted to float64")
                return original(primitive, *args, **params)
            for name in _DTYPE_PARAMS:
                if params.get(name) is not None and _dtype(np.empty(0, params[name])) in _NARROW_JAX:
                    if primitive is convert and _dtype(args[0]) != np.dtype(params[name]):
                        notes.promoted[(where(), np.dtype(params[name]).name)] += 1
                    params[name] = _FLOAT64
            dtypes = [_dtype(a) for a in args]
            higher_order = any(isinstance(v, (core.Jaxpr, core.ClosedJaxpr)) for v in params.values())
            if not higher_order and primitive is not convert and any(d in _NARROW_JAX for d in dtypes):
                args = tuple(
                    original(convert, a, new_dtype=_FLOAT64, weak_type=False, sharding=None)
                    if d in _NARROW_JAX
                    else a
                    for a, d in zip(args, dtypes, strict=True)
                )
            if not higher_order and _INT32 in dtypes and _INT64 in dtypes:  # Python ints became int64
                args = tuple(
                    original(convert, a, new_dtype=_INT32, weak_type=False, sharding=None)
                    if d == _INT64
                    else a
                    for a, d in zip(args, dtypes, strict=True)
                )
            return original(primitive, *args, **params)

        core.Primitive.bind = bind
        try:
            with _truth_run(), jax.disable_jit():
                yield notes
        finally:
            core.Primitive.bind = original


def promoted_call(module: nnx.Module, call, notes: TruthNotes):
    """``call()`` traced with :func:`promoting_jax` on ``module``; when the promoted program cannot be
    traced (a primitive whose traced body keeps float32 types), ``call()`` as it is, with the limit
    noted."""
    try:
        with promoting_jax(module, notes):
            return call()
    except Exception as error:  # noqa: BLE001 - any failure falls back to the unpromoted program
        notes.promoted.clear()
        text = str(error).strip().splitlines()
        notes.limited.append(f"{_place('', module)}: {type(error).__name__}: {text[0] if text else ''}")
        return call()


_INHERITED: list[list[str]] = []


@contextlib.contextmanager
def inherited_truth_notes(lines: list[str]):
    """While open, every check also carries ``lines`` (a layer checked alone inside ``locate`` inherits
    the whole model's float32 constants, which reach it through its inputs)."""
    _INHERITED.append(list(lines))
    try:
        yield
    finally:
        _INHERITED.pop()


def inherited() -> list[str]:
    """The lines of the innermost :func:`inherited_truth_notes`, or none."""
    return list(_INHERITED[-1]) if _INHERITED else []
