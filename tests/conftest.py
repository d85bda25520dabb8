"""Strict JAX settings, a fixed seed and hypothesis profiles for every test.

Profiles: ``quick`` (default) and ``thorough`` (``HYPOTHESIS_PROFILE=thorough pytest``).
"""

import os

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_enable_x64", True)  # float64 truth; modules still default to float32 params

settings.register_profile(
    "quick", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))

SEED = 20261122

# tests/sharded needs 8 devices, set before JAX starts: tests/test_sharding.py runs it in its own process.
collect_ignore = [] if "device_count=8" in os.environ.get("XLA_FLAGS", "") else ["sharded"]


@pytest.fixture
def rng() -> np.random.Generator:
    """A NumPy generator with the suite's fixed seed."""
    return np.random.default_rng(SEED)
