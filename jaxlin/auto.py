"""``impl="auto"``: the formulation ``crosscheck study`` measured fastest, picked at trace time.

Every formulation computes the same function with the same parameters, so the choice is about speed
only. It is made from the backend, the input's shape and dtype (and, for bfloat16 on CPU, the CPU's
features and XLA_FLAGS) when the layer is traced (no cost per call under ``jax.jit``), by the rules
below; each rule cites the measurement behind it in ``docs/study.md`` ("impl=auto"). Backends without
measurements here (GPU, TPU) get the batched formulation: one batched GEMM is what those devices are
built for.
"""

from __future__ import annotations

import functools
import math
import os

import jax
import jax.numpy as jnp

LOOP_MIN_HEAD_WORK = 2**27
"""Multiply-adds per head (rows · in · out) from which a loop over heads beat the batched dot on CPU:
each head's dot is then large enough to run near peak on its own, and slicing a head out costs less
than XLA:CPU's transposing copy of the whole input to heads-major."""


BFLOAT16_LOOP_MAX_HEADS = 16
BFLOAT16_LOOP_MIN_HEAD_WORK = 2**18
"""bfloat16 on a CPU without AMX, default XLA_FLAGS: XLA:CPU converts a bfloat16 dot's operands to
float32 (``wrapped_convert → ynn_fusion → wrapped_convert``), so the batched formulations convert and
transpose the whole input; the loop converts each head's slice in the fusion that cuts it out. The
loop ran 0.68–0.77× the einsum at h16·128 and h4·512 (heads last and heads first, 2048 rows) and
level at h8·64 (``docs/scripts/xla_cpu_flags.py``, AMD EPYC, docs/study.md "XLA:CPU options"), from
8 to 16 heads and 2¹⁸ multiply-adds per head: the range measured."""


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The ``flags`` of ``/proc/cpuinfo`` (empty where there is none: not Linux, a sandbox)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def bfloat16_dots_upcast(
    backend: str, flags: frozenset[str] | None = None, xla_flags: str | None = None
) -> bool:
    """Whether XLA:CPU runs a bfloat16 dot as a float32 one here, as measured on a CPU without AMX with
    the default YNNPACK fusion types (``--xla_cpu_experimental_ynn_fusion_type`` unset: set to ``dot``
    it keeps bfloat16, and the einsum was the faster formulation again). A CPU with AMX is not measured:
    ``False`` there, so the shape rules stand.

    >>> bfloat16_dots_upcast("cpu", frozenset({"avx512_bf16"}), "")
    True
    >>> bfloat16_dots_upcast("cpu", frozenset({"amx_bf16"}), ""), bfloat16_dots_upcast("gpu", frozenset(), "")
    (False, False)
    >>> bfloat16_dots_upcast("cpu", frozenset(), "--xla_cpu_experimental_ynn_fusion_type=dot")
    False
    """
    flags = cpu_flags() if flags is None else flags
    xla_flags = os.environ.get("XLA_FLAGS", "") if xla_flags is None else xla_flags
    return backend == "cpu" and "amx_bf16" not in flags and "ynn_fusion_type" not in xla_flags


def fastest_per_head(
    heads: int,
    rows: int,
    in_features: int,
    out_features: int,
    backend: str | None = None,
    dtype=None,
    *,
    heads_first: bool = False,
) -> str:
    """``"loop"`` or ``"einsum"`` for :class:`jaxlin.PerHeadLinear` on heads-last input (``heads_first``:
    on heads-first input, where the einsum needs no copy and is taken unless the bfloat16 rule says loop).

    >>> fastest_per_head(16, 2048, 64, 64, "cpu"), fastest_per_head(4, 2048, 512, 512, "cpu")
    ('einsum', 'loop')
    >>> fastest_per_head(4, 2048, 512, 512, "gpu")
    'einsum'
    """
    backend = backend or jax.default_backend()
    if backend != "cpu":
        return "einsum"
    work = rows * in_features * out_features
    if (
        dtype is not None
        and jnp.dtype(dtype) == jnp.bfloat16
        and heads <= BFLOAT16_LOOP_MAX_HEADS
        and work >= BFLOAT16_LOOP_MIN_HEAD_WORK
        and bfloat16_dots_upcast(backend)
    ):
        return "loop"
    if heads_first:
        return "einsum"
    if heads == 1 or work >= LOOP_MIN_HEAD_WORK:
        return "loop"
    return "einsum"


CONV_MIN_ROWS = 4096
"""Rows (batch · length) from which the 1×1-convolution lowering beat the plain dot on CPU, for an input
with a batch axis of 2 or more: XLA:CPU turns that convolution into its own dot, while ``dot_general``
goes to YNNPACK, whose GEMM ran 1.1–1.25× slower on such tall, narrow products (4,096–65,536 rows of
256→256). On a rank-2 input (or a batch of one) the convolution lowering was not faster."""


def fastest_pointwise(shape: tuple[int, ...], backend: str | None = None) -> str:
    """``"matmul"`` or ``"conv"`` for an input of ``shape`` ``(..., length, in)`` to
    :class:`jaxlin.PointwiseConv` or :class:`jaxlin.Linear` (both compute ``x @ W + b`` either way).

    >>> fastest_pointwise((128, 8, 256), "cpu"), fastest_pointwise((64, 1024, 256), "cpu")
    ('matmul', 'conv')
    >>> fastest_pointwise((65536, 256), "cpu"), fastest_pointwise((64, 1024, 256), "gpu")
    ('matmul', 'matmul')
    """
    backend = backend or jax.default_backend()
    if backend != "cpu" or len(shape) < 3:
        return "matmul"
    batch = math.prod(shape[:-2])
    return "conv" if batch >= 2 and batch * shape[-2] >= CONV_MIN_ROWS else "matmul"
