"""crosscheck: jaxlin against torch_ref and float64 truth, with size-aware verdicts."""

from crosscheck.bounds import dot_bound, gamma, unit_roundoff

__all__ = ["dot_bound", "gamma", "unit_roundoff"]
