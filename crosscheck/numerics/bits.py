"""Bit-level views of floating-point arrays: the raw bits, and distances in units in the last place.

>>> int(ulp_distance(np.float32(1.0), np.nextafter(np.float32(1.0), np.float32(2.0))))
1
>>> bits_of(np.float32([1.0])).tolist()
[1065353216]
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_SIGNED = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}


def is_floating(dtype) -> bool:
    """Whether ``dtype`` is a real floating type, ``ml_dtypes.bfloat16`` included.

    >>> is_floating(np.float16), is_floating(ml_dtypes.bfloat16), is_floating(np.int32)
    (True, True, False)
    """
    dtype = np.dtype(dtype)
    return dtype.kind == "f" or dtype == ml_dtypes.bfloat16


def bits_of(a) -> np.ndarray:
    """The bits of every element of ``a`` as an unsigned integer array of the same shape.

    Two floats are the same value bit for bit exactly when these integers are equal (so ``-0.0``
    differs from ``0.0`` and a NaN equals only the same NaN).

    Shape:
        ``a``'s shape.
    """
    a = np.ascontiguousarray(a)
    return a.view(_UNSIGNED[a.dtype.itemsize]).reshape(a.shape)


def ulp_distance(a, b) -> np.ndarray:
    """Number of representable values of ``a``'s dtype between ``a`` and ``b`` (as float64 counts).

    Both are rounded to ``a``'s floating dtype first (float64 for a non-floating ``a``); NaN anywhere
    gives ``inf``; ``-0.0`` and ``0.0`` are 0 apart. Counts are exact up to 2^53 (float64 values more
    than that many steps apart, across zero, are counted in float64's rounding).

    Shape:
        ``a`` and ``b`` broadcast together.
    """
    a = np.asarray(a)
    dtype = a.dtype if is_floating(a.dtype) else np.dtype(np.float64)
    a, b = np.broadcast_arrays(np.asarray(a, dtype), np.asarray(b).astype(dtype))
    distance = np.asarray(ulp_steps(a, b), np.float64)
    distance[np.isnan(a) | np.isnan(b)] = np.inf
    return distance


def ulp_steps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The steps between two same-shape arrays of one floating dtype as unsigned 64-bit integers, exact for
    every pair of bit patterns (a NaN's pattern is counted as any other's): each pattern onto the monotone
    line (``-magnitude`` for a negative sign, so ``-0.0`` is ``0``), the distance in 64 bits.

    Shape:
        ``a``'s, which ``b`` shares.
    """
    signed = _SIGNED[a.dtype.itemsize]
    bits = 8 * a.dtype.itemsize
    lines = []
    for values in (a, b):
        pattern = np.ascontiguousarray(values).view(signed).reshape(values.shape)
        sign = pattern >> (bits - 1)  # -1 where negative, else 0
        magnitude = pattern & signed(2 ** (bits - 1) - 1)
        lines.append(np.asarray((magnitude ^ sign) - sign, np.int64))
    if bits < 64:  # the lines span less than 2^33: their difference is exact in 64 bits
        return np.abs(np.subtract(*lines, out=lines[0])).view(np.uint64)
    first, second = lines  # two's complement: the larger minus the smaller is exact in 64 unsigned bits
    first, second = first.reshape(-1), second.reshape(-1)  # arrays, 0-d too (ufuncs give those scalars)
    behind = np.negative((first < second).astype(np.uint64))  # all ones where the first is behind
    steps = np.subtract(first.view(np.uint64), second.view(np.uint64))
    steps = np.subtract(np.bitwise_xor(steps, behind, out=steps), behind, out=steps)  # -steps there
    return steps.reshape(a.shape)
