"""torch's runs beside JAX's on a second thread, and the items judged two at a time: the same result to
the bit as one after the other, torch's error still named, and the sequential path wherever the memory is
not known to suffice."""

import threading

import numpy as np
import pytest
import torch

from crosscheck import check
from crosscheck.porting import checking, finishing, streaming
from crosscheck.porting.evaluate import ModelCallError
from crosscheck.weights import copy_torch_to_jax
from tests.crosscheck.porting.models import build_jax, build_torch


def _pair():
    theirs, ours = build_torch(), build_jax()
    copy_torch_to_jax(theirs, ours)
    return ours, theirs


def _items(result):
    return [(i.item, i.same_function.metrics, i.rounding.metrics, i.passed) for i in result.items]


def test_torch_beside_jax_gives_the_same_result_as_one_after_the_other(monkeypatch):
    ours, theirs = _pair()
    x = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    results, threads = {}, []
    original = checking.run_torch

    def recorded(prepared):
        threads.append(threading.current_thread().name)
        return original(prepared)

    monkeypatch.setattr(checking, "run_torch", recorded)
    for beside in (True, False):
        monkeypatch.setattr(checking, "fits_beside", lambda model, beside=beside: beside)
        results[beside] = check(ours, theirs, x)
    assert _items(results[True]) == _items(results[False]) and results[True].passed
    assert threads[0].startswith("crosscheck-torch")  # the sequential run calls finish_check's own copy
    assert all(p.grad is None for p in theirs.parameters()) and theirs.head.weight.dtype == torch.float32


def test_items_judged_two_at_a_time_are_those_judged_one_after_the_other(monkeypatch):
    ours, theirs = _pair()
    x = np.random.default_rng(1).standard_normal((5, 16)).astype(np.float32)
    results, threads = {}, set()
    original = finishing.judge_relative

    def recorded(*args, **kwargs):
        threads.add(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(finishing, "judge_relative", recorded)
    for spare in (True, False):
        monkeypatch.setattr(finishing, "judging_fits_beside", lambda largest, spare=spare: spare)
        results[spare] = check(ours, theirs, x)
    assert _items(results[True]) == _items(results[False]) and len(results[True].items) > 2
    assert any(name.startswith("crosscheck-judge") for name in threads)


def test_a_torch_model_raising_on_the_second_thread_is_still_named(monkeypatch):
    ours, theirs = _pair()
    monkeypatch.setattr(checking, "fits_beside", lambda model: True)

    def broken(module, args):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    handle = theirs.head.register_forward_pre_hook(broken)
    try:
        with pytest.raises(ModelCallError, match="the torch model .* raised on the inputs"):
            check(ours, theirs, np.ones((2, 16), np.float32))
    finally:
        handle.remove()


def test_fits_beside_says_no_where_the_system_does_not_say_how_much_memory_is_free(monkeypatch):
    monkeypatch.setattr(streaming, "system_memory", lambda: None)
    assert not streaming.fits_beside(torch.nn.Linear(2, 2))


def test_fits_beside_weighs_the_model_against_available_memory(monkeypatch):
    monkeypatch.setattr(streaming, "system_memory", lambda: (20 * 2**30, 24 * 2**30))
    assert streaming.fits_beside(torch.nn.Linear(1000, 1000))  # 4 MB: 120 MB at 30x
    assert not streaming.fits_beside(torch.nn.Embedding(130_000_000, 1, device="meta"))  # 15.6 GB > 20 - 6


def test_judging_two_items_at_a_time_weighs_the_largest_items_worst_case_against_available_memory(
    monkeypatch,
):
    monkeypatch.setattr(streaming, "system_memory", lambda: (20 * 2**30, 24 * 2**30))
    assert streaming.judging_fits_beside(33_000_000)  # an embedding's gradient: 2 × 80 B each, 5.3 GB
    assert not streaming.judging_fits_beside(263_000_000)  # a 1 B model's embedding: 42 GB > 20 - 6
    monkeypatch.setattr(streaming, "system_memory", lambda: None)
    assert not streaming.judging_fits_beside(1)


def test_system_memory_reads_this_machine():
    available, total = streaming.system_memory()
    assert 0 < available <= total


def test_locate_runs_rows_one_side_at_a_time_for_a_model_near_the_machine_size(monkeypatch):
    from crosscheck import locate

    ours, theirs = _pair()
    x = np.random.default_rng(1).standard_normal((3, 16)).astype(np.float32)
    threads = []
    original = checking.run_torch

    def recorded(prepared):
        threads.append(threading.current_thread().name)
        return original(prepared)

    monkeypatch.setattr(checking, "run_torch", recorded)
    tables = {}
    for whole_fits in (True, False):
        threads.clear()
        monkeypatch.setattr("crosscheck.porting.locating.rows_fit_beside", lambda model, f=whole_fits: f)
        tables[whole_fits] = str(locate(ours, theirs, x, grads=True, progress=False))
        beside = [name.startswith("crosscheck-torch") for name in threads]
        assert beside and all(beside) if whole_fits else not any(beside)
    assert tables[True] == tables[False]


def test_rows_fit_beside_for_a_model_up_to_a_sixteenth_of_the_machine(monkeypatch):
    monkeypatch.setattr(streaming, "system_memory", lambda: (20 * 2**30, 24 * 2**30))
    assert streaming.rows_fit_beside(torch.nn.Embedding(300_000_000, 1, device="meta"))  # 1.2 GB of 24
    assert not streaming.rows_fit_beside(torch.nn.Embedding(500_000_000, 1, device="meta"))  # 2 GB
    monkeypatch.setattr(streaming, "system_memory", lambda: None)
    assert not streaming.rows_fit_beside(torch.nn.Linear(2, 2))


def test_torchs_float64_run_goes_first_and_both_runs_start_from_the_same_state(monkeypatch):
    from flax import nnx

    from tests.crosscheck.porting.test_locate_layouts import TorchCounter

    class FirstCall(nnx.Module):
        """TorchCounter's first call: a run from another state scales its output by another count."""

        def __init__(self):
            self.proj = nnx.Linear(4, 4, rngs=nnx.Rngs(0))

        def __call__(self, x):
            return self.proj(x)

    theirs, ours = TorchCounter(), FirstCall()
    copy_torch_to_jax(theirs, ours)
    x = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    seen, original = [], finishing.evaluate_torch

    def recorded(module, *args, **kwargs):
        seen.append((module.proj.weight.dtype, float(module.calls)))
        return original(module, *args, **kwargs)

    monkeypatch.setattr(finishing, "evaluate_torch", recorded)
    for beside in (True, False):
        monkeypatch.setattr(checking, "fits_beside", lambda model, beside=beside: beside)
        seen.clear()
        result = check(ours, theirs, x)
        assert result.passed, str(result)
        assert seen == [(torch.float64, 0.0), (torch.float32, 0.0)]
        assert float(theirs.calls) == 0  # left as it was
