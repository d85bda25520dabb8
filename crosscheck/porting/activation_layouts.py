"""The same activations in another layout: NHWC vs NCHW, ``(batch, seq, heads, head_dim)`` vs
``(batch, seq, heads·head_dim)``, or both at once.

A port keeps the numbers of its reference and lays them out its own way. :func:`find_layout` finds,
from two float64 arrays of the same function, the axis permutation and split or merge of axes that
turns the torch array into the JAX one — trying every permutation of either side's axes, before and
after a reshape — and keeps the candidate whose values agree best. It is decided on values only when
they agree well (a relative RMS difference under :data:`AGREE`); a layer whose numbers differ (a bug)
keeps the layout its inputs were found in, or, when nothing decides, is not judged.

>>> x = np.arange(24.0).reshape(2, 3, 4)
>>> layout = find_layout(x, np.transpose(x, (0, 2, 1)))
>>> layout.describe(), bool((layout.to_jax(np.transpose(x, (0, 2, 1))) == x).all())
('torch (2, 4, 3) -> JAX (2, 3, 4): axes (0, 2, 1)', True)
>>> find_layout(x.reshape(2, 3, 2, 2), x).describe()
'torch (2, 3, 4) -> JAX (2, 3, 2, 2): split'
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

AGREE = 1e-6
"""Relative RMS difference under which two float64 arrays are taken to hold the same numbers."""
_MAX_AXES = 6  # 720 permutations: beyond it only reshapes without permutation are tried


@dataclass(frozen=True)
class Layout:
    """Torch array -> JAX array: transpose by ``before``, reshape to ``shape``, transpose by ``after``.

    Shape:
        ``to_jax``: the torch array's shape -> the JAX array's; ``to_torch`` the other way.
    """

    torch_shape: tuple[int, ...]
    jax_shape: tuple[int, ...]
    before: tuple[int, ...]
    shape: tuple[int, ...]
    after: tuple[int, ...]

    @property
    def identity(self) -> bool:
        return (
            self.torch_shape == self.jax_shape
            and self.before == tuple(range(len(self.before)))
            and (self.after == tuple(range(len(self.after))))
        )

    def to_jax(self, array):
        """Torch's array in the JAX layout (a torch tensor moved by torch, so gradients flow; else NumPy)."""
        return _moved(array, self.before, self.shape, self.after)

    def to_torch(self, array):
        """The JAX layout's array in torch's (a torch tensor moved by torch; else NumPy)."""
        return _moved(array, tuple(np.argsort(self.after)), self._between, tuple(np.argsort(self.before)))

    @property
    def _between(self) -> tuple[int, ...]:
        return tuple(self.torch_shape[i] for i in self.before)

    def describe(self) -> str:
        """``"torch (2, 3, 32) -> JAX (2, 3, 4, 8): split"``, ``"... : axes (0, 2, 3, 1)"``, ..."""
        words = []
        if self.before != tuple(range(len(self.before))):
            words.append(f"axes {self.before}")
        if self.shape != self._between:
            words.append("split" if len(self.shape) > len(self._between) else "merge")
            if len(self.shape) == len(self._between):
                words[-1] = f"reshape to {self.shape}"
        if self.after != tuple(range(len(self.after))):
            words.append(f"axes {self.after}")
        return f"torch {self.torch_shape} -> JAX {self.jax_shape}: {', then '.join(words) or 'same'}"


def _moved(array, first: tuple[int, ...], shape: tuple[int, ...], then: tuple[int, ...]):
    """Transpose by ``first``, reshape to ``shape``, transpose by ``then``: a torch tensor with its own
    ``permute``/``reshape`` (differentiable), anything else with NumPy."""
    if hasattr(array, "permute"):
        return array.permute(first).reshape(shape).permute(then)
    return np.transpose(np.reshape(np.transpose(np.asarray(array), first), shape), then)


def _candidates(torch_shape: tuple[int, ...], jax_shape: tuple[int, ...]):
    """Every layout of the two families: permute torch's axes then reshape, or reshape to a permutation
    of JAX's shape then permute; the identity first."""
    n, m = len(torch_shape), len(jax_shape)
    if int(np.prod(torch_shape)) != int(np.prod(jax_shape)):
        return
    same_n, same_m = tuple(range(n)), tuple(range(m))
    yield Layout(torch_shape, jax_shape, same_n, jax_shape, same_m)
    if n <= _MAX_AXES:
        for before in itertools.permutations(range(n)):
            yield Layout(torch_shape, jax_shape, before, jax_shape, same_m)
    if m <= _MAX_AXES:
        for after in itertools.permutations(range(m)):
            shape = tuple(jax_shape[i] for i in np.argsort(after))
            yield Layout(torch_shape, jax_shape, same_n, shape, after)


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    scale = np.sqrt(np.mean(np.square(a))) or 1.0
    return float(np.sqrt(np.mean(np.square(a - b))) / scale)


def find_layout(jax_array, torch_array, *, agree: float = AGREE) -> Layout | None:
    """The layout turning ``torch_array`` into ``jax_array`` (float64 values of the same function), or
    ``None`` when no candidate's values agree within ``agree`` (relative RMS). The identity is tried
    first, so an honest layer of one layout costs one comparison."""
    a, b = np.asarray(jax_array, np.float64), np.asarray(torch_array, np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        a, b = np.nan_to_num(a, posinf=1e300, neginf=-1e300), np.nan_to_num(b, posinf=1e300, neginf=-1e300)
    best, best_difference = None, np.inf
    seen = set()
    for layout in _candidates(b.shape, a.shape):
        key = (layout.before, layout.shape, layout.after)
        if key in seen:
            continue
        seen.add(key)
        difference = _difference(a, layout.to_jax(b))
        if difference < best_difference:
            best, best_difference = layout, difference
        if difference <= agree:  # random activations agree under one layout only: the first will do
            break
    return best if best_difference <= agree else None


def assumed_layout(
    torch_shape: tuple[int, ...], jax_shape: tuple[int, ...], *, same_shape_first: bool = False
) -> Layout | None:
    """The layout taken when values cannot decide: a plain split or merge of axes in order, else channels
    moved from axis 1 to the last (NCHW -> NHWC), else ``None``; with ``same_shape_first``, equal shapes
    are taken as they are.

    >>> assumed_layout((2, 17, 32), (2, 17, 4, 8)).describe()
    'torch (2, 17, 32) -> JAX (2, 17, 4, 8): split'
    >>> assumed_layout((2, 3, 5, 6), (2, 5, 6, 3)).describe()
    'torch (2, 3, 5, 6) -> JAX (2, 5, 6, 3): axes (0, 2, 3, 1)'
    """
    n, m = len(torch_shape), len(jax_shape)
    if int(np.prod(torch_shape)) != int(np.prod(jax_shape)):
        return None
    if n != m or (same_shape_first and tuple(torch_shape) == tuple(jax_shape)):
        return Layout(torch_shape, jax_shape, tuple(range(n)), jax_shape, tuple(range(m)))
    move = (0, *range(2, n), 1)
    if n >= 3 and tuple(torch_shape[i] for i in move) == tuple(jax_shape):
        return Layout(torch_shape, jax_shape, move, jax_shape, tuple(range(m)))
    return None
