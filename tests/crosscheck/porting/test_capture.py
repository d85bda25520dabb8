"""Every submodule call of one pass, in both frameworks: paths, order, inputs, outputs; the JAX classes
are restored afterwards, and a subclass calling its base records its instance once."""

import jax.numpy as jnp
import torch
from flax import nnx

import jaxlin
import torch_ref
from crosscheck.porting.capture import capture_jax, capture_torch


class Twice(jaxlin.Linear):
    def __call__(self, x):
        return super().__call__(x) * 2


class Holder(nnx.Module):
    def __init__(self, rngs):
        self.first, self.second = jaxlin.Linear(3, 3, rngs=rngs), Twice(3, 3, rngs=rngs)

    def __call__(self, x):
        return self.second(self.first(x))


def test_jax_calls_are_recorded_in_the_order_they_start_with_inputs_and_outputs():
    model = Holder(nnx.Rngs(0))
    x = jnp.ones((2, 3))
    calls, output = capture_jax(model, (x,))
    assert [call.path for call in calls] == ["", "first", "second"]
    assert calls[1].args[0] is x and (calls[2].output == output).all()
    assert calls[2].module is model.second


def test_the_classes_are_restored_and_other_instances_pass_through():
    before = (jaxlin.Linear.__call__, Twice.__call__)
    capture_jax(Holder(nnx.Rngs(0)), (jnp.ones((1, 3)),))
    assert (jaxlin.Linear.__call__, Twice.__call__) == before


def test_torch_calls_are_recorded_with_their_kwargs():
    model = torch_ref.PooledHead(4, 3, 2)
    x, mask = torch.ones(2, 5, 4), torch.ones(2, 5, dtype=torch.bool)
    calls, _ = capture_torch(model, (x,), {"mask": mask})
    assert [call.path for call in calls] == ["", "projector", "classifier"]
    assert calls[0].kwargs["mask"] is mask and calls[1].output.shape == (2, 3)
