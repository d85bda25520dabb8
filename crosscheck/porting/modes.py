"""Both models in inference mode while they are checked, and exactly as they were afterwards.

A torch model left in training mode updates BatchNorm statistics and draws Dropout masks; a Flax
model in training mode does the same (and a Dropout then needs its RNG stream inside a trace). A
verdict on either would blame the port for randomness, so :func:`inference_mode` puts both in
inference mode (torch ``.eval()``; ``deterministic=True`` and ``use_running_average=True`` on every
Flax layer that has them, as ``nnx.Module.eval`` does) and, on the way out, restores each model
bit for bit: torch's per-module ``training`` flags, every parameter's ``.grad`` and
``requires_grad``, every buffer, the global torch RNG; the Flax model's attributes and its whole
state (parameters, statistics, RNG keys and counts).

>>> import torch
>>> layer = torch.nn.Dropout(0.5)
>>> with inference_mode(None, layer) as switched:
...     layer.training
False
>>> layer.training, switched
(True, ['torch Dropout at (model)'])
"""

from __future__ import annotations

import contextlib

import jax
import torch
from flax import nnx

from crosscheck.weights.tree import submodules

JAX_FLAGS = ("deterministic", "use_running_average")
"""The attributes ``nnx.Module.eval`` sets to True: Dropout's and BatchNorm's training switches."""

TORCH_MODE_TYPES = (torch.nn.modules.dropout._DropoutNd, torch.nn.modules.batchnorm._NormBase)
"""torch layers whose output depends on the mode (named when a check switches them)."""


def snapshot(module):
    """A module's state that a call may change, or ``None``: torch's buffers (copies), a Flax module's
    variables that are not parameters (arrays are immutable: holding them is a copy)."""
    if isinstance(module, nnx.Module):
        state = nnx.state(module, nnx.Not(nnx.Param))
        return jax.tree.map(lambda value: value, state) if jax.tree.leaves(state) else None
    buffers = {name: b.detach().clone() for name, b in module.named_buffers(remove_duplicate=False)}
    return buffers or None


def restore(module, state) -> None:
    """Give ``module`` back a :func:`snapshot`."""
    if state is None:
        return
    if isinstance(module, nnx.Module):
        nnx.update(module, state)
        return
    with torch.no_grad():
        for name, buffer in module.named_buffers(remove_duplicate=False):
            if name in state:
                buffer.copy_(state[name])


def _torch_snapshot(module):
    parameters = dict(module.named_parameters(remove_duplicate=False))
    return {
        "training": {sub: sub.training for sub in module.modules()},
        "grad": {name: p.grad for name, p in parameters.items()},
        "requires_grad": {name: p.requires_grad for name, p in parameters.items()},
        "buffers": snapshot(module),
    }


def _torch_restore(module, saved) -> None:
    for sub, training in saved["training"].items():
        sub.training = training
    parameters = dict(module.named_parameters(remove_duplicate=False))
    for name, p in parameters.items():
        p.grad = saved["grad"][name]
        p.requires_grad_(saved["requires_grad"][name])
    restore(module, saved["buffers"])


def _torch_switched(module) -> list[str]:
    return [
        f"torch {type(sub).__name__} at {path or '(model)'}"
        for path, sub in module.named_modules()
        if sub.training and isinstance(sub, TORCH_MODE_TYPES)
    ]


def _jax_flags(module) -> list[tuple[str, object, str, object]]:
    return [
        (path, layer, flag, getattr(layer, flag))
        for path, layer in submodules(module)
        for flag in JAX_FLAGS
        if isinstance(getattr(layer, flag, None), bool)
    ]


@contextlib.contextmanager
def inference_mode(jax_module, torch_module):
    """Both models (either may be ``None``) in inference mode inside; restored exactly on the way out.
    Yields the layers that were in training mode and so were switched, in words."""
    saved_torch = _torch_snapshot(torch_module) if torch_module is not None else None
    rng = torch.get_rng_state()
    flags = _jax_flags(jax_module) if jax_module is not None else []
    saved_state = nnx.to_pure_dict(nnx.state(jax_module)) if jax_module is not None else None
    switched = [f"Flax {type(layer).__name__} at {path or '(model)'} ({flag}=False)"
                for path, layer, flag, value in flags if value is False]  # fmt: skip
    if torch_module is not None:
        switched += _torch_switched(torch_module)
        torch_module.eval()
    for _, layer, flag, _ in flags:
        setattr(layer, flag, True)
    try:
        yield switched
    finally:
        for _, layer, flag, value in flags:
            setattr(layer, flag, value)
        if saved_state is not None:
            state = nnx.state(jax_module)
            nnx.replace_by_pure_dict(state, saved_state)
            nnx.update(jax_module, state)
        if saved_torch is not None:
            _torch_restore(torch_module, saved_torch)
        torch.set_rng_state(rng)
