"""crosscheck.check: no false alarm on honest code across sizes and dtypes; every planted bug caught.

The planted bugs are jaxlin subclasses with one mistake each, compared against the honest
torch_ref module holding the same weights, at reduction lengths K=8 and K=4,096. The JAX modules a
copy fills are built abstract (``nnx.eval_shape``): a random init would compile a program per shape.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import jaxlin
import torch_ref
from crosscheck.porting.checking import check
from crosscheck.weights import copy_torch_to_jax

JAX_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float64": jnp.float64}
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float64": torch.float64}


def _pair(torch_module, jax_module):
    copy_torch_to_jax(torch_module, jax_module)
    return jax_module, torch_module


def _normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _padding_mask(batch, seq):
    lengths = np.linspace(1, seq, batch).round().astype(int)
    lengths[0] = seq // 3
    return np.arange(seq)[None, :] < lengths[:, None]


# ---- no false alarm -------------------------------------------------------------------------


@pytest.mark.slow  # deselect with -m "not slow" (README)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
@pytest.mark.parametrize("k", [8, 64, 512, 4096, 65536])
def test_honest_linear_passes_at_every_reduction_length(k, dtype):
    torch.manual_seed(k)
    theirs = torch_ref.Linear(k, 8, dtype=TORCH_DTYPES[dtype])
    ours = nnx.eval_shape(lambda: jaxlin.Linear(k, 8, param_dtype=JAX_DTYPES[dtype], rngs=nnx.Rngs(0)))
    result = check(*_pair(theirs, ours), _normal(16, k))
    assert result.passed, "\n".join(result.failures())


@pytest.mark.slow  # deselect with -m "not slow" (README)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
@pytest.mark.parametrize("seq", [16, 512, 4096])
@pytest.mark.parametrize("masked", [False, True])
def test_honest_mean_passes_at_every_sequence_length(seq, masked, dtype):
    torch.manual_seed(seq)
    theirs = torch_ref.PooledHead(8, 8, 4, pool_at="output", reorder=False, dtype=TORCH_DTYPES[dtype])
    ours = nnx.eval_shape(
        lambda: jaxlin.PooledHead(
            8, 8, 4, pool_at="output", reorder=True, param_dtype=JAX_DTYPES[dtype], rngs=nnx.Rngs(0)
        )
    )
    inputs = (_normal(3, seq, 8),) + ((_padding_mask(3, seq),) if masked else ())
    result = check(*_pair(theirs, ours), *inputs)
    assert result.passed, "\n".join(result.failures())


@pytest.mark.slow  # deselect with -m "not slow" (README)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_honest_per_head_and_pointwise_pass(dtype):
    torch.manual_seed(1)
    heads = check(
        *_pair(
            torch_ref.PerHeadLinear(4, 64, 16, dtype=TORCH_DTYPES[dtype]),
            nnx.eval_shape(
                lambda: jaxlin.PerHeadLinear(4, 64, 16, param_dtype=JAX_DTYPES[dtype], rngs=nnx.Rngs(0))
            ),
        ),
        _normal(2, 8, 4, 64),
    )
    conv = check(
        *_pair(
            torch_ref.PointwiseConv(64, 16, impl="conv", dtype=TORCH_DTYPES[dtype]),
            nnx.eval_shape(
                lambda: jaxlin.PointwiseConv(64, 16, param_dtype=JAX_DTYPES[dtype], rngs=nnx.Rngs(0))
            ),
        ),
        _normal(2, 8, 64),
    )
    assert heads.passed and conv.passed, "\n".join(heads.failures() + conv.failures())


# ---- planted bugs -----------------------------------------------------------------------------


class TransposedWeight(jaxlin.Linear):
    def __call__(self, x):
        return x @ self.kernel[...].T + self.bias[...][None, :]


class MissingBias(jaxlin.Linear):
    def __call__(self, x):
        return x @ self.kernel[...]


class OneElementOff(jaxlin.Linear):
    def __call__(self, x):
        return super().__call__(x).at[0, 0].multiply(1 + 1e-6)


class SilentBfloat16(jaxlin.Linear):
    """Computes in bfloat16 whenever it is given float32 (float64 still runs in float64)."""

    def __call__(self, x):
        if x.dtype != jnp.float32:
            return super().__call__(x)
        y = x.astype(jnp.bfloat16) @ self.kernel[...].astype(jnp.bfloat16)
        return (y + self.bias[...].astype(jnp.bfloat16)[None, :]).astype(jnp.float32)


class SwappedHeads(jaxlin.PerHeadLinear):
    def __call__(self, x):
        y = super().__call__(x)
        return y[..., jnp.array([1, 0] + list(range(2, self.num_heads))), :]


class MeanOverTMinusOne(jaxlin.PooledHead):
    def __call__(self, x, mask=None):
        h = self.classifier(self.projector(x))
        return jnp.sum(h, axis=-2) / (x.shape[-2] - 1)


class MeanOverPaddedLength(jaxlin.PooledHead):
    def __call__(self, x, mask=None):
        h = self.classifier(self.projector(x))
        return jnp.sum(jnp.where(mask[..., None], h, 0), axis=-2) / x.shape[-2]


def _linear_bug(cls, k):
    torch.manual_seed(k)
    return _pair(
        torch_ref.Linear(k, k if cls is TransposedWeight else 8),
        nnx.eval_shape(lambda: cls(k, k if cls is TransposedWeight else 8, rngs=nnx.Rngs(0))),
    )


@pytest.mark.parametrize("k", [8, 4096])
@pytest.mark.parametrize("bug", [TransposedWeight, MissingBias, OneElementOff, SilentBfloat16])
def test_planted_linear_bugs_are_caught(bug, k):
    result = check(
        *_linear_bug(bug, k), _normal(4, k) + 1.0, grads=k < 4096
    )  # shifted: y[0, 0] is far from 0
    assert not result.passed
    assert not result.items[0].passed  # the output itself is flagged


@pytest.mark.parametrize("k", [8, 4096])
def test_silent_bfloat16_is_caught_by_the_rounding_tier_alone(k):
    result = check(*_linear_bug(SilentBfloat16, k), _normal(4, k))
    output = result.items[0]
    assert output.same_function.passed and not output.rounding.passed


@pytest.mark.parametrize("k", [8, 4096])
def test_one_element_off_by_a_millionth_is_caught_by_the_same_function_tier(k):
    result = check(*_linear_bug(OneElementOff, k), _normal(4, k) + 1.0)
    output = result.items[0]
    assert not output.same_function.passed
    assert output.same_function.worst_index == (0, 0) and output.same_function.mismatched == 1


@pytest.mark.parametrize("k", [8, 4096])
def test_swapped_heads_are_caught(k):
    torch.manual_seed(k)
    result = check(
        *_pair(
            torch_ref.PerHeadLinear(4, k, 8), nnx.eval_shape(lambda: SwappedHeads(4, k, 8, rngs=nnx.Rngs(0)))
        ),
        _normal(3, 4, k),
    )
    assert not result.passed


@pytest.mark.parametrize("seq", [8, 4096])
def test_mean_over_t_minus_one_is_caught(seq):
    torch.manual_seed(seq)
    theirs = torch_ref.PooledHead(8, 8, 4, pool_at="output")
    result = check(
        *_pair(
            theirs, nnx.eval_shape(lambda: MeanOverTMinusOne(8, 8, 4, pool_at="output", rngs=nnx.Rngs(0)))
        ),
        _normal(2, seq, 8),
    )
    assert not result.passed and not result.items[0].same_function.passed


@pytest.mark.parametrize("seq", [8, 4096])
def test_mean_over_the_padded_length_is_caught(seq):
    torch.manual_seed(seq)
    theirs = torch_ref.PooledHead(8, 8, 4, pool_at="output")
    ours = nnx.eval_shape(lambda: MeanOverPaddedLength(8, 8, 4, pool_at="output", rngs=nnx.Rngs(0)))
    result = check(*_pair(theirs, ours), _normal(4, seq, 8), _padding_mask(4, seq))
    assert not result.passed


@pytest.mark.parametrize("k", [8, 4096])
def test_tanh_gelu_where_exact_gelu_was_asked_is_caught_by_the_same_function_tier(k):
    torch.manual_seed(k)
    theirs = torch_ref.PooledHead(k, 16, 4, pool_at="hidden", activation=torch.nn.functional.gelu)
    ours = nnx.eval_shape(
        lambda: jaxlin.PooledHead(k, 16, 4, pool_at="hidden", activation=jax.nn.gelu, rngs=nnx.Rngs(0))
    )  # tanh by default
    result = check(*_pair(theirs, ours), _normal(2, 6, k))
    assert not result.items[0].same_function.passed
    exact = nnx.eval_shape(
        lambda: jaxlin.PooledHead(
            k,
            16,
            4,
            pool_at="hidden",
            activation=lambda z: jax.nn.gelu(z, approximate=False),
            rngs=nnx.Rngs(0),
        )
    )
    assert check(*_pair(theirs, exact), _normal(2, 6, k)).passed


def test_nan_output_never_passes():
    class NanRow(jaxlin.Linear):
        def __call__(self, x):
            return super().__call__(x).at[1].set(jnp.nan)

    torch.manual_seed(0)
    result = check(
        *_pair(torch_ref.Linear(8, 4), nnx.eval_shape(lambda: NanRow(8, 4, rngs=nnx.Rngs(0)))), _normal(3, 8)
    )
    assert not result.passed


def test_failure_messages_name_the_item_and_the_bound():
    result = check(*_linear_bug(MissingBias, 8), _normal(4, 8), name="jaxlin.Linear vs torch_ref.Linear")
    message = result.failures()[0]
    assert message.startswith(
        "jaxlin.Linear vs torch_ref.Linear (float32): outputs in float64 (same function)"
    )
    assert "The failure occurred for item ['output']" in message and "K=9" in message


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_an_input_holding_nan_or_inf_fails_as_non_finite_output_never_passes(bad):
    torch.manual_seed(0)
    theirs = torch_ref.Linear(8, 4)
    ours = nnx.eval_shape(lambda: jaxlin.Linear(8, 4, rngs=nnx.Rngs(0)))
    copy_torch_to_jax(theirs, ours)
    x = _normal(3, 8)
    x[1, 2] = bad
    result = check(ours, theirs, x)
    assert not result.passed
    assert "non-finite output" in result.problems() and result.items[0].nonfinite
    assert any("NaN or inf" in message or "Non-finite values:" in message for message in result.failures())


def test_equal_nan_lets_nan_pass_where_every_side_and_the_truth_agree():
    torch.manual_seed(0)
    theirs = torch_ref.Linear(8, 4)
    ours = nnx.eval_shape(lambda: jaxlin.Linear(8, 4, rngs=nnx.Rngs(0)))
    copy_torch_to_jax(theirs, ours)
    x = _normal(3, 8)
    x[1] = np.nan  # row 1's outputs are NaN in both frameworks and in the float64 truth
    output = check(ours, theirs, x, grads=False, equal_nan=True).items[0]
    assert output.passed
    assert not check(ours, theirs, x, grads=False).items[0].passed


def test_a_module_that_makes_nan_from_finite_input_fails_even_with_equal_nan():
    class NanRow(jaxlin.Linear):
        def __call__(self, x):
            return super().__call__(x).at[1].set(jnp.nan)

    torch.manual_seed(0)
    result = check(
        *_pair(torch_ref.Linear(8, 4), nnx.eval_shape(lambda: NanRow(8, 4, rngs=nnx.Rngs(0)))),
        _normal(3, 8),
        equal_nan=True,
    )
    assert not result.passed and "non-finite output" in result.problems()


# ---- any pair: a user's module tree, plain PyTorch layers, the relative rule ----------------------


def test_a_users_module_tree_is_checked_with_every_gradient_by_the_relative_rule():
    from tests.crosscheck.porting.models import build_jax, build_torch

    theirs, ours = build_torch(), build_jax()
    copy_torch_to_jax(theirs, ours)
    result = check(ours, theirs, _normal(3, 5, 16))
    assert result.passed, "\n".join(result.failures())
    names = [item.item for item in result.items]
    assert names[0] == "output" and "grads.block.norm.weight" in names and names[-1] == "grads.input"
    assert {item.rule for item in result.items} == {"relative"}


def test_different_math_in_a_users_tree_is_caught_in_float64():
    from tests.crosscheck.porting.models import build_jax_tanh_gelu, build_torch

    theirs, ours = build_torch(), build_jax_tanh_gelu()
    copy_torch_to_jax(theirs, ours)
    output = check(ours, theirs, _normal(3, 5, 16), grads=False).items[0]
    assert not output.same_function.passed and "RMS difference in float64" in output.same_function.message(
        "x"
    )


def test_a_plain_conv1d_is_detected_as_channels_first():
    torch.manual_seed(0)
    theirs = torch.nn.Conv1d(8, 4, 1)
    ours = nnx.eval_shape(lambda: jaxlin.PointwiseConv(8, 4, rngs=nnx.Rngs(0)))
    copy_torch_to_jax(theirs, ours)
    result = check(ours, theirs, _normal(2, 7, 8))
    assert result.passed, "\n".join(result.failures())


def test_weights_that_do_not_map_are_a_weights_error_before_anything_runs():
    from crosscheck import WeightsError

    with pytest.raises(
        WeightsError, match=r"check of jaxlin.Linear\(in_features=8, out_features=4\): missing key 'bias'"
    ):
        check(jaxlin.Linear(8, 4, rngs=nnx.Rngs(0)), torch.nn.Linear(8, 4, bias=False), _normal(2, 8))


@pytest.mark.parametrize("grads", [True, False])
def test_a_jax_module_that_changes_its_own_state_is_checked_from_the_state_it_had(grads):
    from tests.crosscheck.porting.test_locate_layouts import JaxCounter, TorchCounter

    theirs, ours = TorchCounter(), JaxCounter()  # each call counts, and the count scales the output
    copy_torch_to_jax(theirs, ours)
    result = check(ours, theirs, _normal(3, 4), grads=grads)
    assert result.passed, "\n".join(result.failures())
    assert len(result.items) == (4 if grads else 1)  # the output, the kernel, the bias, the input
    assert float(ours.calls[...]) == 0 and float(theirs.calls) == 0  # left as they were
