"""crosscheck: jaxlin against torch_ref and float64 truth, with size-aware verdicts."""

from crosscheck.bounds import dot_bound, gamma, unit_roundoff
from crosscheck.weightfile import WeightsError
from crosscheck.weights import load_weights, save_weights

__all__ = ["WeightsError", "dot_bound", "gamma", "load_weights", "save_weights", "unit_roundoff"]
