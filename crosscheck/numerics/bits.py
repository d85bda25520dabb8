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
    gives ``inf``; ``-0.0`` and ``0.0`` are 0 apart.

    Shape:
        ``a`` and ``b`` broadcast together.
    """
    a = np.asarray(a)
    dtype = a.dtype if is_floating(a.dtype) else np.dtype(np.float64)
    signed = _SIGNED[dtype.itemsize]
    if dtype.itemsize <= 4 and np.shape(a) == np.shape(b):
        return _narrow_ulp_distance(np.asarray(a, dtype), np.asarray(b).astype(dtype), signed)
    ia = np.asarray(np.asarray(a, dtype).view(signed), np.float64)
    ib = np.asarray(np.asarray(b).astype(dtype).view(signed), np.float64)
    # Map sign-magnitude to a monotone integer line so -0.0 and +0.0 are 0 apart.
    top = float(2 ** (8 * dtype.itemsize - 1))
    ia = np.where(ia < 0, -top - ia, ia)
    ib = np.where(ib < 0, -top - ib, ib)
    nan = np.isnan(np.asarray(a, np.float64)) | np.isnan(np.asarray(b).astype(np.float64))
    return np.where(nan, np.inf, np.abs(ia - ib))


def _narrow_ulp_distance(a: np.ndarray, b: np.ndarray, signed) -> np.ndarray:
    """:func:`ulp_distance` of two same-shape arrays of one floating dtype of at most 32 bits, in
    integers: each bit pattern onto the monotone line (``-magnitude`` for a negative sign, so ``-0.0``
    is ``0``), the distance in 64 bits; every count exact, as in float64 (under 2^33)."""
    bits = 8 * a.dtype.itemsize
    lines = []
    for values in (a, b):
        pattern = np.ascontiguousarray(values).view(signed).reshape(values.shape)
        sign = pattern >> (bits - 1)  # -1 where negative, else 0
        magnitude = pattern & signed(2 ** (bits - 1) - 1)
        lines.append(np.array((magnitude ^ sign) - sign, np.int64))
    distance = np.array(np.abs(np.subtract(*lines, out=lines[0])), np.float64)
    distance[np.isnan(a) | np.isnan(b)] = np.inf
    return distance
