"""What jaxlin and torch_ref modules are configured with, written once: stage order, impl names,
the batch-invariant tile size, and how a module describes itself in messages.

>>> compute_stage("output", has_activation=True, reorder=True)
'hidden'
>>> pointwise_impl("PointwiseConv(in_features=2, out_features=1)", "dot")
'matmul'
"""

from __future__ import annotations

from typing import Literal, get_args

from layer_rules.messages import describe, require_choice

Stage = Literal["input", "hidden", "output"]
STAGES = get_args(Stage)
"""Where a ``PooledHead`` can take its mean, in the order the data flows."""

PointwiseImpl = Literal["matmul", "conv", "dot", "linear"]
POINTWISE_IMPLS = ("matmul", "conv")
"""``PointwiseConv``'s two paths in both frameworks: one matrix product, or the convolution op."""

JaxPointwiseImpl = Literal["auto", "matmul", "conv", "dot", "linear"]
AUTO = "auto"
"""jaxlin's default impl: the path the study measured fastest for the backend and shape (``jaxlin.auto``)."""

POINTWISE_ALIASES = {"dot": "matmul", "linear": "matmul"}
"""Older names of the matmul path (jaxlin said ``"dot"``, torch_ref ``"linear"``); still accepted."""

JaxPerHeadImpl = Literal["auto", "einsum", "vmap", "loop"]
TorchPerHeadImpl = Literal["bmm", "vmap", "loop"]
PER_HEAD_IMPLS = {"jax": get_args(JaxPerHeadImpl), "torch": get_args(TorchPerHeadImpl)}
"""``PerHeadLinear``'s formulations: each framework's batched contraction, vmap, and a loop over heads."""

DEFAULT_TILE_ROWS = 128
"""Rows per matmul call of ``BatchInvariantLinear``: a tile of 128 rows keeps a large batch within a
few percent of one big matmul on CPU while costing a single row 128 rows' work."""


def earliest_stage(pool_at: str, has_activation: bool) -> str:
    """The earliest stage where the mean gives the same function as pooling at ``pool_at``.

    A (masked) mean is a weighted sum with weights adding to one, so it commutes with any
    affine map but not with a nonlinearity: it may move back to just after the activation,
    and all the way to the input when there is none.

    >>> earliest_stage("output", has_activation=False), earliest_stage("output", has_activation=True)
    ('input', 'hidden')
    """
    if not has_activation:
        return "input"
    return STAGES[min(STAGES.index(pool_at), STAGES.index("hidden"))]


def compute_stage(pool_at: str, has_activation: bool, reorder: bool) -> str:
    """Where a ``PooledHead`` actually takes its mean: ``pool_at``, or the earliest stage with ``reorder``."""
    return earliest_stage(pool_at, has_activation) if reorder else pool_at


def pointwise_impl(owner: str, impl: str, choices: tuple[str, ...] = POINTWISE_IMPLS) -> str:
    """``impl`` of a ``PointwiseConv`` in the shared vocabulary, or ValueError listing the choices."""
    impl = POINTWISE_ALIASES.get(impl, impl)
    require_choice(owner, "impl", impl, choices)
    return impl


class Described:
    """Mixin: ``describe()`` names the module and its configuration, as every error message does.

    A class lists the attributes that identify it in ``_config``.

    >>> class Demo(Described):
    ...     _config = ("in_features",)
    ...     in_features = 3
    >>> Demo().describe()
    'Demo(in_features=3)'
    """

    _config: tuple[str, ...] = ()

    def describe(self) -> str:
        """``"Linear(in_features=4, out_features=2)"``: the class name and its ``_config`` attributes."""
        return describe(type(self).__name__, **{name: getattr(self, name) for name in self._config})
