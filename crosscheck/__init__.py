"""crosscheck: jaxlin (or any Flax NNX model) against its PyTorch twin and float64 truth, with
size-aware verdicts.

The public API is below (``__all__``). Each name is imported on first use (PEP 562), so that
``crosscheck --help`` and the NumPy-only numerics start without loading JAX and PyTorch.

>>> from crosscheck import compare, Bound
>>> compare([1.0], [1.0], bound=Bound([1.0], 4, "float32")).passed
True
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "AssertionMismatch": "crosscheck.numerics.comparison",
    "Bound": "crosscheck.numerics.bounds",
    "WeightsError": "crosscheck.weights.files",
    "align": "crosscheck.porting.align",
    "assert_close": "crosscheck.numerics.closeness",
    "check": "crosscheck.porting.checking",
    "compare": "crosscheck.numerics.closeness",
    "copy_jax_to_torch": "crosscheck.weights.transfer",
    "copy_torch_to_jax": "crosscheck.weights.transfer",
    "dot_bound": "crosscheck.numerics.bounds",
    "gamma": "crosscheck.numerics.bounds",
    "load_weights": "crosscheck.weights.transfer",
    "locate": "crosscheck.porting.locating",
    "probe": "crosscheck.probes.probing",
    "save_weights": "crosscheck.weights.transfer",
    "unit_roundoff": "crosscheck.numerics.bounds",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'crosscheck' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
