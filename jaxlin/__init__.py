"""jaxlin: linear-layer variants as Flax NNX modules, mirrored in PyTorch by ``torch_ref``."""

from jaxlin import initializers, sharding
from jaxlin.heads import PerHeadLinear
from jaxlin.invariant import BatchInvariantLinear
from jaxlin.jit import jitted
from jaxlin.linear import Linear, collapse
from jaxlin.pointwise import PointwiseConv
from jaxlin.pooling import PooledHead
from jaxlin.sharding import shard_heads, shard_linear

__all__ = [
    "BatchInvariantLinear",
    "Linear",
    "PointwiseConv",
    "PooledHead",
    "PerHeadLinear",
    "collapse",
    "initializers",
    "jitted",
    "shard_heads",
    "shard_linear",
    "sharding",
]
__version__ = "0.1.0"
