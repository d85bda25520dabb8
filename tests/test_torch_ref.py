"""Tests for torch_ref: error messages, equivalences between implementations, masking, init."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from torch_ref import Linear, PerHeadLinear, PointwiseConv, PooledHead, collapse
from torch_ref.pooling import masked_mean

F64 = torch.float64
QUICK = settings(deadline=None)  # max_examples comes from the profile in conftest.py


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def close64(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def grads(module: torch.nn.Module, y: torch.Tensor, *inputs: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of ``(y * g).sum()`` (fixed random ``g``) wrt the module's parameters and ``inputs``."""
    g = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(1))
    return list(torch.autograd.grad((y * g).sum(), [*module.parameters(), *inputs]))


# ---------------------------------------------------------------- errors: shapes


def test_linear_seed_message_names_the_features_axis():
    layer = Linear(128, 10)
    expected = (
        "Linear(in_features=128, out_features=10): expected input of shape (..., features=128), "
        "got (32, 128, 100); features are taken from the last axis (axis -1) and axis -1 has 100, not 128."
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        layer(torch.randn(32, 128, 100))


def test_linear_scalar_input():
    with pytest.raises(ValueError, match="a scalar has no features axis"):
        Linear(3, 2)(torch.tensor(1.0))


@pytest.mark.parametrize("impl", ["conv", "linear"])
def test_pointwise_channels_last_input_is_refused(impl):
    with pytest.raises(
        ValueError,
        match=r"PointwiseConv\(in_features=8, out_features=4\).*features are taken "
        r"from axis -2 \(channels first, as nn.Conv1d\) and axis -2 has 100, not 8",
    ):
        PointwiseConv(8, 4, impl=impl)(torch.randn(2, 100, 8))


def test_pointwise_rank():
    with pytest.raises(ValueError, match="rank-2 or rank-3 input .* not rank 4"):
        PointwiseConv(8, 4)(torch.randn(2, 8, 3, 3))


def test_per_head_wrong_count():
    layer = PerHeadLinear(4, 8, 2)
    with pytest.raises(
        ValueError,
        match=r"PerHeadLinear\(num_heads=4, in_features=8, out_features=2\): expected "
        r"input of shape \(\.\.\., heads=4, features=8\) with heads on axis -2, got \(2, 3, 8\); heads are taken from "
        r"head_axis=-2, which has 3, not 4",
    ):
        layer(torch.randn(2, 3, 8))


def test_per_head_heads_on_wrong_axis():
    with pytest.raises(ValueError, match=r"axis -3 has 4: move it to axis -2 or pass head_axis=-3"):
        PerHeadLinear(4, 8, 2)(torch.randn(2, 4, 7, 8))


def test_per_head_axis_is_features_axis():
    with pytest.raises(
        ValueError,
        match=r"head_axis must be an integer naming an axis other than the features "
        r"axis \(-1\), got -1",
    ):
        PerHeadLinear(4, 8, 2, head_axis=-1)


def test_per_head_axis_that_lands_on_the_features_axis_at_call_time():
    with pytest.raises(ValueError, match="head_axis=2 is the features axis of a rank-3 input; valid axes are 0..1 or -3..-2"):
        PerHeadLinear(4, 8, 2, head_axis=2)(torch.randn(2, 4, 8))


@pytest.mark.parametrize("bad", [1.5, "x", None, True])
def test_pooled_head_axis_argument_must_be_an_int(bad):
    with pytest.raises(
        ValueError, match="axis must be an integer naming an axis other than the features axis"
    ):
        PooledHead(4, 3, 2, axis=bad)


def test_pooled_head_activation_must_be_callable():
    with pytest.raises(
        TypeError,
        match=r"PooledHead\(.*\): activation must be a callable such as relu, or None, "
        r"got 'relu'",
    ):
        PooledHead(4, 3, 2, activation="relu")


def test_per_head_wrong_features():
    with pytest.raises(ValueError, match="features are taken from the last axis and axis -1 has 5, not 8"):
        PerHeadLinear(4, 8, 2)(torch.randn(2, 4, 5))


def test_pooled_axis_is_features_axis():
    with pytest.raises(ValueError, match=r"axis=2 is the features axis \(the last axis\)"):
        PooledHead(8, 4, 2, axis=2)(torch.randn(2, 5, 8))


@pytest.mark.parametrize("axis", [3, -4])
def test_pooled_axis_out_of_range(axis):
    with pytest.raises(ValueError, match=rf"axis={axis} is out of range for a rank-3 input"):
        PooledHead(8, 4, 2, axis=axis)(torch.randn(2, 5, 8))


def test_pooled_rank_one_input():
    with pytest.raises(ValueError, match="pooling needs a sequence axis"):
        PooledHead(8, 4, 2)(torch.randn(8))


def test_mask_wrong_shape():
    with pytest.raises(
        ValueError, match=r"expected mask of shape \(2, 5\), got \(2, 5, 8\); a mask has the input's"
    ):
        PooledHead(8, 4, 2)(torch.randn(2, 5, 8), mask=torch.ones(2, 5, 8, dtype=torch.bool))


def test_mask_not_bool():
    with pytest.raises(
        TypeError, match=r"expected a boolean mask \(True = a real position\), got dtype torch.int64"
    ):
        PooledHead(8, 4, 2)(torch.randn(2, 5, 8), mask=torch.ones(2, 5, dtype=torch.int64))


# ---------------------------------------------------------------- errors: dtypes and configuration

MODULES = [
    (lambda: Linear(8, 4), (2, 8)),
    (lambda: PointwiseConv(8, 4), (2, 8, 5)),
    (lambda: PerHeadLinear(3, 8, 4), (2, 3, 8)),
    (lambda: PooledHead(8, 4, 2), (2, 5, 8)),
]


@pytest.mark.parametrize("make, shape", MODULES)
def test_integer_input(make, shape):
    with pytest.raises(TypeError, match="expected a floating-point input, got dtype torch.int64"):
        make()(torch.ones(shape, dtype=torch.int64))


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


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: PointwiseConv(8, 4, impl="fft"), "impl must be one of 'conv', 'linear', got 'fft'."),
        (
            lambda: PerHeadLinear(2, 8, 4, impl="einsum"),
            "impl must be one of 'loop', 'bmm', 'vmap', got 'einsum'.",
        ),
        (
            lambda: PooledHead(8, 4, 2, pool_at="middle"),
            "pool_at must be one of 'input', 'hidden', 'output', got 'middle'.",
        ),
    ],
)
def test_bad_choice(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: Linear(0, 4),
            "Linear(in_features=0, out_features=4): in_features must be a positive integer, got 0.",
        ),
        (lambda: PointwiseConv(8, -1), "out_features must be a positive integer, got -1."),
        (lambda: PerHeadLinear(0, 8, 4), "num_heads must be a positive integer, got 0."),
        (lambda: PerHeadLinear(2, 8, 2.5), "out_features must be a positive integer, got 2.5."),
        (lambda: PooledHead(8, 0, 2), "hidden_features must be a positive integer, got 0."),
    ],
)
def test_non_positive_sizes(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_collapse_sizes_must_chain():
    expected = (
        "collapse(first=Linear(in_features=4, out_features=8), "
        "second=Linear(in_features=6, out_features=2)): the sizes don't chain; "
        "first's out_features=8 must equal second's in_features=6."
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        collapse(Linear(4, 8), Linear(6, 2))


def test_collapse_needs_linear_layers():
    with pytest.raises(
        TypeError, match="collapse: second must be a torch_ref.Linear or torch.nn.Linear, got Conv1d"
    ):
        collapse(Linear(4, 8), torch.nn.Conv1d(8, 2, 1))


# ---------------------------------------------------------------- Linear and collapse


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


# ---------------------------------------------------------------- PointwiseConv


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


# ---------------------------------------------------------------- PerHeadLinear


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


# ---------------------------------------------------------------- PooledHead


def _heads(pool_at_values, activation=None, reorder=False, dtype=F64, axis=-2):
    first = None
    out = {}
    for pool_at in pool_at_values:
        head = PooledHead(
            6, 7, 3, pool_at=pool_at, activation=activation, reorder=reorder, dtype=dtype, axis=axis
        )
        if first is None:
            first = head
        head.load_state_dict(first.state_dict())
        out[pool_at] = head
    return out


def _mask(shape, empty_rows=True):
    mask = torch.rand(shape) < 0.6
    mask[..., 0] = True
    if empty_rows:
        mask[0] = False
    return mask


def test_pooled_state_dict_names():
    assert list(PooledHead(6, 7, 3).state_dict()) == [
        "projector.weight",
        "projector.bias",
        "classifier.weight",
        "classifier.bias",
    ]


@pytest.mark.parametrize("use_mask", [False, True])
def test_pool_stages_agree_without_activation(use_mask):
    heads = _heads(("input", "hidden", "output"))
    x = torch.randn(4, 9, 6, dtype=F64, requires_grad=True)
    mask = _mask((4, 9), empty_rows=False) if use_mask else None
    outputs = {k: head(x, mask) for k, head in heads.items()}
    reference = grads(heads["input"], outputs["input"], x)
    for pool_at in ("hidden", "output"):
        assert close64(outputs[pool_at], outputs["input"])
        for got, want in zip(grads(heads[pool_at], outputs[pool_at], x), reference, strict=True):
            assert close64(got, want)


def test_pool_stages_differ_with_relu():
    heads = _heads(("input", "hidden"), activation=torch.relu)
    x = torch.randn(4, 9, 6, dtype=F64)
    with torch.no_grad():
        assert not torch.allclose(heads["input"](x), heads["hidden"](x))


@pytest.mark.parametrize("pool_at", ["input", "hidden", "output"])
@pytest.mark.parametrize("activation", [None, torch.relu])
@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize("axis", [-2, 1])
def test_reorder_is_the_same_function(pool_at, activation, use_mask, axis):
    literal = PooledHead(6, 7, 3, pool_at=pool_at, activation=activation, reorder=False, dtype=F64, axis=axis)
    moved = PooledHead(6, 7, 3, pool_at=pool_at, activation=activation, reorder=True, dtype=F64, axis=axis)
    moved.load_state_dict(literal.state_dict())
    assert literal.compute_stage == pool_at
    expected_stage = "input" if activation is None or pool_at == "input" else "hidden"
    assert moved.compute_stage == expected_stage
    x = torch.randn(4, 5, 9, 6, dtype=F64, requires_grad=True)
    mask = _mask((4, 5, 9)) if use_mask else None
    y_literal, y_moved = literal(x, mask), moved(x, mask)
    assert y_moved.shape == y_literal.shape == ((4, 9, 3) if axis == 1 else (4, 5, 3))
    assert close64(y_moved, y_literal)
    for got, want in zip(grads(moved, y_moved, x), grads(literal, y_literal, x), strict=True):
        assert close64(got, want)


def numpy_head(head: PooledHead, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The literal PooledHead in float64 numpy, ReLU activation, pooling over axis 1."""
    p = {k: v.detach().numpy().astype(np.float64) for k, v in head.state_dict().items()}

    def pool(h):
        count = mask.sum(axis=1)[..., None]
        return np.where(mask[..., None], h, 0.0).sum(axis=1) / np.maximum(count, 1)

    h = pool(x) if head.pool_at == "input" else x
    h = np.maximum(h @ p["projector.weight"].T + p["projector.bias"], 0.0)
    h = pool(h) if head.pool_at == "hidden" else h
    h = h @ p["classifier.weight"].T + p["classifier.bias"]
    return pool(h) if head.pool_at == "output" else h


@pytest.mark.parametrize("pool_at", ["input", "hidden", "output"])
@pytest.mark.parametrize("reorder", [False, True])
def test_masked_head_matches_numpy(pool_at, reorder):
    head = PooledHead(6, 7, 3, pool_at=pool_at, activation=torch.relu, reorder=reorder, dtype=F64)
    x = torch.randn(5, 8, 6, dtype=F64)
    mask = _mask((5, 8))
    with torch.no_grad():
        got = head(x, mask).numpy()
    np.testing.assert_allclose(got, numpy_head(head, x.numpy(), mask.numpy()), rtol=1e-12, atol=1e-12)


def test_masked_mean_matches_numpy_and_empty_rows_are_zero():
    x = torch.randn(5, 8, 4, dtype=F64)
    mask = _mask((5, 8))
    got = masked_mean(x, mask, axis=1).numpy()
    xn, mn = x.numpy(), mask.numpy()
    want = np.stack([xn[i][mn[i]].mean(axis=0) if mn[i].any() else np.zeros(4) for i in range(5)])
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    assert np.all(got[0] == 0.0)


@pytest.mark.parametrize("pool_at", ["input", "hidden", "output"])
@pytest.mark.parametrize("reorder", [False, True])
def test_all_masked_rows_have_no_nan_gradients(pool_at, reorder):
    head = PooledHead(6, 7, 3, pool_at=pool_at, activation=torch.relu, reorder=reorder)
    x = torch.randn(3, 8, 6, requires_grad=True)
    mask = torch.zeros(3, 8, dtype=torch.bool)
    mask[1, :3] = True
    y = head(x, mask)
    assert torch.isfinite(y).all()
    if pool_at == "output":
        assert torch.equal(y[0], torch.zeros(3)) and torch.equal(y[2], torch.zeros(3))
    g = grads(head, y, x)
    assert all(torch.isfinite(t).all() for t in g)
    assert torch.equal(g[-1][0], torch.zeros(8, 6))


def test_masked_mean_sums_half_precision_in_float32():
    x = torch.randn(8, 1000, 16).to(torch.bfloat16)
    mask = torch.rand(8, 1000) < 0.7
    keep = mask[..., None]
    expected = (torch.where(keep, x.float(), 0).sum(1) / keep.sum(1).float()).to(torch.bfloat16)
    got = masked_mean(x, mask, axis=1)
    assert got.dtype == torch.bfloat16 and torch.equal(got, expected)
