"""locate(): every submodule present in both models judged on its own float64-truth input; the first
failure is the earliest, deepest failing one — a container whose children pass owns the difference."""

import jax
import numpy as np
import pytest
import torch
from flax import nnx

import jaxlin
from crosscheck import copy_torch_to_jax, locate
from tests.crosscheck.porting.models import JaxModel, build_jax, build_jax_tanh_gelu, build_torch


def _pair(jax_model):
    theirs = build_torch()
    copy_torch_to_jax(theirs, jax_model)
    return jax_model, theirs


X = np.random.default_rng(0).standard_normal((3, 5, 16))


def test_the_honest_port_passes_every_layer_in_execution_order():
    result = locate(*_pair(build_jax()), X)
    assert result.passed and result.first_failure is None
    assert [layer.path for layer in result.layers] == [
        "",
        "block",
        "block.up",
        "block.norm",
        "block.down",
        "head",
    ]
    assert {layer.path: layer.rule for layer in result.layers}["block.norm"] == "relative"
    assert {layer.path: layer.rule for layer in result.layers}["block.up"] == "analytic"
    assert result.torch_only == ["block.act"] and result.jax_only == []
    assert "first failure: none" in str(result)


def test_a_tanh_gelu_function_is_blamed_on_the_block_that_calls_it_not_on_its_layers():
    result = locate(*_pair(build_jax_tanh_gelu()), X)
    failing = [layer.path for layer in result.layers if not layer.passed]
    assert failing == ["", "block"] and result.first_failure == "block"
    block = next(layer for layer in result.layers if layer.path == "block")
    assert not block.items[0].same_function.passed  # different math: found in float64


def test_a_wrong_epsilon_is_located_in_its_layer_norm_and_later_layers_are_not_blamed():
    result = locate(*_pair(JaxModel(nnx.Rngs(0), epsilon=1e-2)), X)
    assert result.first_failure == "block.norm"
    assert {layer.path: layer.passed for layer in result.layers}["head"]  # judged on the truth's input


@pytest.mark.parametrize("planted", ["up", "down"])
def test_a_wrong_weight_is_located_in_its_linear(planted):
    jax_model, theirs = _pair(build_jax())
    layer = getattr(jax_model.block, planted)
    layer.kernel[...] = layer.kernel[...] * 1.001
    assert locate(jax_model, theirs, X).first_failure == f"block.{planted}"


def test_weights_that_do_not_map_raise_before_anything_runs():
    from crosscheck import WeightsError

    jax_model, theirs = _pair(build_jax())
    theirs.extra = torch.nn.Linear(2, 2)
    with pytest.raises(WeightsError, match="unexpected keys 'extra.weight', 'extra.bias'"):
        locate(jax_model, theirs, X)


@pytest.mark.slow  # deselect with -m "not slow" (README)
def test_with_gradients_every_layer_with_positional_inputs_is_checked_with_its_gradients():
    result = locate(*_pair(build_jax()), X, grads=True)
    assert result.passed
    up = next(layer for layer in result.layers if layer.path == "block.up")
    assert [item.item for item in up.items] == ["output", "grads.weight", "grads.bias", "grads.input"]
    block = next(layer for layer in result.layers if layer.path == "block")
    assert [item.item for item in block.items] == ["output", "grads.input"]  # its layers' are judged there


@pytest.mark.slow
def test_with_gradients_each_parameter_gradient_is_judged_once_at_the_deepest_row_holding_it():
    jax_model, theirs = _pair(build_jax())
    result = locate(jax_model, theirs, X, grads=True)
    judged = [
        f"{layer.path}.{item.item[len('grads.') :]}".lstrip(".")
        for layer in result.layers
        for item in layer.items
        if item.item.startswith("grads.") and item.item != "grads.input"
    ]
    assert sorted(judged) == sorted(name for name, _ in theirs.named_parameters())
    assert all("grads.input" in [item.item for item in layer.items] for layer in result.layers)


def test_a_gradient_bug_in_a_layer_fails_that_layer_and_every_container_above_it_on_the_input_gradient():
    jax_model = build_jax()
    jax_model.block.up = _InputGradientLost(16, 32, rngs=nnx.Rngs(0))
    jax_model, theirs = _pair(jax_model)
    assert locate(jax_model, theirs, X).passed  # forward only: nothing to see
    result = locate(jax_model, theirs, X, grads=True)
    assert result.first_failure == "block.up", str(result)
    failing = {layer.path: [i.item for i in layer.items if not i.passed] for layer in result.layers}
    assert failing["block.up"] == ["grads.input"] and failing["block"] == ["grads.input"]
    assert failing["block.norm"] == [] and failing["head"] == []


class _InputGradientLost(jaxlin.Linear):
    """The same forward, no gradient to its input: a bug only gradients show."""

    def __call__(self, x):
        return super().__call__(jax.lax.stop_gradient(x))


def _failing(path: str, inputs: str):
    from crosscheck.porting.locate_layers import LayerResult

    return LayerResult(path, path, "Torch", "Jax", inputs, failure="differs")


@pytest.mark.parametrize(
    ("rows", "blamed"),
    [
        # a bug in the attention's own code, before an o_proj that could not take the truth's input
        ([("", "truth"), ("attn", "truth"), ("attn.o_proj", "own")], "attn"),
        # a moved stride: conv1 fails on the truth's input, conv2 after it on its own
        (
            [("", "truth"), ("block", "truth"), ("block.conv1", "truth"), ("block.conv2", "own")],
            "block.conv1",
        ),
        # only rows judged on their own inputs fail: the earliest, deepest of them
        ([("block", "own"), ("block.conv2", "own")], "block.conv2"),
    ],
)
def test_a_row_judged_on_its_own_inputs_is_blamed_only_when_no_row_on_the_truths_fails(rows, blamed):
    from crosscheck.porting.locating import LocateResult

    result = LocateResult("demo", "float32", [_failing(path, inputs) for path, inputs in rows], [], [])
    assert result.first_failure == blamed
