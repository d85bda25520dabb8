"""The classifier in both frameworks: one set of weights, the same function, and the transplant that
gives a Conv1d encoder a Linear encoder's init."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from crosscheck.training.models import ModelSpec, jax_model, spec_named, torch_model, transplant
from crosscheck.weights import copy_torch_to_jax
from tests.crosscheck.training._small import SPEC, TASK


@pytest.mark.parametrize("name", ["linear", "conv", "conv-matmul", "conv-maxpool", "linear-maxpool"])
def test_both_frameworks_compute_the_same_logits_from_one_set_of_weights(name):
    spec = spec_named(name, length=4, features=8, hidden=8, classes=3)
    theirs = torch_model(spec, dtype="float64", seed=1)
    ours = jax_model(spec, "float64")
    copy_torch_to_jax(theirs, ours)
    x = TASK.arrays().x_test[:16].astype(np.float64)
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(np.asarray(ours(jnp.asarray(x))), expected, rtol=1e-12, atol=1e-12)


@given(name=st.sampled_from(["linear", "conv", "conv-matmul"]), pool=st.booleans())
def test_spec_named_is_the_inverse_of_name(name, pool):
    full = name + ("-maxpool" if pool else "")
    assert spec_named(full).name == full


def test_a_transplanted_init_gives_the_same_function():
    linear = torch_model(SPEC, seed=0)
    conv = transplant(linear, spec_named("conv", length=4, features=8, hidden=8, classes=3))
    assert conv.encoder.weight.shape == (8, 8, 1)
    x = torch.from_numpy(TASK.arrays().x_test[:16])
    torch.testing.assert_close(conv(x), linear(x), rtol=1e-6, atol=1e-6)
    assert torch.equal(transplant(conv, SPEC).encoder.weight, linear.encoder.weight)


def test_bad_specs_and_transplants_are_refused():
    with pytest.raises(
        ValueError, match=r"ModelSpec\(layer='dense', impl='conv'\): layer must be one of linear, conv"
    ):
        ModelSpec("dense")
    with pytest.raises(
        ValueError, match=r"ModelSpec\(length=5, pool=True\): MaxPool1d\(2\) needs an even length"
    ):
        ModelSpec("conv", pool=True, length=5)
    with pytest.raises(
        ValueError, match=r"spec_named: unknown model 'dense'; choose from linear, conv, conv-matmul, each"
    ):
        spec_named("dense")
    with pytest.raises(ValueError, match="differ in more than the encoder layer"):
        transplant(
            torch_model(SPEC, seed=0), spec_named("conv-maxpool", length=4, features=8, hidden=8, classes=3)
        )


def test_the_linear_classifier_keeps_nnx_linears_program_at_the_test_sets_size():
    # impl="auto" would lower a 16,000-row batch as a 1x1 convolution; the experiment's bitwise claim
    # (PointwiseConv's matmul path trains like Linear) needs the one dot at every batch size.
    model = jax_model(spec_named("linear"), np.float32)
    shape = (2000, 8, model.encoder.in_features)
    assert model.encoder.formulation(shape) == "matmul" and model.head.formulation((2000, 1)) == "matmul"
