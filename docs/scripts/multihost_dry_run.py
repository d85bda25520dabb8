"""The multi-host recipe of docs/sharding.md, dry-run in one process: start JAX's distributed runtime,
build the global mesh, place a heads-sharded PerHeadLinear, run it, compare with the unsharded layer.

Usage: python docs/scripts/multihost_dry_run.py
On N hosts, run the same program on each with NUM_PROCESSES=N, PROCESS_ID=0..N-1 and
COORDINATOR=host0:port set; every process builds the same mesh over ``jax.devices()`` (all hosts').
"""

from __future__ import annotations

import os
import socket

import jax
import numpy as np
from flax import nnx

import jaxlin


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def main() -> None:
    processes = int(os.environ.get("NUM_PROCESSES", "1"))
    coordinator = os.environ.get("COORDINATOR", f"localhost:{_free_port()}")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=processes,
                               process_id=int(os.environ.get("PROCESS_ID", "0")))  # fmt: skip
    try:
        print(f"process {jax.process_index()} of {jax.process_count()}, {jax.device_count()} devices in all")
        auto = (jax.sharding.AxisType.Auto,)
        mesh = jax.make_mesh((jax.device_count(),), ("heads",), axis_types=auto)
        heads = 4 * jax.device_count()
        layer = jaxlin.PerHeadLinear(heads, 16, 8, rngs=nnx.Rngs(0))
        x = np.random.default_rng(0).standard_normal((2, 3, heads, 16)).astype(np.float32)
        expected = np.asarray(jaxlin.jitted(layer)(x))
        sharded = jaxlin.shard_heads(layer, mesh)
        got = np.asarray(jaxlin.jitted(sharded)(x))
        print(f"heads-sharded forward equals the unsharded one: {bool((got == expected).all())}")
    finally:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main()
