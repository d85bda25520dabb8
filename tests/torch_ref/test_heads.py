"""torch_ref.PerHeadLinear: loop, bmm and vmap compute the same function; heads on any axis; per-head init."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from tests.torch_ref.helpers import F64, QUICK, close64, grads
from torch_ref import PerHeadLinear


def per_head_reference(layer: PerHeadLinear, x: torch.Tensor) -> torch.Tensor:
    """Head by head with ``F.linear``, heads on axis -2."""
    heads = []
    for h in range(layer.num_heads):
        heads.append(F.linear(x[..., h, :], layer.weight[h], None if layer.bias is None else layer.bias[h]))
    return torch.stack(heads, dim=-2)


def _per_head_impls(num_heads, in_features, out_features, bias, dtype, head_axis=-2):
    layers = {
        impl: PerHeadLinear(
            num_heads, in_features, out_features, impl=impl, bias=bias, dtype=dtype, head_axis=head_axis
        )
        for impl in ("loop", "bmm", "vmap")
    }
    for layer in layers.values():
        layer.load_state_dict(layers["loop"].state_dict())
    return layers


@QUICK
@given(
    lead=st.lists(st.integers(1, 3), max_size=2),
    num_heads=st.integers(1, 4),
    in_features=st.integers(1, 6),
    out_features=st.integers(1, 5),
    bias=st.booleans(),
)
def test_per_head_impls_agree(lead, num_heads, in_features, out_features, bias):
    torch.manual_seed(0)
    for dtype, tol in ((F64, {"rtol": 1e-12, "atol": 1e-12}), (torch.float32, {"rtol": 1e-5, "atol": 1e-5})):
        layers = _per_head_impls(num_heads, in_features, out_features, bias, dtype)
        x = torch.randn(*lead, num_heads, in_features, dtype=dtype, requires_grad=True)
        expected = per_head_reference(layers["loop"], x)
        expected_grads = grads(layers["loop"], expected, x)
        for impl, layer in layers.items():
            y = layer(x)
            assert y.shape == (*lead, num_heads, out_features), impl
            torch.testing.assert_close(y, expected, **tol)
            for got, want in zip(grads(layer, y, x), expected_grads, strict=True):
                torch.testing.assert_close(got, want, **tol)


@pytest.mark.parametrize("impl", ["loop", "bmm", "vmap"])
@pytest.mark.parametrize("bias", [True, False])
def test_per_head_axis_one_on_4d_input(impl, bias):
    moved = PerHeadLinear(3, 5, 4, impl=impl, head_axis=1, bias=bias, dtype=F64)
    x = torch.randn(2, 3, 7, 5, dtype=F64)
    y = moved(x)
    assert y.shape == (2, 3, 7, 4)
    expected = per_head_reference(moved, x.movedim(1, -2)).movedim(-2, 1)
    assert close64(y, expected)


def test_per_head_init_uses_per_head_fan_in():
    layer = PerHeadLinear(8, 256, 64)
    bound = 1 / math.sqrt(256)
    for param in (layer.weight, layer.bias):
        assert param.abs().max() <= bound
    assert abs(layer.weight.std().item() / (bound / math.sqrt(3)) - 1) < 0.02
    assert abs(layer.bias.std().item() / (bound / math.sqrt(3)) - 1) < 0.15
