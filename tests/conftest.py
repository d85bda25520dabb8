"""Strict JAX settings, a fixed seed, hypothesis profiles and the jit/eager ``variant`` for every test.

Profiles: ``quick`` (default) and ``thorough`` (``HYPOTHESIS_PROFILE=thorough pytest``).
"""

import os
import shutil
import tempfile

import jax
import numpy as np
import pytest
from flax import nnx
from hypothesis import HealthCheck, settings


def _share_compiled_programs() -> str | None:
    """One persistent compilation cache for the whole run: its test workers and the processes its tests
    start load a program traced before with the same shapes (a layer of a size another test built, the
    same float64 truth) instead of compiling it again; XLA's compiling was over half the suite's time.

    The cache is the run's own, a temporary folder removed at its end, so no program compiled from an
    earlier version of the code is ever loaded (the cache's key is the program and the flags it was
    compiled with, never the source). A cache set by the user (``JAX_COMPILATION_CACHE_DIR``, which the
    workers inherit) is used as it is and left in place. Returns the folder this process made, if any.
    """
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    folder = tempfile.mkdtemp(prefix="jaxlin-tests-compiled-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # the small programs add up
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return folder


_OWN_CACHE = _share_compiled_programs()


def pytest_unconfigure(config):
    """The run's compilation cache goes with the process that made it (after its workers have ended)."""
    if _OWN_CACHE is not None:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


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
