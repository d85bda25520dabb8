"""Every jaxlin module takes Flax partitioning metadata on its kernel and bias inits exactly as
nnx.Linear does, in a mesh context and out of one; jaxlin's own initializers compose with it."""

import jax
import jax.numpy as jnp
import pytest
from flax import nnx
from jax.sharding import PartitionSpec

import jaxlin
from jaxlin.initializers import per_head_kernel_init, torch_uniform

P = nnx.with_partitioning
LECUN = nnx.initializers.lecun_normal()
ZEROS = nnx.initializers.zeros_init()

BUILDERS = {
    "Linear": (lambda: jaxlin.Linear(8, 16, kernel_init=P(LECUN, (None, "heads")), bias_init=P(ZEROS, ("heads",)),
                                     rngs=nnx.Rngs(0)), ("kernel", PartitionSpec(None, "heads"))),
    "BatchInvariantLinear": (lambda: jaxlin.BatchInvariantLinear(8, 16, kernel_init=P(LECUN, ("heads", None)),
                                                                 rngs=nnx.Rngs(0)), ("kernel", PartitionSpec("heads", None))),
    "PointwiseConv": (lambda: jaxlin.PointwiseConv(8, 16, kernel_init=P(LECUN, (None, None, "heads")), rngs=nnx.Rngs(0)),
                      ("kernel", PartitionSpec(None, None, "heads"))),
    "PerHeadLinear": (lambda: jaxlin.PerHeadLinear(8, 4, 4, kernel_init=P(per_head_kernel_init, ("heads", None, None)),
                                                   bias_init=P(ZEROS, ("heads", None)), rngs=nnx.Rngs(0)),
                      ("kernel", PartitionSpec("heads", None, None))),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_in_a_mesh_context_the_parameters_come_out_sharded(mesh, name):
    build, (attribute, spec) = BUILDERS[name]
    with jax.set_mesh(mesh):
        layer = build()
    assert getattr(layer, attribute)[...].sharding.spec == spec


def test_pooled_head_shards_its_two_linears_megatron_style(mesh):
    with jax.set_mesh(mesh):
        head = jaxlin.PooledHead(8, 16, 4, kernel_init=P(LECUN, (None, "heads")), rngs=nnx.Rngs(0))
    assert head.projector.kernel[...].sharding.spec == PartitionSpec(None, "heads")


def test_out_of_a_mesh_context_jaxlin_behaves_exactly_as_nnx_linear():
    outside = []
    for build in (lambda: nnx.Linear(8, 16, kernel_init=P(LECUN, (None, "heads")), rngs=nnx.Rngs(0)),
                  lambda: jaxlin.Linear(8, 16, kernel_init=P(LECUN, (None, "heads")), rngs=nnx.Rngs(0))):  # fmt: skip
        with pytest.raises(ValueError) as error:
            build()
        outside.append(str(error.value))
        with nnx.use_eager_sharding(False):
            assert build().kernel.get_metadata()["out_sharding"] == (None, "heads")
    assert outside[0] == outside[1]


def test_the_pytorch_default_init_composes_with_partitioning(mesh):
    with jax.set_mesh(mesh):
        layer = jaxlin.PerHeadLinear(8, 64, 4, kernel_init=P(torch_uniform, ("heads", None, None)),
                                     bias_init=P(torch_uniform, ("heads", None)), rngs=nnx.Rngs(0))  # fmt: skip
    assert layer.kernel[...].sharding.spec == PartitionSpec("heads", None, None)
    assert float(jnp.abs(layer.kernel[...]).max()) <= 64**-0.5 and float(jnp.abs(layer.bias[...]).max()) > 0


def test_a_heads_count_the_mesh_does_not_divide_is_a_value_error_naming_the_module(mesh):
    message = (r"PerHeadLinear\(num_heads=6, in_features=4, out_features=4\): kernel axis 0 has size 6, which the "
               r"mesh axis 'heads' of size 4 does not divide")  # fmt: skip
    with jax.set_mesh(mesh), pytest.raises(ValueError, match=message):
        jaxlin.PerHeadLinear(
            6, 4, 4, kernel_init=P(per_head_kernel_init, ("heads", None, None)), rngs=nnx.Rngs(0)
        )
