"""layer_rules: what jaxlin and torch_ref share, free of any framework.

Shape rules and their one-sentence error messages (:mod:`layer_rules.messages`), and the
configuration vocabulary both mirror (:mod:`layer_rules.options`): stage order, impl names, tile
size, ``describe()``. Neither imports jax or torch, so ``import torch_ref`` needs no JAX.
"""

from layer_rules.messages import describe, require_positive, shape_str
from layer_rules.options import (
    AUTO,
    DEFAULT_TILE_ROWS,
    PER_HEAD_IMPLS,
    POINTWISE_IMPLS,
    STAGES,
    Described,
    JaxPerHeadImpl,
    JaxPointwiseImpl,
    PointwiseImpl,
    Stage,
    TorchPerHeadImpl,
    compute_stage,
    earliest_stage,
    pointwise_impl,
)

__all__ = [
    "AUTO",
    "DEFAULT_TILE_ROWS",
    "PER_HEAD_IMPLS",
    "POINTWISE_IMPLS",
    "STAGES",
    "Described",
    "JaxPerHeadImpl",
    "JaxPointwiseImpl",
    "PointwiseImpl",
    "Stage",
    "TorchPerHeadImpl",
    "compute_stage",
    "describe",
    "earliest_stage",
    "pointwise_impl",
    "require_positive",
    "shape_str",
]
