"""torch_ref.BatchInvariantLinear's tiles on worker threads: rows bitwise independent of the batch
without autograd too, the same bits as the tiles run in the calling thread, the caller's thread count
and modes respected.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import torch_ref
from tests.torch_ref.helpers import QUICK
from torch_ref import invariant, tiles

DTYPES = st.sampled_from((torch.float32, torch.bfloat16))


def bits(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().view(torch.int16 if t.dtype == torch.bfloat16 else torch.int32).numpy()


@QUICK
@given(
    rows=st.integers(1, 300),
    position=st.integers(0, 299),
    tile_rows=st.sampled_from((1, 3, 16, 128)),
    dtype=DTYPES,
    seed=st.integers(0, 2**16),
)
def test_rows_without_autograd_do_not_depend_on_the_batch(rows, position, tile_rows, dtype, seed):
    torch.manual_seed(seed)
    layer = torch_ref.BatchInvariantLinear(96, 80, tile_rows=tile_rows).to(dtype)
    x = torch.randn(rows, 96).to(dtype)
    row = position % rows
    with torch.no_grad():
        batch, alone = layer(x), layer(x[row : row + 1])
    np.testing.assert_array_equal(bits(batch[row]), bits(alone[0]))


@pytest.mark.parametrize("tracked", [False, True])
def test_worker_threads_and_the_calling_thread_give_the_same_bits(monkeypatch, tracked):
    layer = torch_ref.BatchInvariantLinear(64, 48, tile_rows=16)
    x = torch.randn(5, 21, 64, requires_grad=tracked)
    on_workers = layer(x)
    monkeypatch.setattr(invariant, "plain_cpu", lambda *tensors: False)
    in_caller = layer(x)
    np.testing.assert_array_equal(bits(on_workers), bits(in_caller))
    if tracked:
        g = torch.randn(on_workers.shape)
        (from_workers,) = torch.autograd.grad(on_workers, x, g)
        (from_caller,) = torch.autograd.grad(in_caller, x, g)
        np.testing.assert_array_equal(bits(from_workers), bits(from_caller))


def test_every_tile_runs_on_one_blas_thread_and_the_callers_count_is_kept():
    before = torch.get_num_threads()
    counts = tiles.each_on_one_thread(lambda i: torch.get_num_threads(), 6, parallel=True)
    in_caller = tiles.each_on_one_thread(lambda i: torch.get_num_threads(), 2, parallel=False)
    assert counts == [1] * 6 and in_caller == [1, 1]
    assert torch.get_num_threads() == before


def test_the_callers_grad_and_inference_modes_reach_the_workers():
    layer = torch_ref.BatchInvariantLinear(8, 4, tile_rows=2)
    x = torch.randn(9, 8)
    with torch.inference_mode():
        assert layer(x).is_inference()
    with torch.no_grad():
        assert not layer(x).requires_grad
    assert layer(x).requires_grad  # the weight needs a gradient


def test_calls_from_several_threads_at_once_give_the_same_bits():
    layer = torch_ref.BatchInvariantLinear(64, 32, tile_rows=8)
    x = torch.randn(70, 64)
    with torch.no_grad():
        expected = bits(layer(x))
    results = []

    def call():
        with torch.no_grad():
            results.append(bits(layer(x)))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and all(np.array_equal(r, expected) for r in results)


def test_transforms_and_autocast_keep_the_tiles_in_the_calling_thread():
    layer = torch_ref.BatchInvariantLinear(6, 5, tile_rows=2)
    x = torch.randn(5, 6)
    assert torch.func.jacrev(layer)(x).shape == (5, 5, 5, 6)
    assert torch.func.vmap(layer)(torch.randn(3, 5, 6)).shape == (3, 5, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not tiles.plain_cpu(x)
        assert layer(x).dtype == torch.bfloat16
