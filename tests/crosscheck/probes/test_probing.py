"""The batch-size probe: it reports variation where a module varies, none for BatchInvariantLinear,
flags non-determinism and differences beyond rounding; ``crosscheck batch-probe`` and its errors.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crosscheck.probes.probing import default_batch_sizes, parse_batch_sizes, probe

K, N = 64, 16
WEIGHT = np.random.default_rng(0).standard_normal((K, N)).astype(np.float32)
ALLOWANCE = np.full((32, N), 1e-3)  # generous: a rounding-sized difference is far below it


def order_depends_on_batch(x):
    """Like a BLAS that picks another kernel above batch 1: the same sum, in reverse order."""
    return x @ WEIGHT if len(x) == 1 else x[:, ::-1] @ WEIGHT[::-1]


def rows(n=32, seed=1):
    return np.random.default_rng(seed).standard_normal((n, K)).astype(np.float32)


def test_a_module_whose_summation_order_follows_the_batch_size_is_reported():
    result = probe(order_depends_on_batch, rows(), [1, 2, 5, 32], allowance=ALLOWANCE)
    assert result.differing_batch_sizes == [2, 5, 32]
    assert 0 < result.fraction_bitwise_equal < 0.5  # the batch-1 rows are their own reference
    assert result.max_ulp >= 1 and 0 < result.max_error_over_allowance < 2
    assert result.deterministic
    assert [b["batch_size"] for b in result.per_batch] == [1, 2, 5, 32]
    assert result.per_batch[0]["rows_differing"] == 0 and result.per_batch[1]["rows_differing"] > 0


@given(sizes=st.lists(st.integers(1, 32), min_size=1, max_size=6, unique=True), seed=st.integers(0, 99))
def test_a_row_wise_function_is_invariant_for_any_sizes(sizes, seed):
    result = probe(lambda x: np.tanh(x) * 3, rows(seed=seed), sorted(sizes), allowance=ALLOWANCE)
    assert result.invariant and result.fraction_bitwise_equal == 1 and result.max_ulp == 0
    assert result.rows_compared == sum(b * len({s % 32 for s in (0, 1, 97)}) for b in sizes)


def test_a_position_dependent_function_is_caught_at_every_batch_above_one():
    def leaks_position(x):
        return x * (1 + 1e-6 * np.arange(len(x), dtype=np.float32))[:, None]

    result = probe(leaks_position, rows(), [1, 3, 8])
    assert result.differing_batch_sizes == [3, 8]
    assert result.max_error_over_allowance == 0  # no allowance given: the ratio is not computed


def test_batch_sizes_and_their_errors():
    assert default_batch_sizes() == [1, 2, 3, 4, 7, 8, 16, 32, 64, 128, 256]
    assert default_batch_sizes(5) == [1, 2, 3, 4, 5]
    assert parse_batch_sizes("1-4096")[-1] == 4096 and len(parse_batch_sizes("1-4096")) == 4096
    for text, message in (
        ("0", "'0' must be positive and increasing"),
        ("5-2", "'5-2' must be positive and increasing"),
        ("a", "'a' is not a size or a range like 1-4096"),
        (",", "',' names no size"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_batch_sizes(text)
    with pytest.raises(ValueError, match="the pool has 4 rows, fewer than the batch size 8"):
        probe(lambda x: x, rows(4), [8])
