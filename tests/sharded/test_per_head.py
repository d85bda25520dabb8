"""A heads-sharded PerHeadLinear on a (data=2, heads=4) mesh: outputs and input gradients bitwise the
unsharded ones, parameter gradients summed over a data-split batch within the rounding allowance, and
compiled programs with no collective at all where none is needed."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

import jaxlin
from crosscheck.numerics import Bound, compare
from jaxlin.sharding import collectives, shard_heads

HEADS, IN, OUT = 8, 32, 16
X = np.random.default_rng(0).standard_normal((4, 6, HEADS, IN)).astype(np.float32)
COTANGENT = np.random.default_rng(1).standard_normal((4, 6, HEADS, OUT)).astype(np.float32)


def _layer():
    return jaxlin.PerHeadLinear(HEADS, IN, OUT, bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0))


def _functions(layer):
    graphdef, params = nnx.split(layer, nnx.Param)

    def forward(p, x):
        return nnx.merge(graphdef, p)(x)

    def loss(p, x):
        return jnp.sum(forward(p, x) * COTANGENT)

    return params, jax.jit(forward), jax.jit(jax.grad(loss, argnums=(0, 1)))


def _placed(mesh, spec):
    return jax.device_put(X, NamedSharding(mesh, spec))


@pytest.mark.parametrize("spec", [PartitionSpec(None, None, "heads"), PartitionSpec("data", None, "heads")])
def test_forward_and_input_gradient_are_bitwise_the_unsharded_ones(mesh, spec):
    params, forward, grads = _functions(_layer())
    sharded, sharded_forward, sharded_grads = _functions(shard_heads(_layer(), mesh))
    x = _placed(mesh, spec)
    np.testing.assert_array_equal(np.asarray(sharded_forward(sharded, x)), np.asarray(forward(params, X)))
    np.testing.assert_array_equal(np.asarray(sharded_grads(sharded, x)[1]), np.asarray(grads(params, X)[1]))
    assert sharded_forward(sharded, x).sharding.spec[2] == "heads"


def test_sharding_places_the_state_and_keeps_every_leaf_bitwise(mesh):
    plain, sharded = nnx.state(_layer()), nnx.state(shard_heads(_layer(), mesh))
    chex.assert_trees_all_equal_shapes_and_dtypes(sharded, plain)
    chex.assert_trees_all_equal(sharded, plain)
    assert sharded["kernel"][...].sharding.spec == PartitionSpec("heads", None, None)


def test_with_only_the_heads_split_every_gradient_is_bitwise_the_unsharded_one(mesh):
    # No batch split means no cross-device sum: each device computes its heads' full reductions.
    params, _, grads = _functions(_layer())
    sharded, _, sharded_grads = _functions(shard_heads(_layer(), mesh))
    chex.assert_trees_all_equal(
        sharded_grads(sharded, _placed(mesh, PartitionSpec(None, None, "heads"))), grads(params, X)
    )


def test_parameter_gradients_summed_over_a_data_split_batch_are_within_the_rounding_allowance(mesh):
    params, _, grads = _functions(_layer())
    sharded, _, sharded_grads = _functions(shard_heads(_layer(), mesh))
    ours = np.asarray(
        sharded_grads(sharded, _placed(mesh, PartitionSpec("data", None, "heads")))[0]["kernel"][...]
    )
    theirs = np.asarray(grads(params, X)[0]["kernel"][...])
    truth = np.einsum("bwhi,bwho->hio", X.astype(np.float64), COTANGENT.astype(np.float64))
    magnitude = np.einsum(
        "bwhi,bwho->hio", np.abs(X.astype(np.float64)), np.abs(COTANGENT.astype(np.float64))
    )
    result = compare(
        ours, theirs, reference=truth, bound=Bound(magnitude, X.shape[0] * X.shape[1], "float32")
    )
    assert result.passed, result.message("kernel gradients")


def _hlo(function, *args) -> str:
    return function.lower(*args).compile().as_text()


def test_the_heads_sharded_forward_and_backward_compile_with_no_collective(mesh):
    sharded, forward, grads = _functions(shard_heads(_layer(), mesh))
    x = _placed(mesh, PartitionSpec(None, None, "heads"))
    for text in (_hlo(forward, sharded, x), _hlo(grads, sharded, x)):
        assert sum(collectives(text).values()) == 0, collectives(text)


def test_with_the_batch_split_too_only_the_parameter_gradients_need_an_all_reduce(mesh):
    sharded, forward, grads = _functions(shard_heads(_layer(), mesh))
    x = _placed(mesh, PartitionSpec("data", None, "heads"))
    assert sum(collectives(_hlo(forward, sharded, x)).values()) == 0
    counts = collectives(_hlo(grads, sharded, x))
    assert counts["all-reduce"] >= 1 and counts["all-reduce"] == sum(counts.values()), counts


def test_a_heads_count_the_mesh_axis_does_not_divide_is_a_value_error(mesh):
    message = r"PerHeadLinear\(num_heads=6, in_features=4, out_features=2\): num_heads=6 is not divisible by the mesh axis 'heads' of size 4"
    with pytest.raises(ValueError, match=message):
        shard_heads(jaxlin.PerHeadLinear(6, 4, 2, rngs=nnx.Rngs(0)), mesh)
    with pytest.raises(ValueError, match=r"the mesh has no axis 'model'; its axes are \('data', 'heads'\)"):
        shard_heads(jaxlin.PerHeadLinear(8, 4, 2, rngs=nnx.Rngs(0)), mesh, axis="model")
