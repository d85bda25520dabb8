"""The collectives XLA compiles into sharded jaxlin programs on a (data=2, heads=4) mesh of 8 devices.

Usage: XLA_FLAGS=--xla_force_host_platform_device_count=8 python docs/scripts/sharding_hlo.py

PerHeadLinear(8, 32, 16) heads-sharded (input replicated over data, or batch-split on data too),
forward and backward (gradients of the parameters and the input); Linear(64, 32) column- and
row-parallel, forward. Prints the count of each collective in the optimized HLO.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

import jaxlin
from jaxlin.sharding import collectives


def _compiled(layer, x, *, backward: bool) -> str:
    graphdef, params = nnx.split(layer, nnx.Param)

    def forward(p, x):
        return nnx.merge(graphdef, p)(x)

    function = (
        jax.jit(jax.grad(lambda p, x: jnp.sum(forward(p, x)), argnums=(0, 1)))
        if backward
        else jax.jit(forward)
    )
    return function.lower(params, x).compile().as_text()


def main() -> None:
    mesh = jax.make_mesh((2, 4), ("data", "heads"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
    heads = jaxlin.shard_heads(jaxlin.PerHeadLinear(8, 32, 16, rngs=nnx.Rngs(0)), mesh)
    x = np.random.default_rng(0).standard_normal((4, 6, 8, 32)).astype(np.float32)
    for spec in (PartitionSpec(None, None, "heads"), PartitionSpec("data", None, "heads")):
        placed = jax.device_put(x, NamedSharding(mesh, spec))
        for backward in (False, True):
            counts = collectives(_compiled(heads, placed, backward=backward))
            direction = "backward" if backward else "forward"
            print(f"PerHeadLinear heads-sharded, input {spec}, {direction}: {counts}")
    rows = np.random.default_rng(1).standard_normal((8, 64)).astype(np.float32)
    for parallel, spec in (("column", PartitionSpec()), ("row", PartitionSpec(None, "heads"))):
        layer = jaxlin.shard_linear(jaxlin.Linear(64, 32, rngs=nnx.Rngs(0)), mesh, "heads", parallel)
        counts = collectives(
            _compiled(layer, jax.device_put(rows, NamedSharding(mesh, spec)), backward=False)
        )
        print(f"Linear {parallel}-parallel, input {spec}, forward: {counts}")


if __name__ == "__main__":
    main()
