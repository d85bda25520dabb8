"""The GPU path, tested with what runs on a CPU-only machine: device selection and the sync calls that
make torch's CUDA timings honest (no GPU was lent to this project)."""

import numpy as np
import pytest
import torch

from crosscheck.runtime import devices
from crosscheck.runtime.devices import jax_device, torch_device, torch_sync
from crosscheck.study.engine import Config, Impl, run_config


def test_an_absent_platform_is_a_runtime_error_and_an_unknown_one_a_value_error():
    with pytest.raises(RuntimeError):
        jax_device("gpu")
    with pytest.raises(ValueError, match="unknown device 'cuda'; choose one of auto, cpu, gpu, tpu"):
        jax_device("cuda")


def test_torch_follows_a_gpu_run_onto_cuda_only_where_torch_sees_cuda(monkeypatch):
    assert torch_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert torch_device("gpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert torch_device("gpu") == "cuda" and torch_device("tpu") == "cpu"


def test_a_cuda_timing_synchronizes_after_every_call_and_a_cpu_one_never(monkeypatch):
    calls = []
    monkeypatch.setattr(devices.torch.cuda, "synchronize", lambda: calls.append("sync"))
    torch_sync("cuda")(None)
    torch_sync("cpu")(None)
    assert calls == ["sync"]


def test_the_study_syncs_torch_calls_on_the_device_it_is_given(monkeypatch):
    calls = []
    monkeypatch.setattr(devices.torch.cuda, "synchronize", lambda: calls.append("sync"))

    def make(seed, impl):
        x = np.random.default_rng(seed).standard_normal((4, 3)).astype(np.float32)
        return (torch.from_numpy(x),) if impl.framework == "torch" else (x,)

    impls = [Impl("numpy", "jax", lambda x: x * 2), Impl("torch", "torch", lambda x: x * 2)]
    records = run_config(Config("demo", "4x3", {}, 12.0, make, impls), torch_device="cuda", repeats=3)
    assert all(r["equal"] for r in records)
    # the torch call: its first call, the warm-up round and three timed rounds, each followed by a sync
    assert len(calls) == 5
