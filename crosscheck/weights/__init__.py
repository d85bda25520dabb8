"""Weights: safetensors files and copies between frameworks, in PyTorch's ``state_dict`` format.

- :mod:`~crosscheck.weights.files`: safetensors I/O, validated reads, :class:`WeightsError`;
- :mod:`~crosscheck.weights.arrays`: exact, unshared copies between torch, NumPy and JAX;
- :mod:`~crosscheck.weights.layouts`: the registry of per-layer rules (the only place that knows
  how the two frameworks lay a parameter out);
- :mod:`~crosscheck.weights.tree`: module trees mapped by attribute path;
- :mod:`~crosscheck.weights.targets`: writes into live modules, all or nothing (meta, expanded and
  tied tensors checked before the first write);
- :mod:`~crosscheck.weights.transfer`: save, load and copy.
"""

from crosscheck.weights.arrays import numpy_of_torch, torch_of_numpy
from crosscheck.weights.files import Loaded
from crosscheck.weights.fit import Spec, WeightsError
from crosscheck.weights.layouts import Layout, ParamRule, layout_of, register_layout
from crosscheck.weights.transfer import (
    copy_jax_to_torch,
    copy_torch_to_jax,
    expected_specs,
    load_weights,
    save_weights,
)
from crosscheck.weights.tree import Entry, describe_module, plan, renamed, torch_state_of_jax

__all__ = [
    "Entry",
    "Layout",
    "Loaded",
    "ParamRule",
    "Spec",
    "WeightsError",
    "copy_jax_to_torch",
    "copy_torch_to_jax",
    "expected_specs",
    "layout_of",
    "load_weights",
    "numpy_of_torch",
    "describe_module",
    "plan",
    "register_layout",
    "renamed",
    "save_weights",
    "torch_of_numpy",
    "torch_state_of_jax",
]
