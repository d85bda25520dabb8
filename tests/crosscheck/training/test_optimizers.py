"""optax and torch.optim matched: the schedule step for step, the weight-decay mask, one update, and
the planted differences' configuration and their usage errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from flax import nnx
from hypothesis import given
from hypothesis import strategies as st

from crosscheck.training.models import jax_model, torch_model
from crosscheck.training.optimizers import (
    OptimizerConfig,
    kernel_mask,
    learning_rate,
    optax_schedule,
    optax_transform,
    torch_optimizer,
)
from crosscheck.training.planted import plant_options, plant_problem
from crosscheck.weights import copy_torch_to_jax, torch_state_of_jax
from tests.crosscheck.training._small import SPEC


@given(steps=st.integers(1, 400), name=st.sampled_from(["sgd", "adam", "adamw"]))
def test_torch_lambda_lr_gives_optax_schedule_at_every_update(steps, name):
    config = OptimizerConfig(name, steps=steps)
    schedule = optax_schedule(config)
    model = torch.nn.Linear(2, 1)
    optimizer, scheduler = torch_optimizer(config, model)
    for step in range(min(steps + 3, 60)):
        torch_lr = optimizer.param_groups[0]["lr"]
        with jax.enable_x64(True):
            optax_lr = float(schedule(jnp.asarray(step, jnp.int32)))
        assert torch_lr == pytest.approx(learning_rate(config, step), rel=1e-12, abs=1e-15)
        assert optax_lr == pytest.approx(torch_lr, rel=1e-12, abs=1e-15)
        optimizer.step()
        scheduler.step()


def test_the_planted_offset_reads_the_schedule_one_step_ahead():
    config = OptimizerConfig("sgd", steps=100)
    ahead = optax_schedule(config, offset=1)
    assert [float(ahead(k)) for k in range(5)] == pytest.approx(
        [learning_rate(config, k + 1) for k in range(5)]
    )


def test_weight_decay_masks_the_kernels_only():
    model = jax_model(SPEC, "float32")
    mask = kernel_mask(nnx.state(model, nnx.Param))
    flags = {
        str(path[0].key) + "." + str(path[1].key): v for path, v in jax.tree_util.tree_leaves_with_path(mask)
    }
    assert flags == {"encoder.kernel": True, "encoder.bias": False, "head.kernel": True, "head.bias": False}
    assert kernel_mask(nnx.as_pure(nnx.state(model, nnx.Param))) == mask  # with or without the Variables
    groups = torch_optimizer(OptimizerConfig("adamw"), torch_model(SPEC, seed=0))[0].param_groups
    assert [(len(g["params"]), g["weight_decay"]) for g in groups] == [(2, 0.01), (2, 0.0)]


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_one_float64_update_is_the_same_in_both_frameworks(name):
    config = OptimizerConfig(name, steps=10, lr=0.1, weight_decay=0.05)
    with jax.enable_x64(True):
        theirs, ours = torch_model(SPEC, dtype="float64", seed=0), jax_model(SPEC, "float64")
        copy_torch_to_jax(theirs, ours)
        grads = {k: np.random.default_rng(1).standard_normal(v.shape) for k, v in theirs.state_dict().items()}
        optimizer, _ = torch_optimizer(config, theirs)
        for key, parameter in theirs.named_parameters():
            parameter.grad = torch.from_numpy(grads[key])
        optimizer.step()
        params = nnx.state(ours, nnx.Param)
        gradient_model, gradient_jax = torch_model(SPEC, dtype="float64"), jax_model(SPEC, "float64")
        gradient_model.load_state_dict({key: torch.from_numpy(value) for key, value in grads.items()})
        copy_torch_to_jax(gradient_model, gradient_jax)
        jax_grads = nnx.state(gradient_jax, nnx.Param)
        tx = optax_transform(config)
        updates, _ = tx.update(jax_grads, tx.init(params), params)
        nnx.update(ours, optax.apply_updates(params, updates))
    for key, value in torch_state_of_jax(ours).items():
        np.testing.assert_allclose(value, theirs.state_dict()[key].numpy(), rtol=1e-14, atol=1e-16)


def test_configurations_and_plants_that_do_not_fit_are_refused():
    with pytest.raises(
        ValueError, match=r"OptimizerConfig\(name='rmsprop', schedule='warmup-cosine'\): choose"
    ):
        OptimizerConfig("rmsprop")
    with pytest.raises(ValueError, match=r"OptimizerConfig\(name='sgd', lr=0.0, .*lr must be > 0"):
        OptimizerConfig("sgd", lr=0.0)
    assert plant_problem("none", OptimizerConfig("sgd")) is None
    assert plant_problem("typo", OptimizerConfig("sgd")) == (
        "--plant typo: unknown; choose from none, adam-eps, bias-decay, schedule-offset"
    )
    with pytest.raises(
        ValueError, match="--plant bias-decay needs weight decay, and adam has --weight-decay 0"
    ):
        plant_options("bias-decay", OptimizerConfig("adam", weight_decay=0.0))
    with pytest.raises(ValueError, match="--plant schedule-offset needs a schedule that changes"):
        plant_options("schedule-offset", OptimizerConfig("adam", schedule="constant"))
    assert plant_options("adam-eps", OptimizerConfig("adamw")) == {"eps": 0.0, "eps_root": 1e-8}


def test_the_schedule_is_float64_in_64_bit_mode_where_optax_alone_is_not():
    config = OptimizerConfig("sgd", steps=200)
    theirs = optax.warmup_cosine_decay_schedule(0.1 * config.lr, config.lr, config.warmup, config.steps, 0.0)
    with jax.enable_x64(True):
        count = jnp.asarray(3, jnp.int32)  # what nnx.Optimizer's optax state counts with
        raw, ours = theirs(count), optax_schedule(config)(count)
    assert raw.dtype == jnp.float32 and ours.dtype == jnp.float64  # int32 / int is float32 in JAX
    exact = learning_rate(config, 3)
    assert abs(float(raw) / exact - 1) > 1e-10 and abs(float(ours) / exact - 1) < 1e-15
