"""channels_first= for 1-D, 2-D and 3-D convolutions, the input and the output separately, detected or
given: NHWC <-> NCHW moves the last axis to position 1."""

import numpy as np
import pytest
import torch
from flax import nnx

from crosscheck import check, copy_torch_to_jax
from crosscheck.porting.channels import (
    Channels,
    channels_first_of,
    channels_option,
    swap_channels,
    to_channels_first,
    to_channels_last,
)
from crosscheck.porting.locating import locate


def _normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _conv_pair(spatial: int):
    torch.manual_seed(0)
    kinds = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}
    theirs = kinds[spatial](3, 4, 3, padding=1)
    ours = nnx.eval_shape(
        lambda: nnx.Conv(3, 4, (3,) * spatial, padding=((1, 1),) * spatial, rngs=nnx.Rngs(0))
    )
    copy_torch_to_jax(theirs, ours)
    return ours, theirs


class TorchClassifier(torch.nn.Module):
    """NCHW -> conv -> global mean -> logits: channels first in, (N, classes) out."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.flatten = torch.nn.Flatten()
        self.head = torch.nn.Linear(4, 5)

    def forward(self, x):
        return self.head(self.flatten(self.pool(torch.relu(self.conv(x)))))


class JaxClassifier(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(3, 4, (3, 3), padding=((1, 1), (1, 1)), rngs=rngs)
        self.head = nnx.Linear(4, 5, rngs=rngs)

    def __call__(self, x):
        return self.head(nnx.relu(self.conv(x)).mean(axis=(1, 2)))


def test_moving_channels_is_the_last_axis_to_position_1_and_back():
    x = _normal(2, 5, 6, 3)
    assert to_channels_first(x).shape == (2, 3, 5, 6)
    np.testing.assert_array_equal(to_channels_last(to_channels_first(x)), x)
    assert to_channels_first(_normal(2, 4, 5, 6, 3)).shape == (2, 3, 4, 5, 6)
    sequence = _normal(2, 7, 3)  # for 3-D arrays the old swap of the last two axes
    np.testing.assert_array_equal(to_channels_first(sequence), swap_channels(sequence))
    assert to_channels_first(_normal(7, 3)).shape == (3, 7)  # an unbatched sequence


def test_the_forms_of_channels_first():
    assert channels_option(True) == Channels(True, True)
    assert channels_option(False) == Channels(False, False)
    assert channels_option("input") == Channels(True, False)
    assert channels_option("output") == Channels(False, True)
    assert channels_option(None) is None


@pytest.mark.parametrize("value", ["both", "NCHW", 1, ("input",)])
def test_a_bad_channels_first_names_the_accepted_values(value):
    ours, theirs = _conv_pair(2)
    with pytest.raises(ValueError, match=r"channels_first must be True, 'input', 'output', False or None"):
        check(ours, theirs, _normal(2, 5, 6, 3), channels_first=value)


def test_detection_reads_the_first_and_the_last_layer():
    assert channels_first_of(torch.nn.Conv2d(3, 4, 3)) == Channels(True, True)
    assert channels_first_of(TorchClassifier()) == Channels(True, False)
    assert channels_first_of(torch.nn.Linear(3, 4)) == Channels(False, False)
    image_to_tokens = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 2, stride=2), torch.nn.Flatten(2))
    assert channels_first_of(image_to_tokens) == Channels(True, False)


@pytest.mark.parametrize("channels_first", [True, None])
def test_a_2d_convolution_nhwc_against_nchw(channels_first):
    ours, theirs = _conv_pair(2)
    result = check(ours, theirs, _normal(2, 5, 6, 3), channels_first=channels_first)
    assert result.passed, "\n".join(result.failures())
    assert [item.item for item in result.items] == ["output", "grads.weight", "grads.bias", "grads.input"]


@pytest.mark.parametrize("spatial", [1, 3])
def test_1d_and_3d_convolutions_are_detected(spatial):
    ours, theirs = _conv_pair(spatial)
    result = check(ours, theirs, _normal(2, *(4,) * spatial, 3))
    assert result.passed, "\n".join(result.failures())


def test_only_the_input_channels_first_a_classifier():
    torch.manual_seed(0)
    theirs, ours = TorchClassifier(), nnx.eval_shape(lambda: JaxClassifier(nnx.Rngs(0)))  # arrays: the copy's
    copy_torch_to_jax(theirs, ours)
    x = _normal(2, 5, 6, 3)
    for channels_first in ("input", None):
        result = check(ours, theirs, x, channels_first=channels_first)
        assert result.passed, "\n".join(result.failures())
        assert "grads.input" in [item.item for item in result.items]
    message = r"output has shape \(2, 5\) in torch, read channels first as \(5, 2\) channels last, but \(2, 5\) in JAX"
    with pytest.raises(ValueError, match=message + r"; channels_first='input' leaves"):
        check(ours, theirs, x, channels_first=True)  # the logits are no image


def test_locate_moves_a_2d_input_and_judges_every_layer():
    torch.manual_seed(0)
    theirs, ours = TorchClassifier(), nnx.eval_shape(lambda: JaxClassifier(nnx.Rngs(0)))  # arrays: the copy's
    copy_torch_to_jax(theirs, ours)
    result = locate(ours, theirs, _normal(2, 5, 6, 3))
    assert result.first_failure is None, str(result)
    assert {layer.path for layer in result.layers} == {"", "conv", "head"}
    assert all(layer.inputs == "truth" for layer in result.layers)
