"""The probed modules: BatchInvariantLinear shows no variation in any mode, every module is probed
without errors, and the verdict fails what it should."""

import numpy as np
import pytest

from crosscheck.probes.probing import probe
from crosscheck.suite.batch_probe import pool_limit, probe_case, verdict
from crosscheck.suite.cases import probe_cases
from tests.crosscheck.probes.test_probing import ALLOWANCE, K, order_depends_on_batch, rows


def test_different_math_beyond_rounding_and_non_determinism_fail_the_verdict():
    subject = probe_cases()["linear"]
    scaled = probe(
        lambda x: x * (1.0 if len(x) == 1 else 1.5), rows(), [1, 4], allowance=np.full((32, K), 1e-3)
    )
    assert scaled.max_error_over_allowance > 2
    assert verdict(subject, scaled) == (
        False,
        "differences exceed two rounding allowances (different math, not rounding)",
    )
    noise = np.random.default_rng(3)
    noisy = probe(lambda x: x + noise.standard_normal(x.shape).astype(np.float32) * 1e-6, rows(), [1, 2])
    assert not noisy.deterministic and "repeated calls gave different bits" in verdict(subject, noisy)[1]


def test_a_module_that_promises_invariance_fails_when_it_varies():
    promised = probe_cases()["batch-invariant-linear"]
    result = probe(order_depends_on_batch, rows(), [1, 2], allowance=ALLOWANCE)
    assert verdict(promised, result)[0] is False
    assert verdict(probe_cases()["linear"], result) == (True, "varies within rounding")


@pytest.mark.slow  # deselect with -m "not slow" (README)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_batch_invariant_linear_shows_no_variation_in_any_mode(dtype):
    records = probe_case(
        probe_cases()["batch-invariant-linear"], dtype, ("jax.jit", "eager", "torch"), [1, 2, 3, 7, 130]
    )
    assert [(r["framework"], r["mode"]) for r in records] == [
        ("jaxlin", "jax.jit"),
        ("jaxlin", "eager"),
        ("torch_ref", "torch"),
    ]
    for record in records:
        assert record["passed"] and record["verdict"] == "invariant", record
        assert record["differing_batch_sizes"] == [] and record["fraction_bitwise_equal"] == 1.0
        assert record["deterministic"] and record["max_ulp"] == 0


@pytest.mark.slow  # deselect with -m "not slow" (README)
def test_every_subject_is_probed_in_every_mode_without_errors():
    for name, subject in probe_cases().items():
        for record in probe_case(subject, "float32", ("jax.jit", "torch"), [1, 2]):
            assert "ERROR" not in record["verdict"] and record["rows_compared"] == 6, (name, record)


def test_the_pool_limit_follows_the_modules_width_the_dtype_and_the_memory():
    linear = probe_cases()["linear"]  # 768 features in, 768 out
    gib = pool_limit(linear, "float32", memory=2**30)
    assert pool_limit(linear, "float64", memory=2**30) < gib < pool_limit(linear, "bfloat16", memory=2**30)
    assert pool_limit(linear, "float32", memory=2**32) == pytest.approx(4 * gib, rel=1e-3)
    assert 10_000 < gib < 2**29 // (768 * 4)  # half the memory, and more than the pool alone
