"""Runs on a device mesh: the mesh from ``--mesh data=2,heads=4``, a case's JAX module sharded on it,
and its inputs placed batch-first on the ``data`` axis.

The axis named ``data`` (when there is one) splits the batch; the other axis splits the model:
``PerHeadLinear`` heads-sharded, ``Linear`` and ``PointwiseConv`` column-parallel
(:mod:`jaxlin.sharding`). torch_ref runs on one device, as always; ``check`` compares the two.

>>> model_axis(jax.make_mesh((1, 1), ("data", "heads")))
'heads'
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

import jaxlin
from crosscheck.runtime.mesh_specs import MeshSpec, devices_needed, parse_mesh  # noqa: F401 (part of this API)
from jaxlin.sharding import shard_heads, shard_linear


def make_mesh(spec: MeshSpec) -> jax.sharding.Mesh:
    """The mesh over this process's first ``devices_needed(spec)`` devices.

    Raises:
        ValueError: fewer devices than the mesh needs (with the hint for CPU host devices).
    """
    needed, have = devices_needed(spec), jax.device_count()
    if have < needed:
        raise ValueError(
            f"mesh {','.join(f'{n}={s}' for n, s in spec)} needs {needed} devices, this process has {have}; "
            f"on CPU, set XLA_FLAGS=--xla_force_host_platform_device_count={needed} before starting"
        )
    shape, names = tuple(size for _, size in spec), tuple(name for name, _ in spec)
    auto = (jax.sharding.AxisType.Auto,) * len(
        shape
    )  # XLA propagates the shardings (GSPMD), as jax.jit users expect
    return jax.make_mesh(shape, names, axis_types=auto, devices=jax.devices()[:needed])


def model_axis(mesh: jax.sharding.Mesh) -> str:
    """The axis that splits the model: the first one not named ``data``."""
    others = [name for name in mesh.axis_names if name != "data"]
    return others[0] if others else mesh.axis_names[0]


def shards(module: nnx.Module) -> bool:
    """Whether a run on a mesh shards this module (it holds a per-head or a linear layer)."""
    kinds = (jaxlin.PerHeadLinear, jaxlin.Linear, jaxlin.PointwiseConv)
    return any(isinstance(layer, kinds) for _, layer in nnx.iter_graph(module))


def shard_module(module: nnx.Module, mesh: jax.sharding.Mesh) -> nnx.Module:
    """Heads-shard every ``PerHeadLinear``, column-shard every other linear layer, on the model axis."""
    axis = model_axis(mesh)
    shard_heads(module, mesh, axis)
    return shard_linear(module, mesh, axis, "column")


def input_placer(mesh: jax.sharding.Mesh) -> Callable[[tuple], tuple]:
    """``place(inputs)``: each array's leading (batch) axis split on ``data`` when it divides, else
    replicated."""
    size = mesh.shape.get("data", 1)

    def place(inputs: tuple) -> tuple:
        placed = []
        for a in inputs:
            spec = (
                PartitionSpec("data")
                if np.ndim(a) and size > 1 and np.shape(a)[0] % size == 0
                else PartitionSpec()
            )
            placed.append(jax.device_put(a, NamedSharding(mesh, spec)))
        return tuple(placed)

    return place
