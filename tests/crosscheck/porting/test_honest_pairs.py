"""No false alarm on an honest pair: every registered layer kind, sizes from 1, rows from 1 to thousands.

Each pair is a torch layer and its Flax/jaxlin twin holding copied weights; ``check`` must pass both
tiers for the output and every gradient. Every run differentiates the same loss: the cotangent is
drawn representable in the working dtype, so the float64 truth sees bitwise the inputs and the
cotangent the working-dtype runs see (with it rounded only for them, ``Linear(4, 1)`` failed at 8 rows).

The JAX twins are built abstract (``nnx.eval_shape``): the copy gives them every array, and a random
init would compile a program for every new shape (about half of this file's time, 0.5–1.2 s an example).
"""

import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import given
from hypothesis import strategies as st

import jaxlin
import torch_ref
from crosscheck import check, copy_torch_to_jax

pytestmark = pytest.mark.slow  # deselect with -m "not slow" (README)


def _linear(i, o, rows):
    return torch_ref.Linear(i, o), nnx.eval_shape(lambda: jaxlin.Linear(i, o, rngs=nnx.Rngs(0))), (rows, i)


def _invariant(i, o, rows):
    return (
        torch_ref.BatchInvariantLinear(i, o),
        nnx.eval_shape(lambda: jaxlin.BatchInvariantLinear(i, o, rngs=nnx.Rngs(0))),
        (rows, i),
    )


def _pointwise(i, o, rows):
    return (
        torch_ref.PointwiseConv(i, o),
        nnx.eval_shape(lambda: jaxlin.PointwiseConv(i, o, rngs=nnx.Rngs(0))),
        (1, rows, i),
    )


def _per_head(i, o, rows):
    heads = 1 + rows % 3
    return (
        torch_ref.PerHeadLinear(heads, i, o),
        nnx.eval_shape(lambda: jaxlin.PerHeadLinear(heads, i, o, rngs=nnx.Rngs(0))),
        (rows, heads, i),
    )


def _pooled(i, o, rows):
    pair = (
        torch_ref.PooledHead(i, 3, o, pool_at="hidden"),
        nnx.eval_shape(lambda: jaxlin.PooledHead(i, 3, o, pool_at="hidden", rngs=nnx.Rngs(0))),
    )
    return (*pair, (1 + rows % 4, 1 + rows // 4, i))


def _nnx_linear(i, o, rows):
    return torch.nn.Linear(i, o), nnx.eval_shape(lambda: nnx.Linear(i, o, rngs=nnx.Rngs(0))), (rows, i)


def _nnx_conv(i, o, rows):
    kernel = 1 + rows % 3
    torch_conv = torch.nn.Conv1d(i, o, kernel)
    return (
        torch_conv,
        nnx.eval_shape(lambda: nnx.Conv(i, o, (kernel,), padding="VALID", rngs=nnx.Rngs(0))),
        (1, rows + kernel - 1, i),
    )


def _layer_norm(i, o, rows):
    # Sixteen features at least. A row whose values nearly agree (|mean| ≫ σ) amplifies honest
    # rounding by |mean|/σ, and torch's fused kernel (x·rstd − mean·rstd) far more than Flax's
    # ((x − mean)·rstd): 17× Flax's error at 4 features, 1,000 rows. Over one feature the output is
    # the bias and torch returns the residual of x·rstd (316× an ulp of x); over two, x̂ = ±1 and the
    # input gradient is zero by cancellation. The relative rule sees outputs only, so it cannot tell
    # such amplified rounding from different math (docs/porting.md, "What cannot be checked").
    features = max(i, 16)
    # use_fast_variance=False: Flax's default E[x²] − E[x]² is another algorithm (check notes it).
    ours = nnx.LayerNorm(features, epsilon=1e-5, use_fast_variance=False, rngs=nnx.Rngs(0))
    return torch.nn.LayerNorm(features), ours, (rows, features)


def _embed(i, o, rows):
    return torch.nn.Embedding(i, o), nnx.eval_shape(lambda: nnx.Embed(i, o, rngs=nnx.Rngs(0))), (rows,)


KINDS = {f.__name__[1:]: f for f in (_linear, _invariant, _pointwise, _per_head, _pooled, _nnx_linear, _nnx_conv,
                                     _layer_norm, _embed)}  # fmt: skip


def _inputs(kind: str, shape, in_features: int, seed: int):
    rng = np.random.default_rng(seed)
    if kind == "embed":
        return (rng.integers(0, in_features, shape),)
    return (rng.standard_normal(shape),)


@pytest.mark.parametrize("kind", sorted(KINDS))
@given(
    in_features=st.integers(1, 48),
    out_features=st.integers(1, 48),
    rows=st.one_of(st.integers(1, 64), st.integers(1000, 4000)),
    seed=st.integers(0, 2**16),
)
def test_an_honest_pair_never_fails(kind, in_features, out_features, rows, seed):
    torch.manual_seed(seed)
    theirs, ours, shape = KINDS[kind](in_features, out_features, rows)
    copy_torch_to_jax(theirs, ours)
    result = check(ours, theirs, *_inputs(kind, shape, in_features, seed), seed=seed)
    assert result.passed, "\n".join(result.failures())


@pytest.mark.parametrize("seed", range(5))
def test_the_smallest_linears_pass_at_the_sizes_that_used_to_fail(seed):
    for out_features, rows in ((1, 8), (2, 1000), (3, 20_000)):
        torch.manual_seed(seed)
        theirs, ours = (
            torch_ref.Linear(4, out_features),
            nnx.eval_shape(lambda o=out_features: jaxlin.Linear(4, o, rngs=nnx.Rngs(0))),
        )
        copy_torch_to_jax(theirs, ours)
        x = np.random.default_rng(seed).standard_normal((rows, 4))
        result = check(ours, theirs, x, seed=seed)
        assert result.passed, "\n".join(result.failures())


def test_a_failure_names_the_bound_it_applied():
    theirs, ours = torch_ref.Linear(4, 1), nnx.eval_shape(lambda: jaxlin.Linear(4, 1, rngs=nnx.Rngs(0)))
    copy_torch_to_jax(theirs, ours)
    ours.kernel[...] = ours.kernel[...] * (1 + 2**-20)  # a weight off by 4 ulps: beyond γ_1
    result = check(ours, theirs, np.random.default_rng(0).standard_normal((8, 4)))
    message = "\n".join(result.failures())
    assert "bound γ_K·|x|·|W| with K=" in message and "tighter than c·√K·u" in message
