"""Precision modes: recorded, applied and restored; the YNNPACK flag read as XLA reads it."""

import jax
import pytest
import torch

from crosscheck.runtime.precision import describe_precision, precision_mode, ynn_fusion


def test_precision_modes_are_recorded_and_restored():
    before = (torch.get_float32_matmul_precision(), jax.config.jax_default_matmul_precision)
    torch.set_float32_matmul_precision("high")
    try:
        with precision_mode("pinned"):
            pinned = describe_precision("pinned")
        assert pinned["torch_float32_matmul_precision"] == "highest" and not pinned["torch_cudnn_allow_tf32"]
        assert torch.get_float32_matmul_precision() == "high"
        with precision_mode("default"):
            assert describe_precision("default")["torch_float32_matmul_precision"] == "high"
    finally:
        torch.set_float32_matmul_precision(before[0])
    assert jax.config.jax_default_matmul_precision == before[1]
    with pytest.raises(ValueError, match="unknown mode 'fast'"):
        describe_precision("fast")


def test_ynnpack_fusion_flag():
    off = "--xla_cpu_experimental_ynn_fusion_type="
    assert ynn_fusion(off) is False and ynn_fusion(f"--a=1 {off}dot") is True and ynn_fusion("") is True
