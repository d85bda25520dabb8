"""The study's mesh rows: the heads-sharded per-head layer over 1, 2, 4, ... devices.

On a CPU, ``--xla_force_host_platform_device_count`` devices share the machine's cores, so these rows
measure the correctness and the overhead of the sharded program, not a speed-up; on a machine with
several accelerators they measure the speed-up.

>>> device_counts(8)
[1, 2, 4, 8]
"""

from __future__ import annotations

import jax
import numpy as np

import jaxlin
import torch_ref
from crosscheck.study import names
from crosscheck.study.engine import Config, Impl
from crosscheck.study.inputs import per_head_magnitude, per_head_traffic, random_inputs, study_pair


def device_counts(largest: int) -> list[int]:
    """1, 2, 4, ... up to ``largest`` (and ``largest`` itself)."""
    counts, count = [], 1
    while count < largest:
        counts.append(count)
        count *= 2
    return counts + [largest]


def sharded_per_head(heads: int, size: int, leading: tuple[int, int], largest: int) -> Config:
    """One PerHeadLinear, heads-sharded over each device count up to ``largest``, on the same weights."""
    shape, rows = (*leading, heads, size), int(np.prod(leading))
    impls, module = [], None
    for count in device_counts(largest):
        module, _ = study_pair(jaxlin.PerHeadLinear, torch_ref.PerHeadLinear, heads, size, size, device="cpu")
        mesh = jax.make_mesh(
            (count,), ("heads",), axis_types=(jax.sharding.AxisType.Auto,), devices=jax.devices()[:count]
        )
        impls.append(
            Impl(names.sharded_per_head(count), "jax", jaxlin.jitted(jaxlin.shard_heads(module, mesh)))
        )
    kernel, bias = np.asarray(module.kernel[...]), np.asarray(module.bias[...])
    return Config(
        names.SHARDED,
        f"h{heads} {size}→{size} rows {rows}",
        {"heads": heads, "size": size, "rows": rows},
        2.0 * rows * heads * size * size,
        random_inputs(shape, "cpu"),
        impls,
        per_head_magnitude(kernel, bias, rows, heads, size),
        k=size + 1,
        checked_rows=lambda y: y.reshape(rows, heads, size)[:8],
        traffic=per_head_traffic(rows, heads, size),
    )
