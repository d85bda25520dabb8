"""A model's output as a tree of arrays: flattened to ``(path, array)`` pairs, and two trees paired.

Both frameworks return arrays inside tuples, lists, dicts (a Hugging Face ``ModelOutput`` is one),
named tuples and dataclasses; ``None`` is skipped. A path names where an array sits: ``""`` for the
output itself, ``"[1]"`` for a position, ``".logits"`` for a key or field. Two outputs pair by path
when both trees have the same paths, else by position (a JAX tuple against a ``ModelOutput``);
what pairs with nothing is listed.

>>> import numpy as np
>>> [path for path, _ in flatten_output((np.ones(2), None, {"logits": np.ones(3)}), "Demo")]
['[0]', '[2].logits']
>>> pair_paths(["[0]", "[1]"], [".last_hidden_state", ".pooler_output", ".attentions"])
([('[0]', '.last_hidden_state'), ('[1]', '.pooler_output')], [], ['.attentions'])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import jax
import numpy as np


def is_array(value) -> bool:
    """A JAX array (a tracer too), a NumPy array or scalar, or a torch tensor."""
    if isinstance(value, (jax.Array, np.ndarray, np.generic)):
        return True
    return type(value).__module__.startswith("torch") and type(value).__name__ in ("Tensor", "Parameter")


def is_floating_array(value) -> bool:
    """Whether an array (either framework's) holds floating values."""
    if hasattr(value, "is_floating_point"):
        return bool(value.is_floating_point())
    dtype = np.dtype(value.dtype)
    return dtype.kind == "f" or dtype.name == "bfloat16"


def _children(tree) -> list[tuple[str, object]] | None:
    if isinstance(tree, Mapping):
        return [(f".{key}", value) for key, value in tree.items()]
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return [(f".{name}", getattr(tree, name)) for name in tree._fields]
    if isinstance(tree, (tuple, list)):
        return [(f"[{index}]", value) for index, value in enumerate(tree)]
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        return [(f".{f.name}", getattr(tree, f.name)) for f in dataclasses.fields(tree)]
    return None


class OutputTreeError(TypeError):
    """An output that holds something other than arrays, containers and ``None``."""


def flatten_output(tree, module_name: str, where: str = "") -> list[tuple[str, object]]:
    """Every array of an output tree with its path, in order; ``None`` skipped.

    Raises:
        OutputTreeError: (a TypeError) a leaf that is neither an array nor ``None`` (a string, a
        Python number), naming ``module_name`` and where the leaf sits.
    """
    if tree is None:
        return []
    if is_array(tree):
        return [(where, tree)]
    children = _children(tree)
    if children is None:
        raise OutputTreeError(
            f"{module_name}: the output holds a {type(tree).__name__} at output{where}; check compares "
            "arrays and tensors, in tuples, lists, dicts, named tuples and dataclasses (None is skipped)"
        )
    return [leaf for key, value in children for leaf in flatten_output(value, module_name, where + key)]


def pair_paths(
    jax_paths: list[str], torch_paths: list[str]
) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """``(pairs, JAX paths unpaired, torch paths unpaired)``: by path when both sides have the same
    paths, else by position."""
    if sorted(jax_paths) == sorted(torch_paths):
        return [(path, path) for path in jax_paths], [], []
    count = min(len(jax_paths), len(torch_paths))
    return (
        list(zip(jax_paths[:count], torch_paths[:count], strict=True)),
        jax_paths[count:],
        torch_paths[count:],
    )


def item_name(path: str) -> str:
    """The verdict's item for an output at ``path``: ``"output"``, ``"output[1]"``, ``"output.logits"``."""
    return "output" + path
