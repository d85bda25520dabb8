"""``impl="auto"``: the formulation ``crosscheck study`` measured fastest, picked at trace time.

Every formulation computes the same function with the same parameters, so the choice is about speed
only. It is made from the backend and the input's shape when the layer is traced (no cost per call
under ``jax.jit``), by the rules below; each rule cites the measurement behind it in
``docs/study.md`` ("impl=auto"). Backends without measurements here (GPU, TPU) get the batched
formulation: one batched GEMM is what those devices are built for.
"""

from __future__ import annotations

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


def fastest_pointwise(rows: int, in_features: int, out_features: int, backend: str | None = None) -> str:
    """``"matmul"`` or ``"conv"`` for :class:`jaxlin.PointwiseConv` (and :class:`jaxlin.Linear`'s lowering).

    >>> fastest_pointwise(1024, 256, 32, "cpu")
    'matmul'
    """
    del rows, in_features, out_features, backend
    return "matmul"
