"""torch_ref.PointwiseConv: Conv1d(kernel_size=1)'s parameters and init, and the same function on both impls."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.torch_ref.helpers import F64, QUICK, grads
from torch_ref import Linear, PointwiseConv


def test_pointwise_matches_conv1d_init_and_state_dict():
    conv = PointwiseConv(6, 4, impl="conv")
    torch.manual_seed(0)
    reference = torch.nn.Conv1d(6, 4, 1)
    assert conv.state_dict().keys() == reference.state_dict().keys()
    assert torch.equal(conv.weight, reference.weight) and torch.equal(conv.bias, reference.bias)
    x = torch.randn(2, 6, 9)
    with torch.no_grad():
        assert torch.equal(conv(x), reference(x))


def _pointwise_pair(in_features, out_features, bias, dtype):
    conv = PointwiseConv(in_features, out_features, impl="conv", bias=bias, dtype=dtype)
    linear = PointwiseConv(in_features, out_features, impl="linear", bias=bias, dtype=dtype)
    linear.load_state_dict(conv.state_dict())
    return conv, linear


@QUICK
@given(
    batch=st.one_of(st.none(), st.integers(1, 3)),
    length=st.integers(1, 9),
    in_features=st.integers(1, 8),
    out_features=st.integers(1, 8),
    bias=st.booleans(),
)
def test_pointwise_conv_equals_linear(batch, length, in_features, out_features, bias):
    torch.manual_seed(0)
    for dtype, tol in ((F64, {"rtol": 1e-12, "atol": 1e-12}), (torch.float32, {"rtol": 1e-5, "atol": 1e-6})):
        conv, linear = _pointwise_pair(in_features, out_features, bias, dtype)
        shape = (in_features, length) if batch is None else (batch, in_features, length)
        x = torch.randn(shape, dtype=dtype, requires_grad=True)
        y_conv, y_linear = conv(x), linear(x)
        torch.testing.assert_close(y_linear, y_conv, **tol)
        for g_linear, g_conv in zip(grads(linear, y_linear, x), grads(conv, y_conv, x), strict=True):
            torch.testing.assert_close(g_linear, g_conv, **tol)
        dense = Linear(in_features, out_features, bias=bias, dtype=dtype)
        with torch.no_grad():
            dense.weight.copy_(conv.weight[..., 0])
            if bias:
                dense.bias.copy_(conv.bias)
            torch.testing.assert_close(dense(x.transpose(-1, -2)).transpose(-1, -2), y_conv, **tol)


@pytest.mark.parametrize("impl", ["matmul", "conv"])
@pytest.mark.parametrize("batch", [(2,), (0,), ()])
def test_a_zero_length_sequence_gives_an_empty_output_on_both_impls(impl, batch):
    y = PointwiseConv(3, 4, impl=impl)(torch.ones(*batch, 3, 0))
    assert y.shape == (*batch, 4, 0)


@pytest.mark.parametrize("old", ["linear", "dot"])
def test_the_old_names_of_the_matmul_path_are_accepted(old):
    assert PointwiseConv(3, 2, impl=old).impl == "matmul"
