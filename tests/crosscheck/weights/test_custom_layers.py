"""Torch layers no rule names, containers that hold parameters beside their children, and conv
padding notes that hold for the input sizes they name:

- a torch module of a class no rule lists (a user's ``MyRMSNorm``, transformers' ``LlamaRMSNorm``)
  maps when its parameter names and shapes are those the JAX layer's rule expects, and the pair is
  noted; names or shapes that do not fit keep the key-mismatch error;
- a container's rule that claims its own parameters (``cls_token``) leaves its child conv to the
  conv's rule;
- ``padding="SAME"`` against PyTorch's explicit padding is noted with the input sizes where the two
  differ, and not at all when they agree for every size."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from crosscheck import check
from crosscheck.porting.checking import require_same_weights
from crosscheck.weights import (
    Layout,
    ParamRule,
    WeightsError,
    copy_jax_to_torch,
    copy_torch_to_jax,
    layouts,
    register_layout,
    torch_state_of_jax,
)
from crosscheck.weights.layouts_conv import same_agrees
from tests._helpers import COPIED_OVER
from tests.crosscheck.weights._round_trips import round_trips, sample

# --- a torch class with no rule, mapped by its parameter names and shapes ---------------------------


class MyRMSNorm(torch.nn.Module):
    """A user's RMSNorm: ``weight`` and an epsilon, no rule of its own."""

    def __init__(self, size: int, eps: float = 1e-6):
        super().__init__()
        self.weight, self.eps = torch.nn.Parameter(torch.ones(size)), eps

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


def test_a_users_rms_norm_maps_as_rms_norm_and_is_noted(tmp_path):
    theirs, ours = MyRMSNorm(8), nnx.RMSNorm(8, rngs=nnx.Rngs(0))
    round_trips(
        theirs, ours, lambda: MyRMSNorm(8), lambda seed=1: nnx.RMSNorm(8, rngs=nnx.Rngs(seed)), tmp_path
    )
    assert require_same_weights(ours, theirs).notes == [
        "(root): torch MyRMSNorm has no layout rule; mapped as nnx.RMSNorm by its parameter names and "
        "shapes (weight (8,))"
    ]
    assert check(ours, theirs, sample(4, 5, 8)).passed


@pytest.mark.parametrize("family", ["llama", "qwen3"])
def test_transformers_rms_norms_map_as_rms_norm(family):
    modeling = pytest.importorskip(f"transformers.models.{family}.modeling_{family}")
    norm_class = getattr(modeling, {"llama": "LlamaRMSNorm", "qwen3": "Qwen3RMSNorm"}[family])
    theirs, ours = norm_class(8, eps=1e-5), nnx.RMSNorm(8, epsilon=1e-5, rngs=nnx.Rngs(0))
    with torch.no_grad():
        theirs.weight.copy_(torch.linspace(0.5, 1.5, 8))
    copy_torch_to_jax(theirs, ours)
    np.testing.assert_array_equal(np.asarray(ours.scale[...]), theirs.weight.detach().numpy())
    assert require_same_weights(ours, theirs).notes == [
        f"(root): torch {norm_class.__name__} has no layout rule; mapped as nnx.RMSNorm by its parameter "
        "names and shapes (weight (8,))"
    ]
    assert check(ours, theirs, sample(4, 5, 8)).passed
    other = nnx.RMSNorm(8, rngs=nnx.Rngs(0))  # epsilon 1e-6: read from variance_epsilon
    assert (
        require_same_weights(other, theirs).notes[1]
        == "(root): epsilon 1e-06 in Flax vs variance_epsilon 1e-05 in PyTorch"
    )


def test_a_class_that_is_another_layers_twin_is_named_so():
    theirs = torch.nn.LayerNorm(8, bias=False)  # weight (8,) alone: RMSNorm's names and shapes
    ours = nnx.RMSNorm(8, epsilon=1e-5, rngs=nnx.Rngs(0))
    copy_torch_to_jax(theirs, ours)
    assert require_same_weights(ours, theirs).notes == [
        "(root): torch LayerNorm is the twin of nnx.LayerNorm, not of nnx.RMSNorm; mapped as nnx.RMSNorm by "
        "its parameter names and shapes (weight (8,))"
    ]


def test_a_subclass_of_a_listed_torch_class_is_not_noted():
    theirs = torch.nn.modules.linear.NonDynamicallyQuantizableLinear(3, 2)  # nn.MultiheadAttention's out_proj
    ours = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    copy_torch_to_jax(theirs, ours)
    assert require_same_weights(ours, theirs).notes == []


def test_names_or_shapes_that_do_not_fit_keep_the_key_error():
    class Gamma(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gamma = torch.nn.Parameter(torch.ones(8))

    ours = nnx.RMSNorm(8, rngs=nnx.Rngs(0))
    with pytest.raises(
        WeightsError, match=r"missing key 'weight' \(perhaps 'gamma': same shape\) and unexpected key 'gamma'"
    ):
        copy_torch_to_jax(Gamma(), ours)
    with pytest.raises(WeightsError, match=r"key 'weight' has shape \(6,\), expected \(8,\)"):
        copy_torch_to_jax(MyRMSNorm(6), ours)


# --- a container holding parameters beside a child conv (a ViT embedding) ---------------------------


class Embeddings(nnx.Module):
    """Patches of 4×4 pixels projected by a conv, a class token in front, position embeddings added."""

    def __init__(self, rngs: nnx.Rngs):
        self.cls_token = nnx.Param(jnp.zeros((1, 1, 6), jnp.float32))
        self.position_embeddings = nnx.Param(jnp.zeros((1, 5, 6), jnp.float32))
        self.projection = nnx.Conv(3, 6, (4, 4), strides=(4, 4), padding="VALID", rngs=rngs)

    def __call__(self, x):  # (batch, 8, 8, 3)
        patches = self.projection(x).reshape(x.shape[0], -1, 6)
        cls = jnp.broadcast_to(self.cls_token[...], (x.shape[0], 1, 6))
        return jnp.concatenate([cls, patches], axis=1) + self.position_embeddings[...]


class TorchEmbeddings(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.cls_token = torch.nn.Parameter(torch.randn(1, 1, 6))
        self.position_embeddings = torch.nn.Parameter(torch.randn(1, 5, 6))
        self.projection = torch.nn.Conv2d(3, 6, 4, stride=4)

    def forward(self, x):  # (batch, 3, 8, 8)
        patches = self.projection(x).flatten(2).transpose(1, 2)
        return (
            torch.cat([self.cls_token.expand(x.shape[0], -1, -1), patches], dim=1) + self.position_embeddings
        )


@pytest.fixture
def embeddings_layout(monkeypatch):
    """The container's rule claims its own two parameters only (registered for one test)."""
    monkeypatch.setattr(layouts, "_REGISTRY", list(layouts._REGISTRY))
    own = (ParamRule("cls_token", "cls_token"), ParamRule("position_embeddings", "position_embeddings"))
    register_layout(Layout("test.Embeddings", (Embeddings,), own, ("TorchEmbeddings",)))


def test_without_a_rule_the_containers_own_parameters_are_unmapped():
    with pytest.raises(WeightsError, match=r"no layout rule maps 'cls_token', 'position_embeddings'"):
        torch_state_of_jax(Embeddings(nnx.Rngs(0)))


@pytest.mark.usefixtures("embeddings_layout")
def test_a_containers_rule_leaves_its_child_conv_to_the_convs_rule(tmp_path):
    theirs, ours = TorchEmbeddings(), Embeddings(nnx.Rngs(0))
    assert list(torch_state_of_jax(ours)) == list(theirs.state_dict())
    round_trips(theirs, ours, TorchEmbeddings, lambda seed=1: Embeddings(nnx.Rngs(seed)), tmp_path)
    x = sample(2, 8, 8, 3)
    result = check(
        ours, theirs, x, torch_inputs=(np.ascontiguousarray(x.transpose(0, 3, 1, 2)),), channels_first=False
    )
    assert result.passed, result
    back = TorchEmbeddings()
    copy_jax_to_torch(ours, back)
    torch.testing.assert_close(back.projection.weight, theirs.projection.weight, rtol=0, atol=0)


# --- padding="SAME" against PyTorch's explicit padding --------------------------------------------


def flax_conv(*args, **options) -> nnx.Conv:
    """An ``nnx.Conv`` with zero weights: these tests read its sizes and padding, or copy weights over it."""
    return nnx.Conv(*args, kernel_init=COPIED_OVER, rngs=nnx.Rngs(0), **options)


def test_a_patch_embedding_conv_is_noted_with_the_sizes_where_it_differs():
    ours = flax_conv(3, 8, (16, 16), strides=(16, 16), padding="SAME")
    assert require_same_weights(ours, torch.nn.Conv2d(3, 8, 16, stride=16)).notes == [
        "(root): padding 'SAME' in Flax vs (0, 0) in PyTorch: the same function where every spatial size is a "
        "multiple of 16 (SAME's padding depends on the size); other sizes differ"
    ]


@pytest.mark.parametrize(  # built in the test, not at collection (where every test worker would build them)
    ("flax", "torch_layer"),
    [
        (lambda: flax_conv(3, 8, (1,), padding="SAME"), lambda: torch.nn.Conv1d(3, 8, 1)),
        (lambda: flax_conv(3, 8, (3, 3), padding="SAME"), lambda: torch.nn.Conv2d(3, 8, 3, padding=1)),
        (lambda: flax_conv(3, 8, (4,), padding="SAME"), lambda: torch.nn.Conv1d(3, 8, 4, padding="same")),
        (lambda: flax_conv(3, 8, (3,), padding=((1, 1),)), lambda: torch.nn.Conv1d(3, 8, 3, padding="same")),
    ],
    ids=["1-same", "3x3-same", "4-same", "3-explicit"],
)
def test_paddings_equal_for_every_size_are_not_noted(flax, torch_layer):
    assert require_same_weights(flax(), torch_layer()).notes == []


@pytest.mark.slow  # deselect with -m "not slow" (README)
@pytest.mark.parametrize(
    ("kernel", "stride", "pad"), [(16, 16, 0), (3, 2, 1), (4, 2, 1), (5, 3, 2), (2, 2, 0)]
)
def test_the_sizes_named_are_those_where_the_outputs_agree(kernel, stride, pad):
    ours = flax_conv(2, 3, (kernel,), strides=(stride,), padding="SAME")
    theirs = torch.nn.Conv1d(2, 3, kernel, stride=stride, padding=pad)
    copy_torch_to_jax(theirs, ours)
    for size in range(kernel + 1, kernel + 1 + 2 * stride):
        x = sample(1, size, 2)
        mine = np.asarray(ours(jnp.asarray(x)))
        with torch.no_grad():
            twin = (
                theirs(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1))))
                .numpy()
                .transpose(0, 2, 1)
            )
        agree = mine.shape == twin.shape and np.allclose(mine, twin, rtol=1e-5, atol=1e-5)
        assert agree == (size % stride in same_agrees(kernel, stride, 1, pad)), (size, mine.shape, twin.shape)
