"""torch_ref: the PyTorch mirror of jaxlin, with the same class names and PyTorch layouts.

Each module takes PyTorch's ``bias=True, device=None, dtype=None``, stores ``weight`` as
``(out, in)`` and validates its input with the messages of ``jaxlin._checks``.

Shape:
    see each class; features are the last axis except for ``PointwiseConv`` (channels first).

>>> import torch
>>> from torch_ref import Linear, collapse
>>> collapse(Linear(4, 8), Linear(8, 2))(torch.ones(3, 4)).shape
torch.Size([3, 2])
"""

from torch_ref.heads import PerHeadLinear
from torch_ref.invariant import BatchInvariantLinear
from torch_ref.linear import Linear, collapse
from torch_ref.pointwise import PointwiseConv
from torch_ref.pooling import PooledHead

__all__ = ["BatchInvariantLinear", "Linear", "PerHeadLinear", "PointwiseConv", "PooledHead", "collapse"]
