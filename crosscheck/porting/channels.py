"""Where the features axis sits: channels last ``(..., length, features)`` (jaxlin, ``nnx.Conv``) or
channels first ``(..., features, length)`` (``nn.Conv1d``).

>>> swap_channels(np.zeros((2, 5, 3))).shape
(2, 3, 5)
"""

from __future__ import annotations

import numpy as np


def swap_channels(a: np.ndarray) -> np.ndarray:
    """Channels last ``(..., length, features)`` <-> channels first ``(..., features, length)``; its
    own inverse.

    Shape:
        ``(..., a, b)`` -> ``(..., b, a)``.
    """
    return np.swapaxes(a, -1, -2)
