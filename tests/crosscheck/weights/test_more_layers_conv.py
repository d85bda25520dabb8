"""The layout rule of nnx.ConvTranspose ↔ nn.ConvTranspose1d/2d/3d: both kernel conventions
(``transpose_kernel``), copies and files both ways, ``check`` on honest pairs, and padding notes
exactly where the two functions differ."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from flax import nnx

from crosscheck import check
from crosscheck.porting.checking import require_same_weights
from crosscheck.weights import copy_torch_to_jax, numpy_of_torch, torch_state_of_jax
from tests._helpers import COPIED_OVER
from tests.crosscheck.weights._round_trips import round_trips, sample

# --- nnx.ConvTranspose ↔ nn.ConvTranspose1d/2d/3d -------------------------------------------------

TRANSPOSED_1D = [  # (kernel, stride, torch padding, output_padding, dilation, the same padding in Flax)
    (3, 1, 0, 0, 1, "VALID"),
    (3, 2, 0, 0, 1, "VALID"),
    (4, 2, 1, 0, 1, "SAME"),
    (3, 1, 1, 0, 1, "SAME"),
    (2, 3, 0, 1, 1, "VALID"),  # stride above the kernel: JAX's VALID pads the extra output
    (3, 2, 1, 1, 1, ((1, 2),)),
    (5, 3, 2, 1, 2, ((6, 7),)),
]


@pytest.mark.slow  # deselect with -m "not slow" (README)
@pytest.mark.parametrize(("k", "s", "p", "q", "d", "padding"), TRANSPOSED_1D)
@pytest.mark.parametrize("transpose_kernel", [False, True])
def test_nnx_conv_transpose_is_nn_conv_transpose1d(k, s, p, q, d, padding, transpose_kernel, tmp_path):
    def make_torch():
        return torch.nn.ConvTranspose1d(4, 6, k, stride=s, padding=p, output_padding=q, dilation=d)

    def make_jax(seed=1):
        return nnx.ConvTranspose(4, 6, (k,), strides=(s,), padding=padding, kernel_dilation=(d,),
                                 transpose_kernel=transpose_kernel, kernel_init=COPIED_OVER,
                                 rngs=nnx.Rngs(seed))  # fmt: skip

    theirs, ours = make_torch(), make_jax(0)
    round_trips(theirs, ours, make_torch, make_jax, tmp_path)
    assert require_same_weights(ours, theirs).notes == []
    assert check(ours, theirs, sample(2, 7, 4), channels_first=True).passed  # Flax (batch, length, channels)


@pytest.mark.slow  # deselect with -m "not slow" (README)
@pytest.mark.parametrize("transpose_kernel", [False, True])
def test_nnx_conv_transpose_2d_and_3d_are_nn_conv_transpose_in_float64(transpose_kernel, tmp_path):
    for torch_type, spatial in ((torch.nn.ConvTranspose2d, 2), (torch.nn.ConvTranspose3d, 3)):
        kernel = (3, 2, 2)[:spatial]

        def make_torch(torch_type=torch_type, kernel=kernel):
            return torch_type(3, 5, kernel, stride=2, dtype=torch.float64)

        def make_jax(seed=1, spatial=spatial, kernel=kernel):
            return nnx.ConvTranspose(3, 5, kernel, strides=2, padding="VALID", transpose_kernel=transpose_kernel,
                                     param_dtype=np.float64, kernel_init=COPIED_OVER,
                                     rngs=nnx.Rngs(seed))  # fmt: skip

        theirs, ours = make_torch(), make_jax(0)
        round_trips(theirs, ours, make_torch, make_jax, tmp_path)
        assert require_same_weights(ours, theirs).notes == []
        x = np.random.default_rng(spatial).standard_normal((2, *(4,) * spatial, 3))  # channels last
        y_torch = numpy_of_torch(theirs(torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))))
        np.testing.assert_allclose(np.asarray(ours(x)), np.moveaxis(y_torch, 1, -1), rtol=0, atol=1e-12)


def test_conv_transpose_padding_stride_and_dilation_that_differ_are_noted():
    ours = nnx.ConvTranspose(4, 6, (3,), strides=(2,), padding="SAME", rngs=nnx.Rngs(0))
    theirs = torch.nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1)
    assert require_same_weights(ours, theirs).notes == [
        "(root): padding 'SAME' in Flax vs padding (1,), output_padding (1,) in PyTorch "
        "(Flax pads the dilated input by ((1, 2),) to match)"
    ]
    theirs = torch.nn.ConvTranspose1d(4, 6, 3, stride=1, dilation=2, padding=2)
    assert require_same_weights(
        nnx.ConvTranspose(4, 6, (3,), padding="SAME", rngs=nnx.Rngs(0)), theirs
    ).notes == [
        "(root): kernel_dilation (1,) in Flax vs dilation (2,) in PyTorch",
        "(root): padding 'SAME' in Flax vs padding (2,), output_padding (0,) in PyTorch "
        "(Flax pads the dilated input by ((2, 2),) to match)",
    ]


def _same_function(ours, theirs) -> bool:
    """Whether a 1-D transposed-convolution pair holding the same weights computes one function."""
    copy_torch_to_jax(theirs, ours)
    x = np.random.default_rng(0).standard_normal((1, 5, 2))
    y_jax = np.asarray(ours(x))
    y_torch = np.swapaxes(
        numpy_of_torch(theirs(torch.from_numpy(np.ascontiguousarray(np.swapaxes(x, 1, 2))))), 1, 2
    )
    return y_jax.shape == y_torch.shape and np.allclose(y_jax, y_torch, rtol=0, atol=1e-12)


@pytest.mark.slow  # deselect with -m "not slow" (README)
def test_conv_transpose_padding_is_noted_exactly_when_the_functions_differ():
    """Over kernels, strides, dilations, both Flax padding words and every torch padding: no note
    means the same outputs in float64, a padding note means different ones."""
    checked = 0
    for k, s, d, word in itertools.product((1, 2, 3, 4), (1, 2, 3), (1, 2), ("SAME", "VALID")):
        ours = nnx.ConvTranspose(2, 3, (k,), strides=(s,), padding=word, kernel_dilation=(d,),
                                 param_dtype=np.float64, kernel_init=COPIED_OVER,
                                 rngs=nnx.Rngs(0))  # fmt: skip
        for p, q in itertools.product(range(d * (k - 1) + 1), range(max(s, d))):
            if 4 * s - 2 * p + d * (k - 1) + q + 1 < 1:  # torch's output length for 5 inputs
                continue
            theirs = torch.nn.ConvTranspose1d(2, 3, k, stride=s, padding=p, output_padding=q, dilation=d,
                                              dtype=torch.float64)  # fmt: skip
            same = _same_function(ours, theirs)
            notes = require_same_weights(ours, theirs).notes
            assert (notes == []) == same, (k, s, d, word, p, q, notes)
            checked += 1
    assert checked > 200


def test_a_conv_transpose_without_bias(tmp_path):
    def make_torch():
        return torch.nn.ConvTranspose1d(4, 6, 3, stride=2, bias=False)

    def make_jax(seed=1):
        return nnx.ConvTranspose(
            4,
            6,
            (3,),
            strides=(2,),
            padding="VALID",
            use_bias=False,
            kernel_init=COPIED_OVER,
            rngs=nnx.Rngs(seed),
        )

    theirs, ours = make_torch(), make_jax(0)
    round_trips(theirs, ours, make_torch, make_jax, tmp_path)
    assert list(torch_state_of_jax(ours)) == ["weight"]
    assert check(ours, theirs, sample(2, 7, 4), channels_first=True).passed
