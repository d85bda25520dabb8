"""align: the mapping found from both execution traces, used as rename= by the copies and check; what it
cannot decide flagged, never guessed silently; clear errors."""

import re

import jax
import numpy as np
import pytest
import torch
from flax import nnx

import jaxlin
from crosscheck import align, check, copy_torch_to_jax
from crosscheck.porting.evaluate import ModelCallError
from crosscheck.weights.tree import renamed

X = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)


class Mlp(nnx.Module):
    def __init__(self, rngs, head: bool = False):
        self.fc_in, self.fc_out = nnx.Linear(8, 16, rngs=rngs), jaxlin.Linear(16, 4, rngs=rngs)
        if head:
            self.unused = jaxlin.Linear(4, 2, rngs=rngs)  # defined, never called

    def __call__(self, x):
        return self.fc_out(jax.nn.gelu(self.fc_in(x), approximate=False))


def _sequential():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4))


def _round_trip(port, ref, *inputs, **sides):
    found = align(port, ref, *inputs, **sides)
    copy_torch_to_jax(ref, port, rename=found.rename)
    assert check(port, ref, *inputs, rename=found.rename, **sides).passed
    return found


def test_an_mlp_against_a_sequential_with_other_names_maps_by_order_kind_and_shape():
    found = _round_trip(Mlp(nnx.Rngs(0)), _sequential(), X)
    assert found.mapping == {"": "", "fc_in": "0", "fc_out": "2"} and not found.ambiguous
    assert [row.how for row in found.rows[1:]] == ["order+kind+shape"] * 2
    assert found.rename == [(r"^fc_in\.", "0."), (r"^fc_out\.", "2.")]
    assert re.search(r"fc_in\s+0\s+order\+kind\+shape\s+Linear\s+Linear", str(found))


class ConvNet(nnx.Module):
    def __init__(self, rngs):
        self.stem = nnx.Conv(3, 8, (3, 3), rngs=rngs)
        self.norm = nnx.BatchNorm(8, rngs=rngs)
        self.body = nnx.Conv(8, 8, (3, 3), rngs=rngs)
        self.head = nnx.Linear(8, 5, rngs=rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.norm(self.stem(x)))
        return self.head(jax.nn.relu(self.body(x)).mean(axis=(1, 2)))


class TorchConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        conv = lambda i: torch.nn.Conv2d(i, 8, 3, padding=1)  # noqa: E731
        self.features = torch.nn.Sequential(conv(3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), conv(8))
        self.classifier = torch.nn.Linear(8, 5)

    def forward(self, x):
        return self.classifier(torch.relu(self.features(x)).mean(dim=(2, 3)))


def test_a_conv_net_with_images_in_each_side_s_layout():
    x = np.random.default_rng(1).standard_normal((2, 6, 6, 3)).astype(np.float32)
    found = _round_trip(ConvNet(nnx.Rngs(0)), TorchConvNet(), x, torch_inputs=(x.transpose(0, 3, 1, 2),))
    assert found.mapping == {"": "", "stem": "features.0", "norm": "features.1", "body": "features.3",
                             "head": "classifier"}  # fmt: skip
    assert align(ConvNet(nnx.Rngs(0)), TorchConvNet(), x, channels_first="input").mapping == found.mapping


class Encoder(nnx.Module):
    def __init__(self, rngs):
        self.embed, self.proj = jaxlin.Linear(8, 16, rngs=rngs), jaxlin.Linear(16, 16, rngs=rngs)

    def __call__(self, x):
        return self.proj(jax.nn.relu(self.embed(x)))


class TorchEncoder(torch.nn.Module):
    """The same, with a dropout, an identity, a pooler the port leaves out and a head never called."""

    def __init__(self, pooler_out: int = 4, proj: str = "proj"):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(0.1), torch.nn.Identity())
        self.proj_name = proj
        setattr(self, proj, torch.nn.Linear(16, 16))
        self.pooler = torch.nn.Linear(16, pooler_out)
        self.lm_head = torch.nn.Linear(16, 100)

    def forward(self, x):
        hidden = getattr(self, self.proj_name)(torch.relu(self.embed(x)))
        return hidden, self.pooler(hidden)


def test_extra_torch_layers_are_skipped_and_listed():
    port, ref = Encoder(nnx.Rngs(0)), TorchEncoder()
    found = align(port, ref, X)
    assert found.mapping == {"": "", "embed": "embed.0", "proj": "proj"} and not found.ambiguous
    assert found.unmatched.torch == ["pooler", "lm_head"] and found.unmatched.jax == []
    assert "never called" in found.unmatched.reasons["torch:lm_head"]
    assert "torch only: lm_head (Linear (weight (100, 16), bias (100,)), never called" in str(found)
    copy_torch_to_jax(ref, port, rename=found.rename, strict=False)
    assert check(port, ref, X, rename=found.rename, strict=False).passed


def test_an_extra_layer_of_the_same_shape_is_decided_by_name_or_flagged_never_guessed():
    named = align(Encoder(nnx.Rngs(0)), TorchEncoder(pooler_out=16), X)
    assert named.mapping["proj"] == "proj" and named.rows[2].how == "by name" and not named.ambiguous
    found = align(Encoder(nnx.Rngs(0)), TorchEncoder(pooler_out=16, proj="dense"), X)
    (row,) = found.ambiguous
    assert (row.jax_path, row.torch_path, row.others) == ("proj", "dense", ["pooler"])
    assert "ambiguous: order does not tell (or pooler)" in str(found) and "1 ambiguous: check them" in str(
        found
    )


def test_a_layer_never_called_is_unmatched():
    found = align(Mlp(nnx.Rngs(0), head=True), _sequential(), X)
    assert found.unmatched.jax == ["unused"] and "never called" in found.unmatched.reasons["jax:unused"]


class Gated(nnx.Module):
    def __init__(self, rngs):
        self.gate, self.up = jaxlin.Linear(8, 16, rngs=rngs), jaxlin.Linear(8, 16, rngs=rngs)
        self.down = jaxlin.Linear(16, 8, rngs=rngs)

    def __call__(self, x):
        return self.down(jax.nn.silu(self.gate(x)) * self.up(x))


class TorchGated(torch.nn.Module):
    """Llama's names (w1 the gate, w3 the up projection), w3 called first."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.w1, self.w3, self.w2 = torch.nn.Linear(8, 16), torch.nn.Linear(8, 16), torch.nn.Linear(16, 8)

    def forward(self, x):
        up = self.w3(x)
        return self.w2(torch.nn.functional.silu(self.w1(x)) * up)


BY_HAND = {"gate.": "w1.", "up.": "w3.", "down.": "w2."}


def test_layers_fed_the_same_tensor_in_swapped_order_are_decided_by_values_when_loaded():
    port, ref = Gated(nnx.Rngs(0)), TorchGated()
    copy_torch_to_jax(ref, port, rename=BY_HAND)
    found = align(port, ref, X)
    assert found.mapping == {"": "", "gate": "w1", "up": "w3", "down": "w2"}
    assert [row.how for row in found.rows[1:]] == ["values", "values", "values"]
    fresh = Gated(nnx.Rngs(1))  # the rename found copies into a fresh port, and the check passes
    copy_torch_to_jax(ref, fresh, rename=found.rename)
    assert check(fresh, ref, X, rename=found.rename).passed


def test_layers_fed_the_same_tensor_in_swapped_order_are_ambiguous_without_the_weights():
    found = align(Gated(nnx.Rngs(0)), TorchGated(), X)
    assert {row.jax_path: row.others for row in found.ambiguous} == {"gate": ["w1"], "up": ["w3"]}
    assert found.mapping["down"] == "w2" and "ambiguous: same input, names do not tell" in str(found)
    given = align(Gated(nnx.Rngs(0)), TorchGated(), X, rename={"gate.": "w1."})
    assert given.mapping == {"": "", "gate": "w1", "up": "w3", "down": "w2"} and not given.ambiguous
    assert given.rows[1].how == "given"


def test_the_rename_round_trips_every_parameter_key():
    port, ref = ConvNet(nnx.Rngs(0)), TorchConvNet()
    x = np.zeros((1, 4, 4, 3), np.float32)
    found = align(port, ref, x, torch_inputs=(x.transpose(0, 3, 1, 2),))
    for path, target in found.mapping.items():
        assert renamed(path + ".kernel", found.rename).rsplit(".", 1)[0] == target or not path


def test_a_model_that_is_not_a_module_is_named():
    with pytest.raises(
        TypeError, match=r"align: the first argument must be the JAX model, a flax.nnx.Module"
    ):
        align(_sequential(), _sequential(), X)
    with pytest.raises(TypeError, match=r"align: the models are swapped"):
        align(_sequential(), Mlp(nnx.Rngs(0)), X)


def test_inputs_a_model_rejects_name_the_model_and_its_error():
    with pytest.raises(ModelCallError, match=r"the torch model torch.Sequential raised on the inputs .*mat1"):
        align(Mlp(nnx.Rngs(0)), _sequential(), X[:, :5])
    with pytest.raises(ModelCallError, match=r"the JAX model .*Mlp raised on the inputs"):
        align(Mlp(nnx.Rngs(0)), _sequential(), X[:, :5], torch_inputs=(X,))


def test_nothing_matched_names_what_each_side_has():
    torch.manual_seed(0)
    other = torch.nn.Sequential(torch.nn.Linear(8, 9), torch.nn.GELU(), torch.nn.Linear(9, 4))
    expected = (r"align: nothing matched between .*Mlp and torch.Sequential: no torch layer has the parameter "
                r"names and shapes a JAX layer expects \(expected e.g. fc_in nnx.Linear \(weight \(16, 8\), "
                r"bias \(16,\)\); torch has e.g. 0 Linear \(weight \(9, 8\), bias \(9,\)\)\)")  # fmt: skip
    with pytest.raises(ValueError, match=expected):
        align(Mlp(nnx.Rngs(0)), other, X)


class NoWeights(nnx.Module):
    def __call__(self, x):
        return jax.nn.relu(x)


def test_a_model_without_weights_is_said():
    with pytest.raises(ValueError, match=r"align: the JAX model .*NoWeights called no layer holding weights"):
        align(NoWeights(), _sequential(), X)


class Block(nnx.Module):
    """A residual block whose projection shortcut is called first (Hugging Face's ResNet calls it last)."""

    def __init__(self, rngs):
        conv = lambda i, o, k: nnx.Conv(i, o, (k, k), padding="SAME", use_bias=False, rngs=rngs)  # noqa: E731
        self.shortcut, self.shortcut_bn = conv(3, 8, 1), nnx.BatchNorm(8, rngs=rngs)
        self.conv1, self.bn1, self.conv2, self.bn2 = (
            conv(3, 8, 3),
            nnx.BatchNorm(8, rngs=rngs),
            conv(8, 8, 3),
            nnx.BatchNorm(8, rngs=rngs),
        )

    def __call__(self, x):
        residual = self.shortcut_bn(self.shortcut(x))
        return jax.nn.relu(self.bn2(self.conv2(jax.nn.relu(self.bn1(self.conv1(x))))) + residual)


class TorchBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)

        def unit(i, k):
            return torch.nn.Sequential(
                torch.nn.Conv2d(i, 8, k, padding=k // 2, bias=False), torch.nn.BatchNorm2d(8)
            )

        self.layer, self.shortcut = torch.nn.Sequential(unit(3, 3), torch.nn.ReLU(), unit(8, 3)), unit(3, 1)
        for norm in (m for m in self.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            torch.nn.init.uniform_(norm.weight, 0.5, 1.5)

    def forward(self, x):
        return torch.relu(self.layer(x) + self.shortcut(x))


def test_a_shortcut_called_in_another_order_is_aligned_and_round_trips():
    x = np.random.default_rng(2).standard_normal((2, 5, 5, 3)).astype(np.float32)
    found = _round_trip(Block(nnx.Rngs(0)), TorchBlock(), x, torch_inputs=(x.transpose(0, 3, 1, 2),))
    assert found.mapping == {"": "", "shortcut": "shortcut.0", "shortcut_bn": "shortcut.1", "conv1": "layer.0.0",
                             "bn1": "layer.0.1", "conv2": "layer.2.0", "bn2": "layer.2.1"}  # fmt: skip
    how = {row.jax_path: row.how for row in found.rows}
    assert not found.ambiguous and how["shortcut"] == how["conv1"] == "order+kind+shape", how
