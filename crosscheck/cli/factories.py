"""``crosscheck locate``'s two models: built from ``module:function`` factories, then tried once on the
inputs, so that every way the command line can be wrong is a usage error (exit 2) in one line.

A factory is a zero-argument callable returning the model: a ``flax.nnx.Module`` for ``--jax``, a
``torch.nn.Module`` for ``--torch``. Whatever the import or the call raises — ``SystemExit`` included,
``KeyboardInterrupt`` excepted — and whatever else it returns is refused, naming the option.

This module loads JAX and PyTorch: :mod:`crosscheck.cli.locate` imports it when the command runs.

>>> first_line(ValueError("shapes do not match\\n  (2, 3) vs (3, 2)"))
'ValueError: shapes do not match'
>>> first_line(SystemExit(0)), first_line(SystemExit())
('SystemExit: 0', 'SystemExit: None')
>>> described(None), described(len), described(3)
('None', 'the function len', 'an int')
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

from crosscheck.porting.channels import channels_first_of, to_channels_first
from crosscheck.porting.evaluate import cast_inputs
from crosscheck.weights import torch_of_numpy

FACTORY = "a factory is a zero-argument callable returning the model"


def first_line(error: BaseException) -> str:
    """``Type: the first non-empty line of the message`` (``SystemExit``: its code)."""
    if isinstance(error, SystemExit):
        return f"SystemExit: {error.code!r}"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def described(value) -> str:
    """What a factory returned, in a few words."""
    if value is None:
        return "None"
    if inspect.isroutine(value) or inspect.isclass(value):
        kind = "class" if inspect.isclass(value) else "function"
        return f"the {kind} {getattr(value, '__qualname__', value)}"
    name = type(value).__qualname__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _factory_result(spec: str):
    """Import ``module`` from the current directory and call ``function()``; the exception on failure."""
    module_name, _, attribute = spec.partition(":")
    sys.path.insert(0, os.getcwd())
    try:
        return getattr(importlib.import_module(module_name), attribute)(), None
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # an import error, a missing name, a factory that raises or exits
        return None, error
    finally:
        sys.path.remove(os.getcwd())


def built_or_exit(parser: argparse.ArgumentParser, option: str, spec: str):
    """The model ``--jax``/``--torch`` ``spec`` builds, or exit 2 saying why there is none."""
    kinds = {"--jax": ("flax.nnx.Module", nnx.Module), "--torch": ("torch.nn.Module", torch.nn.Module)}
    expected, kind = kinds[option]
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        parser.error(f"{option} {spec}: expected MODULE:FACTORY, e.g. my_port:build")
    model, error = _factory_result(spec)
    if error is not None:
        parser.error(f"{option} {spec}: cannot build the model ({first_line(error)})")
    if not isinstance(model, kind):
        parser.error(f"{option} {spec} returned {described(model)}, expected a {expected} ({FACTORY})")
    return model


def _jax_error(model, inputs: list[np.ndarray]) -> BaseException | None:
    """What calling a copy of the JAX ``model`` on ``inputs`` (cast as ``locate`` casts them) raises."""
    floating = [
        a.dtype for a in jax.tree.leaves(nnx.state(model, nnx.Param)) if jnp.issubdtype(a.dtype, jnp.floating)
    ]
    dtype = floating[0] if floating else np.float32  # the working dtype, as locate casts the inputs to it
    copy = nnx.clone(model)  # new variables on the same arrays: the model's own (batch statistics, RNG) stay
    try:
        jax.block_until_ready(copy(*(jnp.asarray(a) for a in cast_inputs(inputs, dtype))))
    except KeyboardInterrupt:
        raise
    except BaseException as error:
        return error
    return None


def _torch_error(model, inputs: list[np.ndarray]) -> BaseException | None:
    """What calling the torch ``model`` in eval mode, without gradients, on ``inputs`` raises; every
    submodule's mode is put back afterwards."""
    floating = [p.dtype for p in model.parameters() if p.dtype.is_floating_point]
    dtype = str(floating[0]).removeprefix("torch.") if floating else "float32"
    arrays = list(cast_inputs(inputs, dtype))
    if arrays and channels_first_of(model).input:
        arrays[0] = to_channels_first(arrays[0])
    modes = {module: module.training for module in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(*map(torch_of_numpy, arrays))
    except KeyboardInterrupt:
        raise
    except BaseException as error:
        return error
    finally:
        for module, training in modes.items():
            module.training = training
    return None


def inputs_fit_or_exit(parser: argparse.ArgumentParser, jax_model, torch_model, inputs, shown: str) -> None:
    """Call each model once on ``inputs``; exit 2 with the model's own error in one line when it
    refuses them (``shown``: the input options as given)."""
    framework, error = "JAX", _jax_error(jax_model, inputs)
    if error is None:
        framework, error = "PyTorch", _torch_error(torch_model, inputs)
    if error is not None:
        parser.error(f"{shown}: the inputs do not fit the {framework} model ({first_line(error)})")
