"""Linear column- and row-parallel on the mesh: the same function, and exactly the communication each
needs — none column-parallel, one all-reduce row-parallel."""

import jax
import numpy as np
import pytest
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

import jaxlin
from crosscheck.numerics import Bound, compare
from jaxlin.sharding import collectives, shard_linear

X = np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32)


def _forward(layer):
    graphdef, params = nnx.split(layer, nnx.Param)
    return params, jax.jit(lambda p, x: nnx.merge(graphdef, p)(x))


@pytest.mark.parametrize("parallel, x_spec, collective", [
    ("column", PartitionSpec(), 0),
    ("row", PartitionSpec(None, "heads"), 1),
])  # fmt: skip
def test_parallel_linears_compute_the_same_function_with_the_communication_they_need(
    mesh, parallel, x_spec, collective
):
    layer = jaxlin.Linear(64, 32, bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0))
    params, forward = _forward(layer)
    sharded, sharded_forward = _forward(shard_linear(jaxlin.Linear(64, 32, bias_init=nnx.initializers.normal(1.0),
                                                                   rngs=nnx.Rngs(0)), mesh, "heads", parallel))  # fmt: skip
    x = jax.device_put(X, NamedSharding(mesh, x_spec))
    ours, theirs = np.asarray(sharded_forward(sharded, x)), np.asarray(forward(params, X))
    kernel, bias = np.asarray(layer.kernel[...], np.float64), np.asarray(layer.bias[...], np.float64)
    truth = X.astype(np.float64) @ kernel + bias
    magnitude = np.abs(X.astype(np.float64)) @ np.abs(kernel) + np.abs(bias)
    assert compare(ours, theirs, reference=truth, bound=Bound(magnitude, 65, "float32")).passed
    counts = collectives(sharded_forward.lower(sharded, x).compile().as_text())
    assert counts["all-reduce"] == collective and sum(counts.values()) == collective, counts


def test_a_feature_count_the_axis_does_not_divide_is_a_value_error(mesh):
    with pytest.raises(
        ValueError,
        match=r"Linear\(in_features=6, out_features=3\): out_features=3 is not divisible by the mesh axis 'heads' of size 4",
    ):
        shard_linear(jaxlin.Linear(6, 3, rngs=nnx.Rngs(0)), mesh, "heads")
    with pytest.raises(
        ValueError, match="shard_linear: parallel must be one of 'column', 'row', got 'diagonal'"
    ):
        shard_linear(jaxlin.Linear(8, 8, rngs=nnx.Rngs(0)), mesh, "heads", "diagonal")
