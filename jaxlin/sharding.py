"""Sharding jaxlin modules over a device mesh: the natural specs, and helpers that place a module's state.

Every jaxlin layer takes Flax partitioning metadata on its initializers exactly as ``nnx.Linear``
does — ``kernel_init=nnx.with_partitioning(init, spec)``, built inside ``jax.set_mesh(mesh)`` (or
with eager sharding off) — and jaxlin's own initializers compose with it (``torch_uniform`` gets
its fan-in through the wrapper). The natural specs (:data:`HEADS`, :func:`column_parallel`,
:func:`row_parallel`):

- ``PerHeadLinear``: kernel ``(heads, in, out)`` -> ``P("heads", None, None)``, bias
  ``P("heads", None)``: each device holds whole heads, and a heads-sharded layer needs no
  communication at all, forward or backward.
- ``Linear`` / ``PointwiseConv``, column-parallel: the output features split, kernel
  ``P(None, "model")`` (``P(None, None, "model")`` for the 1x1 convolution), bias ``P("model")``; no
  communication, the output comes out sharded on its features.
- row-parallel: the input features split, kernel ``P("model", None)``, bias replicated; the partial
  products need one all-reduce.
- ``PooledHead``: ``projector`` column-parallel and ``classifier`` row-parallel (the mean over the
  sequence commutes with both), one all-reduce in all.

:func:`shard_heads` and :func:`shard_linear` place an existing module's state on a mesh (a helper
for modules built without metadata, or loaded from a checkpoint).

>>> import jax
>>> mesh = jax.make_mesh((1,), ("heads",))
>>> layer = shard_heads(jaxlin.PerHeadLinear(4, 8, 2, rngs=nnx.Rngs(0)), mesh)
>>> tuple(layer.kernel[...].sharding.spec)
('heads', None, None)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import jax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

import jaxlin
from layer_rules import messages

HEADS = {"kernel": PartitionSpec("heads", None, None), "bias": PartitionSpec("heads", None)}
"""PerHeadLinear's natural specs on a mesh axis named ``"heads"``."""


def column_parallel(axis: str = "model", *, pointwise: bool = False) -> dict[str, PartitionSpec]:
    """Specs splitting a ``Linear`` (or ``PointwiseConv``) on its output features along ``axis``."""
    kernel = PartitionSpec(None, None, axis) if pointwise else PartitionSpec(None, axis)
    return {"kernel": kernel, "bias": PartitionSpec(axis)}


def row_parallel(axis: str = "model", *, pointwise: bool = False) -> dict[str, PartitionSpec]:
    """Specs splitting a ``Linear`` (or ``PointwiseConv``) on its input features along ``axis``."""
    kernel = PartitionSpec(None, axis, None) if pointwise else PartitionSpec(axis, None)
    return {"kernel": kernel, "bias": PartitionSpec()}


def _layers(module: nnx.Module, kind) -> Iterator[nnx.Module]:
    for _, layer in nnx.iter_graph(module):
        if isinstance(layer, kind):
            yield layer


def _require_divisible(layer, what: str, size: int, mesh, axis: str) -> None:
    if axis not in mesh.shape:
        raise ValueError(
            f"{layer.describe()}: the mesh has no axis {axis!r}; its axes are {tuple(mesh.shape)}."
        )
    if size % mesh.shape[axis]:
        raise ValueError(
            f"{layer.describe()}: {what}={size} is not divisible by the mesh axis {axis!r} of size "
            f"{mesh.shape[axis]}; use a multiple of {mesh.shape[axis]} or a smaller axis."
        )


def _place(layer: nnx.Module, mesh, specs: dict[str, PartitionSpec]) -> None:
    for name, spec in specs.items():
        variable = getattr(layer, name, None)
        if variable is not None:
            variable.set_value(jax.device_put(variable[...], NamedSharding(mesh, spec)))


def shard_heads(module: nnx.Module, mesh: jax.sharding.Mesh, axis: str = "heads") -> nnx.Module:
    """Place every ``PerHeadLinear`` of ``module`` heads-sharded on ``mesh`` along ``axis`` (in place).

    Returns the module. Other parameters are left where they are.

    Raises:
        ValueError: a heads count not divisible by the axis's size, or no such axis.
    """
    for layer in _layers(module, jaxlin.PerHeadLinear):
        _require_divisible(layer, "num_heads", layer.num_heads, mesh, axis)
        _place(layer, mesh, {"kernel": PartitionSpec(axis, None, None), "bias": PartitionSpec(axis, None)})
    return module


def shard_linear(
    module: nnx.Module, mesh: jax.sharding.Mesh, axis: str = "model",
    parallel: Literal["column", "row"] = "column",
) -> nnx.Module:  # fmt: skip
    """Place every ``Linear`` and ``PointwiseConv`` of ``module`` column- or row-parallel on ``mesh``
    along ``axis`` (in place); returns the module.

    Raises:
        ValueError: a feature count not divisible by the axis's size, no such axis, or ``parallel``
        that is neither ``"column"`` nor ``"row"``.
    """
    messages.require_choice("shard_linear", "parallel", parallel, ("column", "row"))
    for layer in _layers(module, (jaxlin.Linear, jaxlin.PointwiseConv)):
        pointwise = isinstance(layer, jaxlin.PointwiseConv)
        what, size = (
            ("out_features", layer.out_features)
            if parallel == "column"
            else ("in_features", layer.in_features)
        )
        _require_divisible(layer, what, size, mesh, axis)
        specs = (column_parallel if parallel == "column" else row_parallel)(axis, pointwise=pointwise)
        _place(layer, mesh, specs)
    return module


def collectives(hlo_text: str) -> dict[str, int]:
    """How many of each collective a compiled program's HLO text holds.

    >>> collectives("%a = f32[8] all-reduce(%x), replica_groups={{0,1}}\\n%b = f32[8] add(%a, %a)")
    {'all-gather': 0, 'all-reduce': 1, 'reduce-scatter': 0, 'all-to-all': 0, 'collective-permute': 0}
    """
    names = ("all-gather", "all-reduce", "reduce-scatter", "all-to-all", "collective-permute")
    counts = dict.fromkeys(names, 0)
    for line in hlo_text.splitlines():
        for name in names:
            if f" {name}(" in line or f" {name}-start(" in line:
                counts[name] += 1
    return counts
