"""Each side its own call: torch_inputs in the torch model's layout, keyword arguments per side."""

import numpy as np
import pytest
import torch
from flax import nnx

from crosscheck import check, copy_torch_to_jax


class TorchImages(torch.nn.Module):
    """NCHW images -> a 3x3 convolution -> mean over the image -> logits."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, pixels):
        return self.head(self.conv(pixels).mean(dim=(2, 3)))


class JaxImages(nnx.Module):
    """The same on NHWC images, as Flax ports are written."""

    def __init__(self, rngs):
        self.conv = nnx.Conv(3, 4, (3, 3), padding=((1, 1), (1, 1)), rngs=rngs)
        self.head = nnx.Linear(4, 2, rngs=rngs)

    def __call__(self, pixels):
        return self.head(self.conv(pixels).mean(axis=(1, 2)))


def test_nhwc_against_nchw_with_torch_inputs_pairs_the_input_gradients():
    theirs, ours = TorchImages(), JaxImages(nnx.Rngs(0))
    copy_torch_to_jax(theirs, ours)
    nhwc = np.random.default_rng(0).standard_normal((2, 5, 6, 3))
    result = check(ours, theirs, nhwc, torch_inputs=(np.transpose(nhwc, (0, 3, 1, 2)),))
    assert result.passed, "\n".join(result.failures())
    assert "grads.input" in [item.item for item in result.items]


def test_torch_inputs_that_are_no_permutation_leave_the_input_gradient_out_and_say_so():
    theirs, ours = TorchImages(), JaxImages(nnx.Rngs(0))
    copy_torch_to_jax(theirs, ours)
    nhwc = np.random.default_rng(0).standard_normal((2, 5, 6, 3))
    nchw = np.transpose(nhwc, (0, 3, 1, 2)).copy()
    nchw[0, 0, 0, 0] += 1.0  # another image: the models see different inputs
    result = check(ours, theirs, nhwc, torch_inputs=(nchw,))
    assert "grads.input" not in [item.item for item in result.items]
    assert any("input gradients not compared" in note for note in result.notes)


class TorchMasked(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = torch.nn.Linear(4, 3)

    def forward(self, x, attention_mask=None, scale=1.0):
        return self.dense(x) * attention_mask[..., None] * scale


class JaxMasked(nnx.Module):
    def __init__(self):
        self.dense = nnx.Linear(4, 3, rngs=nnx.Rngs(0))

    def __call__(self, x, *, mask, scale=1.0):
        return self.dense(x) * mask[..., None] * scale


def test_keyword_arguments_go_to_their_own_side():
    theirs, ours = TorchMasked(), JaxMasked()
    copy_torch_to_jax(theirs, ours)
    x = np.random.default_rng(0).standard_normal((2, 5, 4))
    mask = (np.arange(5) < np.array([[5], [3]])).astype(np.float32)
    result = check(ours, theirs, x, jax_kwargs={"mask": mask, "scale": 2.0},
                   torch_kwargs={"attention_mask": mask, "scale": 2.0})  # fmt: skip
    assert result.passed, "\n".join(result.failures())
    wrong = check(ours, theirs, x, jax_kwargs={"mask": mask, "scale": 2.0},
                  torch_kwargs={"attention_mask": mask, "scale": 3.0})  # fmt: skip
    assert not wrong.passed


def test_a_keyword_argument_that_is_neither_array_nor_constant_is_refused_by_name():
    theirs, ours = TorchMasked(), JaxMasked()
    copy_torch_to_jax(theirs, ours)
    with pytest.raises(TypeError, match=r"jax_kwargs\['scale'\] is a list: give arrays or constants"):
        check(ours, theirs, np.ones((2, 5, 4)), jax_kwargs={"mask": np.ones((2, 5)), "scale": [2.0]},
              torch_kwargs={"attention_mask": np.ones((2, 5))})  # fmt: skip


def test_locate_takes_each_sides_own_call_too():
    from crosscheck import locate

    theirs, ours = TorchImages(), JaxImages(nnx.Rngs(0))
    copy_torch_to_jax(theirs, ours)
    nhwc = np.random.default_rng(0).standard_normal((2, 5, 6, 3))
    result = locate(ours, theirs, nhwc, torch_inputs=(np.transpose(nhwc, (0, 3, 1, 2)),))
    assert [layer.path for layer in result.layers][:1] == [""] and result.layers[0].passed
    masked, port = TorchMasked(), JaxMasked()
    copy_torch_to_jax(masked, port)
    mask = np.ones((2, 5), np.float32)
    found = locate(
        port, masked, np.ones((2, 5, 4)), jax_kwargs={"mask": mask}, torch_kwargs={"attention_mask": mask}
    )
    assert found.passed and found.first_failure is None
