"""Layout rules of the layers beyond the first few that torch.nn and flax.nnx both ship: LayerNorm
without scale or bias, RMSNorm, GroupNorm, PReLU, LinearGeneral and Einsum (ConvTranspose:
``test_more_layers_conv``). Each is tested both ways (copies bit for bit, a safetensors file each
way), then judged by ``check`` on an honest pair holding the same weights; a configuration the
weights cannot show is noted, and an equal one spelled differently is not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flax import nnx

from crosscheck import check
from crosscheck.porting.checking import require_same_weights
from crosscheck.weights import WeightsError, copy_torch_to_jax, torch_state_of_jax
from tests.crosscheck.weights._round_trips import round_trips, sample

# --- nnx.LayerNorm without scale or bias ---------------------------------------------------------


@pytest.mark.parametrize("scale", [False, True])
def test_layer_norm_without_bias_or_scale(scale, tmp_path):
    def make_torch():  # elementwise_affine=False drops both; bias=False the bias alone
        return torch.nn.LayerNorm(8, eps=1e-6, elementwise_affine=scale, bias=False)

    def make_jax(seed=1):
        return nnx.LayerNorm(8, epsilon=1e-6, use_scale=scale, use_bias=False, use_fast_variance=False,
                             rngs=nnx.Rngs(seed))  # fmt: skip

    theirs, ours = make_torch(), make_jax(0)
    round_trips(theirs, ours, make_torch, make_jax, tmp_path)
    assert require_same_weights(ours, theirs).notes == []
    assert check(ours, theirs, sample(4, 5, 8)).passed


def test_a_layer_norm_with_a_bias_but_no_scale_has_no_torch_twin():
    ours = nnx.LayerNorm(8, use_scale=False, rngs=nnx.Rngs(0))  # PyTorch cannot drop the weight alone
    with pytest.raises(WeightsError, match=r"unexpected key 'weight'; expected exactly the keys 'bias'"):
        copy_torch_to_jax(torch.nn.LayerNorm(8), ours)


# --- nnx.RMSNorm ↔ nn.RMSNorm --------------------------------------------------------------------


@pytest.mark.parametrize("scale", [True, False])
def test_nnx_rms_norm_scale_is_nn_rms_norm_weight(scale, tmp_path):
    def make_torch():
        return torch.nn.RMSNorm(8, eps=1e-6, elementwise_affine=scale)

    def make_jax(seed=1):
        return nnx.RMSNorm(8, epsilon=1e-6, use_scale=scale, rngs=nnx.Rngs(seed))

    theirs, ours = make_torch(), make_jax(0)
    round_trips(theirs, ours, make_torch, make_jax, tmp_path)
    assert require_same_weights(ours, theirs).notes == []
    assert check(ours, theirs, sample(4, 5, 8)).passed


def test_rms_norm_epsilons_that_differ_are_noted_and_eps_none_is_the_dtypes():
    ours = nnx.RMSNorm(8, rngs=nnx.Rngs(0))  # epsilon 1e-6
    assert require_same_weights(ours, torch.nn.RMSNorm(8, eps=1e-5)).notes == [
        "(root): epsilon 1e-06 in Flax vs eps 1e-05 in PyTorch"
    ]
    assert require_same_weights(ours, torch.nn.RMSNorm(8, eps=1e-6 * (1 + 1e-9))).notes == []
    (note,) = require_same_weights(ours, torch.nn.RMSNorm(8)).notes
    assert note == (
        "(root): epsilon 1e-06 in Flax vs eps None in PyTorch (the input dtype's machine epsilon: "
        "1.19e-07 for float32, 2.22e-16 for float64)"
    )
    (note,) = require_same_weights(ours, torch.nn.RMSNorm(8, dtype=torch.float64)).notes
    assert note.endswith("(the input dtype's machine epsilon: 2.22e-16 for float64)")


# --- nnx.GroupNorm ↔ nn.GroupNorm ----------------------------------------------------------------


@pytest.mark.parametrize("affine", [True, False])
def test_nnx_group_norm_is_nn_group_norm_channels_first(affine, tmp_path):
    def make_torch():
        return torch.nn.GroupNorm(2, 8, eps=1e-5, affine=affine)

    def make_jax(seed=1):
        return nnx.GroupNorm(8, num_groups=2, epsilon=1e-5, use_scale=affine, use_bias=affine,
                             use_fast_variance=False, rngs=nnx.Rngs(seed))  # fmt: skip

    theirs, ours = make_torch(), make_jax(0)
    round_trips(theirs, ours, make_torch, make_jax, tmp_path)
    assert require_same_weights(ours, theirs).notes == []
    # (batch, length, channels) for Flax; check hands torch (batch, channels, length)
    assert check(ours, theirs, sample(3, 6, 8), channels_first=True).passed


def test_group_norm_groups_epsilon_and_fast_variance_are_noted():
    ours = nnx.GroupNorm(8, num_groups=4, rngs=nnx.Rngs(0))  # epsilon 1e-6, fast variance
    notes = require_same_weights(ours, torch.nn.GroupNorm(2, 8)).notes
    assert notes[:2] == [
        "(root): num_groups 4 in Flax vs num_groups 2 in PyTorch",
        "(root): epsilon 1e-06 in Flax vs eps 1e-05 in PyTorch",
    ]
    assert "use_fast_variance=True" in notes[2]
    same_groups = nnx.GroupNorm(8, num_groups=None, group_size=4, epsilon=1e-5, use_fast_variance=False,
                                rngs=nnx.Rngs(0))  # fmt: skip
    assert require_same_weights(same_groups, torch.nn.GroupNorm(2, 8)).notes == []


# --- nnx.PReLU ↔ nn.PReLU --------------------------------------------------------------------------


def test_nnx_prelu_slope_is_nn_prelu_weight_of_one_parameter(tmp_path):
    theirs, ours = torch.nn.PReLU(), nnx.PReLU()
    assert ours.negative_slope[...].shape == () and theirs.weight.shape == (1,)
    round_trips(theirs, ours, torch.nn.PReLU, nnx.PReLU, tmp_path)
    assert check(ours, theirs, sample(4, 6) - 0.5).passed


def test_a_prelu_per_channel_has_no_nnx_twin():
    with pytest.raises(WeightsError, match=r"weight.*\(4,\).*\(1,\)|weight.*\(1,\).*\(4,\)"):
        copy_torch_to_jax(torch.nn.PReLU(4), nnx.PReLU())


# --- nnx.LinearGeneral and nnx.Einsum ↔ nn.Linear ---------------------------------------------------


class Holder(nnx.Module):
    """A Flax layer under the name ``proj``, as a port holds it."""

    def __init__(self, proj):
        self.proj = proj

    def __call__(self, x):
        return self.proj(x)


class FlatLinear(torch.nn.Module):
    """``nn.Linear`` over the last ``in_axes`` axes flattened, its output viewed as ``out_shape``."""

    def __init__(self, in_shape, out_shape, bias=True):
        super().__init__()
        self.in_axes, self.out_shape = len(in_shape), tuple(out_shape)
        self.proj = torch.nn.Linear(int(np.prod(in_shape)), int(np.prod(out_shape)), bias=bias)

    def forward(self, x):
        y = self.proj(x.flatten(-self.in_axes) if self.in_axes > 1 else x)
        return y.unflatten(-1, self.out_shape)


LINEAR_GENERAL_SHAPES = [((6,), (2, 3), -1), ((2, 3), (4,), (-2, -1)), ((2, 3), (5, 2), (-2, -1))]


@pytest.mark.parametrize(("in_shape", "out_shape", "axis"), LINEAR_GENERAL_SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_nnx_linear_general_is_nn_linear_over_flattened_features(in_shape, out_shape, axis, bias, tmp_path):
    def make_torch():
        return FlatLinear(in_shape, out_shape, bias)

    def make_jax(seed=1):
        layer = nnx.LinearGeneral(in_shape, out_shape, axis=axis, use_bias=bias, rngs=nnx.Rngs(seed))
        return Holder(layer)

    theirs, ours = make_torch(), make_jax(0)
    round_trips(theirs, ours, make_torch, make_jax, tmp_path)
    assert check(ours, theirs, sample(3, 4, *in_shape)).passed


def test_a_linear_general_with_batch_axes_has_no_nn_linear_twin():
    ours = nnx.LinearGeneral((2, 3), 4, axis=(1, 2), batch_axis={0: 5}, rngs=nnx.Rngs(0))
    with pytest.raises(WeightsError, match=r"nnx.LinearGeneral\(in_features=\(2, 3\).*batch_axis=\{0: 5\}"):
        torch_state_of_jax(ours)


EINSUMS = [  # (string, kernel_shape, bias_shape, Flax input shape, torch in features, torch out shape)
    ("...d,dh->...h", (8, 4), (4,), (3, 5, 8), (8,), (4,)),
    ("BTD,NDH->BTNH", (2, 8, 3), (2, 3), (3, 5, 8), (8,), (2, 3)),
    ("BTNH,NHD->BTD", (2, 3, 8), (8,), (3, 5, 2, 3), (2, 3), (8,)),
    ("BTD,DNH->BTNH", (8, 2, 3), None, (3, 5, 8), (8,), (2, 3)),
]


@pytest.mark.parametrize(("spec", "kernel", "bias", "x_shape", "in_shape", "out_shape"), EINSUMS)
def test_nnx_einsum_is_nn_linear_by_its_string(spec, kernel, bias, x_shape, in_shape, out_shape, tmp_path):
    def make_torch():
        return FlatLinear(in_shape, out_shape, bias is not None)

    def make_jax(seed=1):
        return nnx.eval_shape(
            lambda: Holder(nnx.Einsum(spec, kernel, bias, rngs=nnx.Rngs(seed)))
        )  # copy's arrays

    theirs, ours = make_torch(), make_jax(0)
    round_trips(theirs, ours, make_torch, make_jax, tmp_path)
    assert check(ours, theirs, sample(*x_shape)).passed


@pytest.mark.parametrize(
    ("spec", "kernel", "bias", "match"),
    [
        ("BTNH,NHD->BTND", (2, 3, 8), None, r"kernel axes 'N' are in both the input and the output"),
        ("BTD,ND->BTN", (2, 8), (3,), r"expected a bias of shape \(2,\).*got bias_shape \(3,\)"),
        (
            "BTD,DHX->BTH",
            (8, 4, 2),
            None,
            r"kernel axes 'X' are in both the input and the output, or in neither",
        ),
    ],
)
def test_an_einsum_with_no_nn_linear_twin_is_refused(spec, kernel, bias, match):
    ours = nnx.Einsum(spec, kernel, bias, rngs=nnx.Rngs(0))
    with pytest.raises(WeightsError, match=match):
        torch_state_of_jax(ours)
