"""A torch model's float64 truth without a float64 copy of the model: its own tensors, in place.

A ``copy.deepcopy(model).double()`` holds twice the model's float32 bytes for as long as the truth
runs; at a billion parameters that is the memory a check does not have. Two in-place forms instead,
each giving every tensor back exactly as it was (float32 -> float64 -> float32 is exact, as is
bfloat16's or float16's round trip), the same ``Parameter`` objects throughout (ties hold):

- :func:`float64_streamed` — no gradients: each submodule holds its own floating parameters and buffers
  in float64 only while it is called, so at most the layers being called are float64 at once;
- :func:`float64_whole` — with gradients: every floating tensor is float64 for the whole run (autograd
  keeps what it saves), and the float32 originals are freed meanwhile, so the run costs the float64
  weights alone rather than a copy beside the original.

A module reading another's parameters outside that one's call (a tied head calling ``F.linear`` on the
embedding's weight) meets float32 weights beside float64 activations: :func:`promoting_torch`'s mode
widens those operands, as a float64 copy would have held them.

>>> import torch
>>> layer = torch.nn.Linear(2, 2)
>>> with torch.no_grad(), float64_streamed(layer):
...     y = layer(torch.ones(1, 2, dtype=torch.float64))
>>> y.dtype, layer.weight.dtype
(torch.float64, torch.float32)
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import gc
import sys
from collections import Counter
from itertools import chain

import torch

_WIDE = torch.float64


def own_floating(module: torch.nn.Module) -> list[torch.Tensor]:
    """The floating parameters and buffers a module holds itself (not its children's)."""
    held = chain(module._parameters.values(), module._buffers.values())
    return [t for t in held if t is not None and t.is_floating_point()]


def _unpromoted():
    """No torch function mode while the tensors move: a truth run's mode would promote the way back."""
    return torch._C.DisableTorchFunction()


_CONTAINERS = (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)


def called_with(module: torch.nn.Module) -> list[torch.Tensor]:
    """The floating tensors ``module``'s call computes with: its own; a torch layer's children's too
    (``nn.MultiheadAttention`` reads ``out_proj.weight`` without calling ``out_proj``), a container's
    never (its layers hold their own while called)."""
    if type(module).__module__.startswith("torch.nn.") and not isinstance(module, _CONTAINERS):
        return list({id(t): t for m in module.modules() for t in own_floating(m)}.values())
    return own_floating(module)


_LEFT: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar("crosscheck_left", default=frozenset())


@contextlib.contextmanager
def left_as_they_are(modules):
    """While open, the float64 forms leave these modules' subtrees in their own dtype (children standing
    in for ``locate``'s container rows: their ``forward`` does not read their weights); a tensor another
    module holds too is still widened for that one."""
    token = _LEFT.set(_LEFT.get() | {id(m) for module in modules for m in module.modules()})
    try:
        yield
    finally:
        _LEFT.reset(token)


def _widened_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    left = _LEFT.get()
    return [module for module in model.modules() if id(module) not in left]


class _InPlace:
    """Tensors moved to float64 in place and back, each counted by the calls holding it; ``keep``: each
    one's original storage held meanwhile, to be given back as it was."""

    def __init__(self, keep: bool = False):
        # id -> the tensor, its own dtype and, where kept, its original storage
        self.dtypes: dict[int, tuple[torch.Tensor, torch.dtype, torch.Tensor | None]] = {}
        self.holders: Counter = Counter()
        self.keep = keep

    def widen(self, tensors) -> None:
        with _unpromoted():
            self._widen(tensors)

    def narrow(self, tensors) -> None:
        with _unpromoted():
            self._narrow(tensors)

    def _widen(self, tensors) -> None:
        for tensor in tensors:
            key = id(tensor)
            if self.holders[key] == 0 and tensor.dtype != _WIDE:
                self.dtypes[key] = (tensor, tensor.dtype, tensor.data if self.keep else None)
                tensor.data = tensor.data.to(_WIDE)
            self.holders[key] += 1

    def _narrow(self, tensors) -> None:
        moved = 0
        for tensor in tensors:
            key = id(tensor)
            self.holders[key] -= 1
            if self.holders[key] == 0 and key in self.dtypes:
                tensor.data = tensor.data.to(self.dtypes.pop(key)[1])
                moved += tensor.numel() * 8
        if moved >= _LARGE:  # the freed float64 pages back now, not after every layer has left its own
            release_freed_memory(collect=False)

    def give_back(self) -> None:
        """Every tensor still widened, back in its own dtype (an error left a call open)."""
        with _unpromoted():
            for tensor, dtype, original in self.dtypes.values():
                tensor.data = original if original is not None else tensor.data.to(dtype)
        self.dtypes.clear()
        self.holders.clear()


@contextlib.contextmanager
def float64_streamed(model: torch.nn.Module):
    """While open, each submodule of ``model`` computes with its own floating parameters and buffers
    (:func:`called_with`) in float64 during its calls only, and holds them in their own dtype otherwise.
    For runs without gradients (autograd would keep the float64 tensors a layer saved)."""
    held = _InPlace()
    handles = []
    for module in _widened_modules(model):
        tensors = called_with(module)
        if not tensors:
            continue
        handles.append(module.register_forward_pre_hook(lambda m, a, tensors=tensors: held.widen(tensors)))
        handles.append(
            module.register_forward_hook(
                lambda m, a, out, tensors=tensors: held.narrow(tensors), always_call=True
            )
        )
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()
        held.give_back()


@contextlib.contextmanager
def float64_whole(model: torch.nn.Module, keep: bool = False):
    """While open, every floating parameter and buffer of ``model`` is float64 (in place: the original
    dtype's storage is freed meanwhile); each is given back in its own dtype, exactly, on the way out.
    ``keep``: the original storage is held instead and given back as it was, its very tensor (no cast
    back: a second of a check of a 100 M-parameter model), where memory is plenty."""
    held = _InPlace(keep)
    try:
        held.widen({id(t): t for m in _widened_modules(model) for t in own_floating(m)}.values())
        yield model
    finally:
        held.give_back()


_LARGE = 1 << 24
"""Bytes of float64 weights whose freeing is worth handing back to the system at once."""


LARGE_MODEL = 1 << 28
"""Parameter bytes from which a check hands freed memory back between its phases (below, the garbage
collection it takes — a fifth of a second in a process holding jax, torch and transformers — costs
more than the memory is worth)."""


def parameter_bytes(model: torch.nn.Module) -> int:
    """The bytes ``model``'s parameters take (tied ones once)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def is_large(model: torch.nn.Module) -> bool:
    """Whether ``model``'s parameters take :data:`LARGE_MODEL` bytes or more."""
    return parameter_bytes(model) >= LARGE_MODEL


def worth_releasing(layer: torch.nn.Module) -> bool:
    """Whether ``layer``'s weights in float64 take :data:`_LARGE` bytes or more: after such a layer's
    run, handing the freed pages back is worth a collection (after a norm or a small projection it is
    not: a tenth of bert-base's ``locate`` went to collections after rows that had freed little)."""
    return 8 * sum(p.numel() for p in layer.parameters()) >= _LARGE


def release_freed_memory(collect: bool = True) -> None:
    """Collect garbage (``collect``) and hand the C heap's free pages back to the system (glibc's
    ``malloc_trim``): between the phases of a check, a float64 layer just freed is not still counted
    against the next (the heap keeps freed blocks of a few megabytes for reuse, and a model's layers
    freed one after another add up to the model's size)."""
    if collect:
        gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # another C library: its own policy stands
            pass


@contextlib.contextmanager
def only_new_garbage():
    """Within: :func:`release_freed_memory`'s garbage collection looks only at objects made inside.

    Everything alive on entry (both frameworks' runtimes, the models, a locate's captured calls: hundreds
    of thousands of objects) is moved out of the collector's sight (``gc.freeze``), so collecting a
    row's garbage takes milliseconds instead of a fifth of a second. Left as it is when the process has
    frozen objects already (its own policy stands).
    """
    if gc.get_freeze_count():
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


BESIDE_FACTOR = 30
"""A check's peak in units of its torch module's parameter bytes, as measured (docs/scale.md: 14–25×
with gradients): what running torch beside JAX may need at once."""


def system_memory() -> tuple[int, int] | None:
    """``(available, total)`` bytes as Linux reports them (``/proc/meminfo``); ``None`` elsewhere."""
    try:
        with open("/proc/meminfo") as info:
            fields = dict(line.split(":", 1) for line in info.read().splitlines())
        available, total = (int(fields[key].split()[0]) * 1024 for key in ("MemAvailable", "MemTotal"))
    except (OSError, KeyError, ValueError):
        return None
    return available, total


def fits_beside(model: torch.nn.Module) -> bool:
    """Whether torch's runs of ``model`` may overlap JAX's: :data:`BESIDE_FACTOR` times its parameter
    bytes fit in the memory the system says is available, less a quarter of the machine (other
    processes, the allocator's slack). Where the system does not say (not Linux), they run one after
    the other, as they must for a model near the machine's size."""
    return _fits_with_a_quarter_spare(BESIDE_FACTOR * parameter_bytes(model))


def _fits_with_a_quarter_spare(needed: int) -> bool:
    """Whether ``needed`` bytes fit in the memory the system says is available, less a quarter of the
    machine (other processes, the allocator's slack); ``False`` where the system does not say."""
    memory = system_memory()
    if memory is None:
        return False
    available, total = memory
    return needed < available - total // 4


JUDGING_BYTES_PER_ELEMENT = 80
"""The most judging one item may hold, in bytes per element of the item: the non-finite path's float64
copies of both working values and the truth, its masks, differences and worst-index arrays (where every
value is finite it holds a few MB of chunks, whatever the size)."""


def judging_fits_beside(largest_item: int) -> bool:
    """Whether ``check`` may judge two items at a time: two of its largest item's (``largest_item``
    elements) worst case, :data:`JUDGING_BYTES_PER_ELEMENT` each, fit in the memory the system says is
    available, less a quarter of the machine (as :func:`fits_beside`)."""
    return _fits_with_a_quarter_spare(2 * JUDGING_BYTES_PER_ELEMENT * largest_item)


ROWS_BESIDE_SHARE = 16
"""``locate`` runs each row's torch beside its JAX when the model's parameters take at most this
fraction (1/16) of the machine's memory: a row is then small beside what is free, whereas a model near
the machine's size (a 1 B model on 24 GB) keeps each row's peak to one side at a time."""


def memory_is_short(model: torch.nn.Module) -> bool:
    """Whether ``model``'s parameters take more than 1/:data:`ROWS_BESIDE_SHARE` of the machine's memory
    (or the system does not say): where freed memory is worth handing back between the phases of a check
    or a locate's rows (:func:`release_freed_memory`). Elsewhere a page handed back is faulted in again by
    the next phase, which costs more than the memory is worth (on a VM, far more)."""
    return not rows_fit_beside(model)


def rows_fit_beside(model: torch.nn.Module) -> bool:
    """Whether ``locate``'s rows of ``model`` may run torch beside JAX (:data:`ROWS_BESIDE_SHARE`); each
    row's check still asks :func:`fits_beside` of its own layer."""
    memory = system_memory()
    if memory is None:
        return False
    return ROWS_BESIDE_SHARE * parameter_bytes(model) <= memory[1]
