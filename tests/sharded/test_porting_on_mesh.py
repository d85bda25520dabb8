"""check and locate on a JAX model whose parameters live on a device mesh: the float64 truth widens the
sharded arrays where they are used (no whole-model copy), and the verdicts are the unsharded model's."""

import jax
import numpy as np
import pytest
import torch
from flax import nnx

import jaxlin
import torch_ref
from crosscheck import check, copy_torch_to_jax, locate
from crosscheck.runtime.meshes import input_placer


class JaxMlp(nnx.Module):
    def __init__(self, bug=False):
        self.up = jaxlin.Linear(8, 16, rngs=nnx.Rngs(0))
        self.down = jaxlin.Linear(16, 8, rngs=nnx.Rngs(1))
        self.bug = bug

    def __call__(self, x):
        hidden = nnx.relu(self.up(x))
        return self.down(hidden * 1.001 if self.bug else hidden)


class TorchMlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up = torch_ref.Linear(8, 16)
        self.down = torch_ref.Linear(16, 8)

    def forward(self, x):
        return self.down(torch.relu(self.up(x)))


def _pair(mesh, bug=False):
    torch.manual_seed(0)
    ref, port = TorchMlp(), JaxMlp(bug)
    copy_torch_to_jax(ref, port)
    jaxlin.shard_linear(port.up, mesh, axis="heads", parallel="column")
    jaxlin.shard_linear(port.down, mesh, axis="heads", parallel="row")
    return ref, port


X = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)


def test_the_parameters_really_are_sharded(mesh):
    _, port = _pair(mesh)
    sharding = port.up.kernel[...].sharding
    assert not sharding.is_fully_replicated and sharding.spec == jax.sharding.PartitionSpec(None, "heads")


@pytest.mark.parametrize("grads", [False, True])
def test_check_on_a_mesh_passes_and_leaves_the_parameters_where_they_were(mesh, grads):
    ref, port = _pair(mesh)
    placement = port.down.kernel[...].sharding
    result = check(port, ref, X, grads=grads, place=input_placer(mesh))
    assert result.passed, str(result)
    assert port.down.kernel[...].sharding == placement
    assert ref.up.weight.dtype == torch.float32


def test_locate_on_a_mesh_judges_every_layer_and_finds_a_planted_bug(mesh):
    ref, port = _pair(mesh)
    honest = locate(port, ref, X, grads=True)
    assert honest.passed and honest.not_judged == [] and len(honest.layers) == 3, str(honest)
    ref, buggy = _pair(mesh, bug=True)
    found = locate(buggy, ref, X)
    assert found.first_failure == "", str(found)  # the container's own code: both children pass
    assert {layer.path: layer.passed for layer in found.layers} == {"": False, "up": True, "down": True}
