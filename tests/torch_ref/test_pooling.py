"""torch_ref.PooledHead and masked_mean: stages, reorder, masks (boolean or 0/1), empty rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.torch_ref.helpers import F64, close64, grads
from torch_ref import PooledHead
from torch_ref.pooling import masked_mean


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


@pytest.mark.parametrize("pool_at", ["input", "hidden", "output"])
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8])
def test_an_integer_mask_counts_nonzero_positions_like_a_boolean_one(pool_at, dtype):
    head = PooledHead(4, 3, 2, pool_at=pool_at, activation=torch.relu, reorder=True, dtype=F64)
    x = torch.randn(3, 5, 4, dtype=F64)
    mask = _mask((3, 5))
    with torch.no_grad():
        assert torch.equal(head(x, mask.to(dtype) * 3), head(x, mask))
