"""jaxlin.PooledHead, masked_mean and earliest_stage: where the mean goes, masks, reorder, errors.

Sizes are drawn from small fixed sets: eager JAX compiles every new shape, so a few shapes that
recur keep the suite fast while still covering no/one/several leading axes and a length-1 sequence.
"""

import math

import chex
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from crosscheck.numerics import gamma
from jaxlin import PooledHead
from jaxlin.pooling import masked_mean
from layer_rules import STAGES, earliest_stage
from tests._helpers import CHEAP, apply, jax_grads, loss_weights, numpy_init, params_of

IN, HIDDEN, OUT = 5, 7, 3
# (4,) and 6 are also the fixed (batch, seq) of the gradient tests, so their compiled programs are reused.
leading_shapes = st.sampled_from(((), (4,), (2, 3)))
seq_lengths = st.sampled_from((1, 6))
LENGTHS = np.array([3, 0, 6, 1])  # per row of a (4, 6, IN) batch: row 1 is all padding


def make(pool_at="input", activation=None, reorder=False, dtype=jnp.float64, axis=-2, seed=0):
    """A head with N(0, 1) kernels and biases: the same parameters for the same seed, any pool_at."""
    return PooledHead(
        IN,
        HIDDEN,
        OUT,
        pool_at=pool_at,
        activation=activation,
        reorder=reorder,
        axis=axis,
        param_dtype=dtype,
        kernel_init=numpy_init(seed),
        bias_init=numpy_init(seed + 1),
        rngs=nnx.Rngs(0),
    )


def padded_mask(lengths, seq) -> jax.Array:
    """``mask[b, t] = t < lengths[b]`` (True = a real position)."""
    return jnp.asarray(np.arange(seq) < np.asarray(lengths)[:, None])


def random_mask(rng, shape, *, empty_rows=False) -> np.ndarray:
    """A random mask over ``shape = (..., seq)`` with position 0 real, or with no real position in
    the first row when ``empty_rows``."""
    mask = rng.random(shape) < 0.6
    mask[..., 0] = True
    if empty_rows:
        mask.reshape(-1, shape[-1])[0] = False
    return mask


def magnitudes(head: PooledHead, x, mask, cotangent):
    """The affine head evaluated on absolute values, in float64: every rounding error of every
    pooling order is at most γ_K times these (output, parameter gradients, input gradient).

    Pooling first or last sums the same products (the mean commutes with |x|·|W|), so one
    majorant serves all three stages; ``x`` is ``(..., seq, in)`` with seq on axis -2.
    """
    p = {key: np.abs(value.astype(np.float64)) for key, value in params_of(head).items()}
    w1, b1, w2, b2 = (
        p[f"{layer}.{name}"] for layer in ("projector", "classifier") for name in ("kernel", "bias")
    )
    real = np.ones(x.shape[:-1]) if mask is None else np.asarray(mask, np.float64)
    count = np.maximum(real.sum(-1), 1)[..., None]
    pooled = (np.abs(np.asarray(x, np.float64)) * real[..., None]).sum(-2) / count
    hidden = pooled @ w1 + b1
    c = np.abs(np.asarray(cotangent, np.float64))
    back = c @ w2.T
    grads = {
        "classifier.kernel": hidden.reshape(-1, HIDDEN).T @ c.reshape(-1, OUT),
        "classifier.bias": c.reshape(-1, OUT).sum(0),
        "projector.kernel": pooled.reshape(-1, IN).T @ back.reshape(-1, HIDDEN),
        "projector.bias": back.reshape(-1, HIDDEN).sum(0),
    }
    input_grad = (back @ w1.T)[..., None, :] * real[..., None] / count[..., None]
    return hidden @ w2 + b2, grads, input_grad


def chain_length(x_shape) -> int:
    """K for γ_K: every addition on the longest path (mean, both layers, the backward reductions
    over all positions), plus a few roundings for divisions and bias adds."""
    positions = math.prod(x_shape[:-1])
    return positions + x_shape[-2] + IN + HIDDEN + OUT + 8


def assert_within(actual, expected, bound, what):
    excess = np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64)) - bound
    assert np.all(excess <= 0), f"{what}: exceeds the bound by up to {excess.max():.3e}"


def assert_same_function(got, want, head, x, mask, what):
    """``got``/``want`` are ``jax_grads`` results of two orders: each within γ_K·magnitude of the
    exact value, hence within twice that of each other."""
    (y1, g1, gx1), (y2, g2, gx2) = got, want
    cotangent = np.asarray(jnp.asarray(loss_weights(y2.shape), y2.dtype), np.float64)
    y_mag, g_mag, gx_mag = magnitudes(head, x, mask, cotangent)
    slack = 2 * gamma(chain_length(x.shape), np.dtype(y2.dtype).name)
    assert y1.shape == y2.shape and y1.dtype == y2.dtype
    assert_within(y1, y2, slack * y_mag, f"{what}: output")
    assert set(g1) == set(g2) == set(g_mag)
    for key in g_mag:
        assert_within(g1[key], g2[key], slack * g_mag[key], f"{what}: {key} gradient")
    assert_within(gx1, gx2, slack * gx_mag, f"{what}: input gradient")


# ---------------------------------------------------------------- pool_at without an activation


@pytest.mark.slow  # deselect with -m "not slow" (README)
@settings(deadline=None)
@given(
    dtype=st.sampled_from((jnp.float32, jnp.float64)),
    lead=leading_shapes,
    seq=seq_lengths,
    masked=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_without_activation_every_stage_is_the_same_function(variant, dtype, lead, seq, masked, seed):
    # The mean is a weighted sum with weights adding to one, so it commutes with both affine layers.
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal(lead + (seq, IN)), dtype)
    mask = jnp.asarray(random_mask(rng, lead + (seq,))) if masked else None
    heads = {stage: make(stage, dtype=dtype, seed=seed) for stage in STAGES}
    outputs = {stage: np.asarray(apply(head, x, mask, transform=variant)) for stage, head in heads.items()}
    assert outputs["input"].shape == lead + (OUT,) and outputs["input"].dtype == np.dtype(dtype)
    y_mag = magnitudes(heads["input"], x, mask, np.zeros(lead + (OUT,)))[0]
    bound = 2 * gamma(chain_length(x.shape), np.dtype(dtype).name) * y_mag
    for stage in ("hidden", "output"):
        assert_within(outputs[stage], outputs["input"], bound, stage)


# Gradients cost a compile per shape and stage: fixed configurations that the other tests reuse.
@pytest.mark.slow  # deselect with -m "not slow" (README)
@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "padded"])
def test_without_activation_every_stage_has_the_same_parameter_gradients(variant, dtype, masked):
    # The seed thread claims that pooling first or last gives different gradients. In exact
    # arithmetic it does not: the stages are one affine function of the parameters and the input,
    # so every gradient agrees; what differs is rounding only, within the γ_K bound checked here.
    x = jnp.asarray(np.random.default_rng(1).standard_normal((4, 6, IN)), dtype)
    mask = padded_mask(np.maximum(LENGTHS, 1), 6) if masked else None  # no empty row: see below
    results = {stage: jax_grads(make(stage, dtype=dtype), x, mask, transform=variant) for stage in STAGES}
    for stage in ("hidden", "output"):
        assert_same_function(results[stage], results["input"], make(dtype=dtype), x, mask, stage)


def test_an_all_masked_row_pools_to_zeros_at_the_stage_where_the_mean_is_taken():
    # So the stages differ on empty rows (documented): the layers after the mean see zeros.
    x = jnp.asarray(np.random.default_rng(1).standard_normal((4, 6, IN)))
    mask = padded_mask(LENGTHS, 6)
    p = {key: np.asarray(value) for key, value in params_of(make()).items()}
    empty = {stage: np.asarray(make(stage)(x, mask))[1] for stage in STAGES}
    np.testing.assert_array_equal(empty["output"], 0)
    np.testing.assert_allclose(empty["hidden"], p["classifier.bias"], rtol=0, atol=0)
    np.testing.assert_allclose(
        empty["input"], p["projector.bias"] @ p["classifier.kernel"] + p["classifier.bias"], rtol=1e-14
    )


def test_with_relu_pooling_before_the_activation_is_another_function():
    x = jnp.asarray(np.random.default_rng(1).standard_normal((4, 6, IN)))
    outputs = {stage: np.asarray(make(stage, jax.nn.relu)(x)) for stage in STAGES}
    assert np.abs(outputs["input"] - outputs["hidden"]).max() > 0.1
    # After the activation only the affine classifier is left: hidden and output still agree.
    np.testing.assert_allclose(outputs["output"], outputs["hidden"], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- reorder


@pytest.mark.slow  # deselect with -m "not slow" (README)
@pytest.mark.parametrize("pool_at", STAGES)
@pytest.mark.parametrize("activation", [None, jax.nn.relu], ids=["linear", "relu"])
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "padded-with-empty-row"])
def test_reorder_is_the_same_function_with_the_same_gradients(variant, pool_at, activation, masked):
    literal = make(pool_at, activation, reorder=False)
    moved = make(pool_at, activation, reorder=True)
    assert literal.compute_stage == pool_at
    assert moved.compute_stage == earliest_stage(pool_at, activation is not None)
    x = jnp.asarray(np.random.default_rng(1).standard_normal((4, 6, IN)))
    mask = padded_mask(LENGTHS, 6) if masked else None
    got, want = jax_grads(moved, x, mask, transform=variant), jax_grads(literal, x, mask, transform=variant)
    assert_same_function(got, want, literal, x, mask, f"reorder {pool_at}")
    chex.assert_tree_all_finite(got)  # the empty row's 0/0 must not leak into any gradient
    if masked:
        np.testing.assert_array_equal(got[2][1], 0)  # an all-padding row does not reach the loss


@pytest.mark.parametrize(
    "pool_at, has_activation, reorder, stage",
    [
        ("input", False, True, "input"),
        ("hidden", False, True, "input"),
        ("output", False, True, "input"),
        ("input", True, True, "input"),
        ("hidden", True, True, "hidden"),
        ("output", True, True, "hidden"),
        ("input", True, False, "input"),
        ("hidden", False, False, "hidden"),
        ("output", True, False, "output"),
    ],
)
def test_compute_stage_table(pool_at, has_activation, reorder, stage):
    activation = jax.nn.relu if has_activation else None
    head = PooledHead(
        IN, HIDDEN, OUT, pool_at=pool_at, activation=activation, reorder=reorder, **CHEAP, rngs=nnx.Rngs(0)
    )
    assert head.compute_stage == stage
    if reorder:
        assert earliest_stage(pool_at, has_activation) == stage


# ---------------------------------------------------------------- masked_mean


def numpy_masked_mean(x, mask, axis):
    """Float64 reference: the mean over the real positions, zeros where there are none."""
    x, keep = np.asarray(x, np.float64), np.expand_dims(np.asarray(mask), -1)
    count = keep.sum(axis)
    return np.where(count > 0, np.where(keep, x, 0).sum(axis) / np.maximum(count, 1), 0.0)


@settings(deadline=None)
@given(lead=leading_shapes, seq=seq_lengths, empty=st.booleans(), seed=st.integers(0, 2**16))
def test_masked_mean_matches_numpy_with_zeros_and_finite_gradients_for_empty_rows(
    variant, lead, seq, empty, seed
):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal(lead + (seq, IN)))
    mask = random_mask(rng, lead + (seq,), empty_rows=empty)
    axis = len(lead)
    pool = variant(lambda v, m: masked_mean(v, m, axis=axis))
    got = np.asarray(pool(x, jnp.asarray(mask)))
    np.testing.assert_allclose(got, numpy_masked_mean(x, mask, axis), rtol=1e-13, atol=1e-15)
    if empty:
        np.testing.assert_array_equal(got.reshape(-1, IN)[0], 0.0)
    # d/dx sum(mean * c) = c / count at real positions, 0 at padding (no NaN from 0/0).
    c = loss_weights(got.shape)
    grad = variant(jax.grad(lambda v, m: jnp.sum(masked_mean(v, m, axis) * c)))(x, jnp.asarray(mask))
    chex.assert_tree_all_finite(grad)
    grad = np.asarray(grad)
    count = np.maximum(mask.sum(-1, keepdims=True), 1)
    expected = np.where(mask[..., None], np.expand_dims(c, axis) / count[..., None], 0.0)
    np.testing.assert_allclose(grad, expected, rtol=1e-14, atol=0)


def test_masked_mean_without_a_mask_is_the_plain_mean():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 6, IN)))
    np.testing.assert_array_equal(masked_mean(x, None, axis=1), jnp.mean(x, axis=1))


def test_bfloat16_masked_mean_over_a_long_sequence_is_the_float32_mean_rounded():
    # 301 is not a bfloat16 number (a bfloat16 count would read 300): counts and sums run in float32.
    x = jnp.asarray(np.random.default_rng(1).standard_normal((4, 320, IN)) + 3, jnp.bfloat16)
    mask = padded_mask([301, 300, 257, 5], 320)
    got = masked_mean(x, mask, axis=1)
    assert got.dtype == jnp.bfloat16
    keep = np.asarray(mask)[..., None]
    x32 = np.asarray(x, np.float32)
    mean32 = np.where(keep, x32, 0).sum(1, dtype=np.float32) / keep.sum(1).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(got), mean32.astype(ml_dtypes.bfloat16))


# ---------------------------------------------------------------- axis


@pytest.mark.parametrize("pool_at", ["input", "output"])
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "padded"])
def test_axis_one_of_a_4d_input_pools_that_axis(pool_at, masked):
    x = jnp.asarray(np.random.default_rng(2).standard_normal((4, 6, 2, IN)))  # (batch, seq, windows, in)
    mask = np.broadcast_to(np.asarray(padded_mask(LENGTHS, 6))[:, :, None], (4, 6, 2)) if masked else None
    y = make(pool_at, jax.nn.relu, axis=1)(x, None if mask is None else jnp.asarray(mask))
    assert y.shape == (4, 2, OUT)
    moved = jnp.moveaxis(x, 1, -2)
    moved_mask = None if mask is None else jnp.asarray(np.moveaxis(mask, 1, -1))
    expected = make(pool_at, jax.nn.relu)(moved, moved_mask)
    np.testing.assert_allclose(y, expected, rtol=1e-13, atol=1e-13)


def test_axis_zero_pools_the_leading_axis():
    x = jnp.asarray(np.random.default_rng(2).standard_normal((6, 4, IN)))  # (seq, batch, in)
    mask = np.asarray(padded_mask(LENGTHS, 6)).T
    y = make("hidden", jax.nn.relu, axis=0)(x, jnp.asarray(mask))
    assert y.shape == (4, OUT)
    expected = make("hidden", jax.nn.relu)(jnp.swapaxes(x, 0, 1), jnp.asarray(mask.T))
    np.testing.assert_allclose(y, expected, rtol=1e-13, atol=1e-13)


# ---------------------------------------------------------------- errors

OWNER = "PooledHead(in_features=8, hidden_features=4, out_features=2, pool_at='input')"


def head_8_4_2(**kwargs):
    return PooledHead(8, 4, 2, **CHEAP, **kwargs, rngs=nnx.Rngs(0))


def test_a_numpy_boolean_mask_is_accepted():
    x = jnp.asarray(np.random.default_rng(1).standard_normal((4, 6, IN)))
    mask = np.arange(6) < np.maximum(LENGTHS, 1)[:, None]
    np.testing.assert_array_equal(make()(x, mask), make()(x, jnp.asarray(mask)))


@pytest.mark.parametrize("pool_at", STAGES)
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_an_integer_mask_counts_nonzero_positions_like_a_boolean_one(pool_at, dtype):
    # Hugging Face attention masks are int64 0/1; any nonzero entry is a real position.
    x = jnp.asarray(np.random.default_rng(2).standard_normal((4, 6, IN)))
    mask = np.arange(6) < LENGTHS[:, None]
    head = make(pool_at, jax.nn.relu, reorder=True)
    np.testing.assert_array_equal(head(x, mask.astype(dtype) * 3), head(x, mask))
