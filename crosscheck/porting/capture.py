"""Every submodule call of one forward pass, with its inputs and output, in either framework.

torch: a forward pre-hook and a forward hook on every named submodule. JAX: for the duration of the
pass, the ``__call__`` of every submodule's class is wrapped (and restored afterwards), so a call on
one of this tree's modules is recorded under its dotted attribute path; calls on other instances
pass through untouched. Both run eagerly. Calls are numbered in the order they start (a container
before the layers it calls).

>>> import jaxlin, jax.numpy as jnp
>>> head = jaxlin.PooledHead(4, 3, 2, rngs=nnx.Rngs(0))
>>> [call.path for call in capture_jax(head, (jnp.ones((2, 5, 4)),))[0]]
['', 'projector', 'classifier']
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field

import jax
import numpy as np
import torch
from flax import nnx

from crosscheck.porting.modes import restore, snapshot
from crosscheck.weights.tree import submodules


@dataclass
class Call:
    """One call of a submodule: where it sits in the tree, what it was given (arguments that are not
    arrays — a cache object — copied as they were before the call), what it returned, and its state
    before the call (torch buffers, the nnx variables that are not parameters), for a replay."""

    path: str
    order: int
    args: tuple
    kwargs: dict = field(default_factory=dict)
    output: object = None
    module: object = None
    state: object = None
    count: int = 0  # how many times the pass called it (the first call is the one recorded)

    def restore(self) -> None:
        """Give the module back the state it had before this call (a cache not yet advanced)."""
        restore(self.module, self.state)


def as_they_were(tree):
    """``tree`` with every leaf that is not an array, tensor or plain value deep-copied (a cache object
    the call will advance); what cannot be copied is kept as it is."""

    if tree is None or isinstance(tree, (torch.Tensor, np.ndarray, jax.Array, int, float, bool, str)):
        return tree
    if isinstance(tree, dict) and type(tree) is dict:  # in its own order (jax.tree.map would sort keys)
        return {key: as_they_were(value) for key, value in tree.items()}
    if type(tree) in (tuple, list):
        return type(tree)(as_they_were(value) for value in tree)
    try:
        return copy.deepcopy(tree)
    except Exception:  # noqa: BLE001 - an object that refuses a copy is replayed as it is now
        return tree


def capture_torch(module, args: tuple, kwargs: dict | None = None) -> tuple[list[Call], object]:
    """Run ``module(*args, **kwargs)`` once, recording every named submodule's first call; the calls
    in the order they started, and the output."""
    calls: dict[str, Call] = {}
    handles = []
    for path, sub in module.named_modules():

        def before(layer, layer_args, layer_kwargs, path=path):
            if path not in calls:
                args, kwargs = as_they_were((tuple(layer_args), dict(layer_kwargs)))
                calls[path] = Call(path, len(calls), args, kwargs, module=layer, state=snapshot(layer))
            calls[path].count += 1

        def after(layer, layer_args, layer_kwargs, output, path=path):
            if calls[path].output is None:
                calls[path].output = output

        handles.append(sub.register_forward_pre_hook(before, with_kwargs=True))
        handles.append(sub.register_forward_hook(after, with_kwargs=True))
    try:
        output = module(*args, **(kwargs or {}))
    finally:
        for handle in handles:
            handle.remove()
    return sorted(calls.values(), key=lambda call: call.order), output


class _Recorder:
    """Wraps the ``__call__`` of classes so that calls on one tree's modules are recorded."""

    def __init__(self, root: nnx.Module):
        self.paths = {id(layer): path for path, layer in submodules(root)}
        self.modules = {id(layer): layer for _, layer in submodules(root)}
        self.calls: dict[str, Call] = {}
        self.active: list[int] = []  # a subclass's __call__ calling its base's records the instance once

    def wrap(self, original):
        def wrapper(layer, *args, **kwargs):
            key = id(layer)
            if key not in self.paths or key in self.active:
                return original(layer, *args, **kwargs)
            path = self.paths[key]
            if path not in self.calls:
                given, named = as_they_were((args, kwargs))
                state = snapshot(layer)
                self.calls[path] = Call(path, len(self.calls), given, named, module=layer, state=state)
            record = self.calls[path]
            record.count += 1
            self.active.append(key)
            try:
                output = original(layer, *args, **kwargs)
            finally:
                self.active.pop()
            if record.output is None:
                record.output = output
            return output

        return wrapper


@contextlib.contextmanager
def wrapped_calls(root: nnx.Module):
    """Record calls on ``root``'s submodules while the context is open (the recorder's ``calls``, and
    ``active``: the ids of the layers being called, innermost last); restore the classes after."""
    recorder = _Recorder(root)
    originals = {}
    for cls in {type(layer) for _, layer in submodules(root)}:
        owner = next((c for c in cls.__mro__ if "__call__" in vars(c)), None)
        if owner is not None and owner not in originals:
            originals[owner] = vars(owner)["__call__"]
            owner.__call__ = recorder.wrap(originals[owner])
    try:
        yield recorder
    finally:
        for owner, original in originals.items():
            owner.__call__ = original


def capture_jax(module: nnx.Module, args: tuple, kwargs: dict | None = None) -> tuple[list[Call], object]:
    """Run ``module(*args, **kwargs)`` once, eagerly, recording every submodule's first call; the calls
    in the order they started, and the output."""
    with wrapped_calls(module) as recorder:
        output = module(*args, **(kwargs or {}))
    return sorted(recorder.calls.values(), key=lambda call: call.order), output
