"""Strict JAX settings, a fixed seed, hypothesis profiles and the jit/eager ``variant`` for every test.

Profiles: ``quick`` (default) and ``thorough`` (``HYPOTHESIS_PROFILE=thorough pytest``).
"""

import os

import jax
import numpy as np
import pytest
from flax import nnx
from hypothesis import HealthCheck, settings

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_enable_x64", True)  # float64 truth; modules still default to float32 params

# ``variant`` is function-scoped but stateless (a transform), so sharing it across examples is sound.
SUPPRESSED = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
settings.register_profile("quick", max_examples=15, deadline=None, suppress_health_check=SUPPRESSED)
settings.register_profile("thorough", max_examples=200, deadline=None, suppress_health_check=SUPPRESSED)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))

SEED = 20261122

# tests/sharded needs 8 devices, set before JAX starts: tests/test_sharding.py runs it in its own process.
collect_ignore = [] if "device_count=8" in os.environ.get("XLA_FLAGS", "") else ["sharded"]


@pytest.fixture(autouse=True)
def _fresh_transforms():
    """Each test traces its own programs in tests._helpers (cached only within the test)."""
    from tests._helpers import forget_transformed  # here: jaxlin loads after the JAX settings above

    forget_transformed()


@pytest.fixture
def rng() -> np.random.Generator:
    """A NumPy generator with the suite's fixed seed."""
    return np.random.default_rng(SEED)


def without_jit(fn):
    """The eager variant: ``fn`` itself, every operation dispatched on its own."""
    return fn


@pytest.fixture(params=[nnx.jit, without_jit], ids=["with_jit", "without_jit"])
def variant(request):
    """``nnx.jit`` or no transform: a test taking ``variant`` runs traced and eagerly.

    What ``chex.variants(with_jit=True, without_jit=True)`` does for ``chex.TestCase`` classes, as a
    pytest fixture so that it composes with hypothesis and ``parametrize``. A Python branch on a
    value or a check that only runs eagerly makes one of the two fail.
    """
    return request.param
