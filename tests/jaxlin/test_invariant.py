"""BatchInvariantLinear in both frameworks: rows (and input-gradient rows) bitwise independent of
the batch they are computed in, float64 truth within the rounding bound, Linear's weights, errors.
"""

from copy import deepcopy as copy_module

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import given
from hypothesis import strategies as st

import jaxlin
import torch_ref
from crosscheck.numerics import dot_bound
from crosscheck.weights import load_weights, save_weights
from tests._helpers import numpy_init

IN, OUT = 768, 768  # the seed's layer: plain Linear rows differ with the batch size here
# Leading shapes from 1 to 4,096 rows; few distinct shapes, since each one compiles.
LEADING = st.sampled_from(((1,), (2,), (3,), (7,), (129,), (4096,), (3, 43), (2, 8, 16), (1, 1, 5)))
DTYPES = st.sampled_from(("float32", "bfloat16"))


def bits(a) -> np.ndarray:
    """The raw bits of an array, so equality is bitwise (and NaN equals itself)."""
    a = np.ascontiguousarray(np.asarray(a))
    return a.view(f"u{a.dtype.itemsize}")


def rows_of(x: np.ndarray, dtype: str, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(x).astype(np.float32).astype(jnp.dtype(dtype))


@pytest.fixture(scope="module")
def jax_layer():
    return jaxlin.BatchInvariantLinear(IN, OUT, rngs=nnx.Rngs(0), bias_init=nnx.initializers.normal(1.0))


@pytest.fixture(scope="module")
def torch_layer(jax_layer):
    layer = torch_ref.BatchInvariantLinear(IN, OUT)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.asarray(jax_layer.kernel[...]).T.copy()))
        layer.bias.copy_(torch.from_numpy(np.array(jax_layer.bias[...])))
    return layer


def jax_forward_and_input_grad(layer, transform=None):
    """``compute(x, g)`` -> output and the input gradient for cotangent ``g``, parameters cast to
    the rows' dtype; through ``transform`` (``nnx.jit``: one program per shape) when given. One
    ``compute`` per layer and transform within a test, so a shape drawn again reuses its program.
    """
    key = (id(layer), transform)
    if key not in _COMPUTES:
        _COMPUTES[key] = layer, _forward_and_input_grad(layer, transform)
    return _COMPUTES[key][1]


_COMPUTES: dict = {}  # (id(layer), transform) -> (layer, compute); holding the layer keeps its id unique


@pytest.fixture(autouse=True)
def _fresh_computes():
    _COMPUTES.clear()


def _forward_and_input_grad(layer, transform):
    graphdef, state = nnx.split(layer)

    def forward_and_grad(state, x, g):
        state = jax.tree.map(lambda p: p.astype(x.dtype), state)
        y, pullback = jax.vjp(lambda x: nnx.merge(graphdef, state)(x), x)
        return y, pullback(g)[0]

    if transform is not None:
        forward_and_grad = transform(forward_and_grad)

    def compute(x, g):
        return [np.asarray(a) for a in forward_and_grad(state, jnp.asarray(x), jnp.asarray(g))]

    return compute


def torch_forward_and_input_grad(layer):
    """``compute(x, g)`` as above, with a copy of the layer in the rows' dtype."""
    copies = {}

    def compute(x, g):
        dtype = getattr(torch, str(x.dtype))
        copy = copies.setdefault(dtype, copy_module(layer).to(dtype))
        xt = torch.from_numpy(x.astype(np.float32)).to(dtype).requires_grad_(True)
        y = copy(xt)
        (grad,) = torch.autograd.grad(y, xt, torch.from_numpy(g.astype(np.float32)).to(dtype))
        return [t.detach().float().numpy().astype(x.dtype) for t in (y, grad)]

    return compute


def assert_row_alone_is_bitwise_the_row_in_the_batch(compute, lead, dtype, seed, position):
    x = rows_of(lead + (IN,), dtype, seed)
    g = rows_of(lead + (OUT,), dtype, seed + 1)
    y, grad = compute(x, g)
    flat_y, flat_grad = y.reshape(-1, OUT), grad.reshape(-1, IN)
    row = position % flat_y.shape[0]
    alone_y, alone_grad = compute(x.reshape(-1, IN)[row : row + 1], g.reshape(-1, OUT)[row : row + 1])
    np.testing.assert_array_equal(bits(alone_y[0]), bits(flat_y[row]), err_msg=f"output row {row} of {lead}")
    np.testing.assert_array_equal(bits(alone_grad[0]), bits(flat_grad[row]), err_msg=f"grad row {row}")


@pytest.mark.slow  # deselect with -m "not slow" (README)
@given(lead=LEADING, dtype=DTYPES, seed=st.integers(0, 2**16), position=st.integers(0, 4095))
def test_jaxlin_rows_and_input_grad_rows_do_not_depend_on_the_batch(
    jax_layer, variant, lead, dtype, seed, position
):
    compute = jax_forward_and_input_grad(jax_layer, variant)
    assert_row_alone_is_bitwise_the_row_in_the_batch(compute, lead, dtype, seed, position)


@given(lead=LEADING, dtype=DTYPES, seed=st.integers(0, 2**16), position=st.integers(0, 4095))
def test_torch_ref_rows_and_input_grad_rows_do_not_depend_on_the_batch(
    torch_layer, lead, dtype, seed, position
):
    compute = torch_forward_and_input_grad(torch_layer)
    assert_row_alone_is_bitwise_the_row_in_the_batch(compute, lead, dtype, seed, position)


@pytest.mark.slow  # deselect with -m "not slow" (README)
@pytest.mark.parametrize("framework", ["jaxlin", "torch_ref"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_every_position_of_two_tiles_equals_its_row_alone(jax_layer, torch_layer, framework, dtype):
    # 256 rows = every position of both tiles; one compiled single-row program serves all 256.
    x = rows_of((256, IN), dtype, 5)
    g = rows_of((256, OUT), dtype, 6)
    if framework == "jaxlin":
        compute = jax_forward_and_input_grad(jax_layer, nnx.jit)
    else:
        compute = torch_forward_and_input_grad(torch_layer)
    y, grad = compute(x, g)
    alone = [compute(x[i : i + 1], g[i : i + 1]) for i in range(256)]
    np.testing.assert_array_equal(bits(np.concatenate([a[0] for a in alone])), bits(y))
    np.testing.assert_array_equal(bits(np.concatenate([a[1] for a in alone])), bits(grad))


def test_jit_and_eager_give_the_same_bits(jax_layer):
    x, g = rows_of((130, IN), "float32", 9), rows_of((130, OUT), "float32", 10)
    jitted = jax_forward_and_input_grad(jax_layer, nnx.jit)(x, g)
    eager = jax_forward_and_input_grad(jax_layer)(x, g)
    for under_jit, without_jit in zip(jitted, eager, strict=True):
        np.testing.assert_array_equal(bits(under_jit), bits(without_jit))


@given(
    lead=st.sampled_from(((), (1,), (5,), (2, 3))),
    n_in=st.sampled_from((1, 7, 64)),
    n_out=st.sampled_from((1, 9)),
    tile_rows=st.sampled_from((1, 2, 128)),
    seed=st.integers(0, 2**16),
)
def test_both_are_within_the_rounding_bound_of_float64_truth(lead, n_in, n_out, tile_rows, seed):
    layer = jaxlin.BatchInvariantLinear(
        n_in,
        n_out,
        tile_rows=tile_rows,
        kernel_init=numpy_init(seed),  # N(0, 1) drawn by NumPy: no truncated-normal compile per shape
        bias_init=numpy_init(seed + 1),
        rngs=nnx.Rngs(seed),
    )
    kernel, bias = np.asarray(layer.kernel[...]), np.asarray(layer.bias[...])
    mirror = torch_ref.BatchInvariantLinear(n_in, n_out, tile_rows=tile_rows)
    with torch.no_grad():
        mirror.weight.copy_(torch.from_numpy(kernel.T.copy()))
        mirror.bias.copy_(torch.from_numpy(bias))
    x = np.random.default_rng(seed).standard_normal(lead + (n_in,)).astype(np.float32)
    truth = x.astype(np.float64) @ kernel.astype(np.float64) + bias
    bound = dot_bound(x, kernel, "float32", bias=bias)
    for y in (np.asarray(layer(jnp.asarray(x))), mirror(torch.from_numpy(x)).detach().numpy()):
        assert y.shape == lead + (n_out,) and y.dtype == np.float32
        assert np.all(np.abs(y - truth) <= bound)


def test_weights_of_a_linear_load_unchanged(tmp_path):
    source = jaxlin.Linear(6, 4, rngs=nnx.Rngs(1))
    save_weights(source, tmp_path / "linear.safetensors")
    layer = jaxlin.BatchInvariantLinear(6, 4, rngs=nnx.Rngs(2))
    load_weights(layer, tmp_path / "linear.safetensors")
    np.testing.assert_array_equal(layer.kernel[...], source.kernel[...])
    mirror = torch_ref.BatchInvariantLinear(6, 4)
    load_weights(mirror, tmp_path / "linear.safetensors")
    assert list(mirror.state_dict()) == list(torch_ref.Linear(6, 4).state_dict()) == ["weight", "bias"]
    np.testing.assert_array_equal(mirror.weight.detach().numpy(), np.asarray(source.kernel[...]).T)


def test_no_rows_give_no_rows():
    assert jaxlin.BatchInvariantLinear(3, 2, rngs=nnx.Rngs(0))(jnp.ones((0, 3))).shape == (0, 2)
    assert torch_ref.BatchInvariantLinear(3, 2)(torch.ones(0, 4, 3)).shape == (0, 4, 2)


def test_without_bias_it_is_a_tiled_matmul():
    layer = jaxlin.BatchInvariantLinear(4, 3, use_bias=False, tile_rows=2, rngs=nnx.Rngs(0))
    assert layer.bias is None
    x = jnp.arange(20.0, dtype=jnp.float32).reshape(5, 4)
    kernel = np.asarray(layer.kernel[...], np.float64)
    exact = np.asarray(x, np.float64) @ kernel
    # x @ W within float32's bound, no bias term: the tiles and a plain matmul are different kernels on
    # some CPUs (their bits agree on an AVX-512 EPYC, not on a Zen 1 one)
    assert np.all(np.abs(np.asarray(layer(x), np.float64) - exact) <= dot_bound(x, kernel, "float32"))
    assert torch_ref.BatchInvariantLinear(4, 3, bias=False).bias is None


@pytest.mark.parametrize("tile_rows", [0, -1, 2.0, True])
def test_tile_rows_must_be_a_positive_integer(tile_rows):
    message = f"BatchInvariantLinear(in_features=4, out_features=3): tile_rows must be a positive integer, got {tile_rows!r}."
    with pytest.raises(ValueError) as jax_error:
        jaxlin.BatchInvariantLinear(4, 3, tile_rows=tile_rows, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError) as torch_error:
        torch_ref.BatchInvariantLinear(4, 3, tile_rows=tile_rows)
    assert str(jax_error.value) == str(torch_error.value) == message


def test_wrong_features_name_the_module_and_both_sizes():
    expected = "BatchInvariantLinear(in_features=4, out_features=3)"
    with pytest.raises(
        ValueError, match=r"BatchInvariantLinear\(in_features=4, out_features=3\).*axis -1 has 5, not 4"
    ):
        jaxlin.BatchInvariantLinear(4, 3, rngs=nnx.Rngs(0))(jnp.ones((2, 5)))
    with pytest.raises(ValueError, match=r"axis -1 has 5, not 4") as error:
        torch_ref.BatchInvariantLinear(4, 3)(torch.ones(2, 5))
    assert expected in str(error.value)


@pytest.mark.parametrize("use_bias", [True, False])
def test_torch_ref_gives_the_same_bits_with_and_without_autograd(use_bias):
    layer = torch_ref.BatchInvariantLinear(48, 40, bias=use_bias, tile_rows=16)
    x = torch.randn(3, 37, 48)
    with torch.no_grad():
        untracked = layer(x)  # the in-place addmm path
    tracked = layer(x.requires_grad_(True))  # the F.linear + cat path
    assert tracked.requires_grad and not untracked.requires_grad
    np.testing.assert_array_equal(bits(untracked.numpy()), bits(tracked.detach().numpy()))
