"""torch_ref.Linear and collapse: an nn.Linear, the dtype check, and two linears merged into one."""

from __future__ import annotations

import re

import pytest
import torch

from tests.torch_ref.helpers import F64, close64
from torch_ref import Linear, PerHeadLinear, PointwiseConv, PooledHead, collapse

MODULES = [
    (lambda: Linear(8, 4), (2, 8)),
    (lambda: PointwiseConv(8, 4), (2, 8, 5)),
    (lambda: PerHeadLinear(3, 8, 4), (2, 3, 8)),
    (lambda: PooledHead(8, 4, 2), (2, 5, 8)),
]


@pytest.mark.parametrize("make, shape", MODULES)
def test_dtype_mismatch(make, shape):
    module = make()
    with pytest.raises(
        TypeError,
        match=re.escape(
            f"{module.describe()}: expected input of dtype torch.float32, got torch.float64; "
            "cast the input or the module (module.to(torch.float64))."
        ),
    ):
        module(torch.ones(shape, dtype=F64))


def test_linear_is_nn_linear():
    layer = Linear(5, 3)
    torch.manual_seed(0)
    reference = torch.nn.Linear(5, 3)
    assert isinstance(layer, torch.nn.Linear)
    assert list(layer.state_dict()) == ["weight", "bias"]
    assert torch.equal(layer.weight, reference.weight) and torch.equal(layer.bias, reference.bias)


@pytest.mark.parametrize("bias1, bias2", [(True, True), (True, False), (False, True), (False, False)])
def test_collapse_equals_composition(bias1, bias2):
    a, b = Linear(6, 9, bias=bias1, dtype=F64), Linear(9, 4, bias=bias2, dtype=F64)
    x = torch.randn(3, 5, 6, dtype=F64)
    merged = collapse(a, b)
    assert (merged.bias is not None) == (bias1 or bias2)
    with torch.no_grad():
        assert close64(merged(x), b(a(x)))


def test_collapse_accepts_nn_linear_and_keeps_dtype():
    a, b = torch.nn.Linear(6, 9), Linear(9, 4)
    merged = collapse(a, b)
    assert isinstance(merged, Linear) and merged.weight.dtype == torch.float32
    x = torch.randn(7, 6)
    with torch.no_grad():
        torch.testing.assert_close(merged(x), b(a(x)), rtol=1e-5, atol=1e-5)
