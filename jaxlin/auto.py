"""``impl="auto"``: the formulation ``crosscheck study`` measured fastest, picked at trace time.

Every formulation computes the same function with the same parameters, so the choice is about speed
only. It is made from the backend and the input's shape when the layer is traced (no cost per call
under ``jax.jit``), by the rules below; each rule cites the measurement behind it in
``docs/study.md`` ("impl=auto"). Backends without measurements here (GPU, TPU) get the batched
formulation: one batched GEMM is what those devices are built for.
"""

from __future__ import annotations

import math

import jax

LOOP_MIN_HEAD_WORK = 2**27
"""Multiply-adds per head (rows · in · out) from which a loop over heads beat the batched dot on CPU:
each head's dot is then large enough to run near peak on its own, and slicing a head out costs less
than XLA:CPU's transposing copy of the whole input to heads-major."""


def fastest_per_head(
    heads: int, rows: int, in_features: int, out_features: int, backend: str | None = None
) -> str:
    """``"loop"`` or ``"einsum"`` for :class:`jaxlin.PerHeadLinear` on heads-last input.

    >>> fastest_per_head(16, 2048, 64, 64, "cpu"), fastest_per_head(4, 2048, 512, 512, "cpu")
    ('einsum', 'loop')
    >>> fastest_per_head(4, 2048, 512, 512, "gpu")
    'einsum'
    """
    backend = backend or jax.default_backend()
    if backend != "cpu":
        return "einsum"
    if heads == 1 or rows * in_features * out_features >= LOOP_MIN_HEAD_WORK:
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
