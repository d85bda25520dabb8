"""check and locate with prefix= (a submodule of a whole torch model), strict=False (keys with no
counterpart listed, not fatal) and ignore= (regular expressions for keys left out)."""

import re

import numpy as np
import pytest
import torch
from flax import nnx

import jaxlin
from crosscheck import WeightsError, check, copy_torch_to_jax
from crosscheck.porting.locating import locate


def _normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


class Body(nnx.Module):
    def __init__(self, rngs):
        self.dense = nnx.Linear(8, 6, rngs=rngs)
        self.out = nnx.Linear(6, 4, rngs=rngs)

    def __call__(self, x):
        return self.out(nnx.relu(self.dense(x)))


def _torch_whole():
    """A torch model whose ``body`` is the JAX port; its ``head`` is not ported."""
    torch.manual_seed(0)
    body = torch.nn.Sequential()
    body.add_module("dense", torch.nn.Linear(8, 6))
    body.add_module("act", torch.nn.ReLU())
    body.add_module("out", torch.nn.Linear(6, 4))
    whole = torch.nn.Sequential()
    whole.add_module("body", body)
    whole.add_module("head", torch.nn.Linear(4, 2))
    return whole


class WithPooler(torch.nn.Module):
    """A Linear and a pooler the forward never calls (as Hugging Face models hold one)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.dense = torch.nn.Linear(8, 4)
        self.pooler = torch.nn.Linear(4, 4)

    def forward(self, x):
        return self.dense(x)


class Dense(nnx.Module):
    def __init__(self, rngs):
        self.dense = nnx.Linear(8, 4, rngs=rngs)

    def __call__(self, x):
        return self.dense(x)


def test_prefix_checks_a_submodule_of_a_whole_torch_model():
    whole, ours = _torch_whole(), Body(nnx.Rngs(0))
    copy_torch_to_jax(whole, ours, prefix="body.")
    result = check(ours, whole, _normal(3, 8), prefix="body.")
    assert result.passed, "\n".join(result.failures())
    assert result.ignored == [] and result.missing == []
    assert "grads.dense.weight" in [item.item for item in result.items]


def test_a_prefix_with_no_submodule_names_the_children():
    whole, ours = _torch_whole(), Body(nnx.Rngs(0))
    with pytest.raises(
        WeightsError, match=r"check: prefix 'bdy\.': .* no submodule 'bdy'.*'body\.', 'head\.'"
    ):
        check(ours, whole, _normal(3, 8), prefix="bdy.")


def test_strict_mismatch_suggests_strict_ignore_and_the_prefix_that_fits():
    whole, ours = _torch_whole(), Body(nnx.Rngs(0))
    with pytest.raises(WeightsError) as raised:
        check(ours, whole, _normal(3, 8))
    message = str(raised.value)
    assert "missing keys 'dense.weight' (perhaps 'body.dense.weight': same shape)" in message
    assert message.endswith(
        "; strict=False lists keys with no counterpart; ignore=[regex, ...] leaves keys out; "
        "prefix='body.' takes the torch model's submodule 'body'"
    )


def test_a_zero_bias_on_the_jax_side_only_passes_with_strict_false():
    torch.manual_seed(0)
    theirs, ours = torch.nn.Linear(8, 4, bias=False), jaxlin.Linear(8, 4, rngs=nnx.Rngs(0))
    copied = copy_torch_to_jax(theirs, ours, strict=False)
    assert copied.missing == ["bias"]
    ours.bias[...] = np.zeros(4, np.float32)
    with pytest.raises(
        WeightsError, match=r"missing key 'bias'.*strict=False lists keys with no counterpart"
    ):
        check(ours, theirs, _normal(3, 8))
    result = check(ours, theirs, _normal(3, 8), strict=False)
    assert result.passed, "\n".join(result.failures())
    assert result.missing == ["bias"] and result.ignored == []
    assert [item.item for item in result.items] == ["output", "grads.weight", "grads.input"]


def test_a_zero_bias_on_the_torch_side_only_is_listed_as_ignored():
    torch.manual_seed(0)
    theirs, ours = torch.nn.Linear(8, 4), nnx.Linear(8, 4, use_bias=False, rngs=nnx.Rngs(0))
    with torch.no_grad():
        theirs.bias.zero_()
    assert copy_torch_to_jax(theirs, ours, strict=False).ignored == ["bias"]
    result = check(ours, theirs, _normal(3, 8), strict=False)
    assert result.passed, "\n".join(result.failures())
    assert result.ignored == ["bias"] and "grads.bias" not in [item.item for item in result.items]


def test_a_frozen_parameter_stays_listed_as_frozen():
    torch.manual_seed(0)
    theirs, ours = torch.nn.Linear(8, 4, bias=False), jaxlin.Linear(8, 4, rngs=nnx.Rngs(0))
    theirs.weight.requires_grad_(False)
    copy_torch_to_jax(theirs, ours, strict=False)
    ours.bias[...] = np.zeros(4, np.float32)
    result = check(ours, theirs, _normal(3, 8), strict=False)
    assert result.passed and result.frozen == ["weight"] and result.missing == ["bias"]


def test_num_batches_tracked_is_ignored_and_statistics_are_never_gradients():
    torch.manual_seed(0)
    theirs = torch.nn.BatchNorm1d(4).eval()
    with torch.no_grad():
        theirs.running_mean.uniform_(-1, 1)
        theirs.running_var.uniform_(0.5, 2)
    ours = nnx.BatchNorm(4, use_running_average=True, momentum=0.9, epsilon=1e-5, rngs=nnx.Rngs(0))
    copy_torch_to_jax(theirs, ours)
    for ignore in (None, [r"num_batches_tracked$"]):
        result = check(ours, theirs, _normal(5, 4), ignore=ignore)
        assert result.passed, "\n".join(result.failures())
        assert result.ignored == ["num_batches_tracked"]
        assert [item.item for item in result.items] == ["output", "grads.weight", "grads.bias", "grads.input"]


def test_ignore_leaves_out_keys_the_jax_port_does_not_hold():
    theirs, ours = WithPooler(), Dense(nnx.Rngs(0))
    copy_torch_to_jax(theirs, ours, ignore=[r"^pooler\."])
    result = check(ours, theirs, _normal(3, 8), ignore=[r"^pooler\."])
    assert result.passed, "\n".join(result.failures())
    assert result.ignored == ["pooler.weight", "pooler.bias"] and result.missing == []


def test_an_ignore_pattern_that_finds_no_key_is_an_error():
    theirs, ours = WithPooler(), Dense(nnx.Rngs(0))
    message = "check: ignore pattern '^poler\\\\.' found no key of either model; keys are named as in"
    with pytest.raises(WeightsError, match=re.escape(message)):
        check(ours, theirs, _normal(3, 8), ignore=[r"^pooler\.", r"^poler\."])


def test_an_ignore_pattern_that_is_no_regular_expression_is_named():
    theirs, ours = WithPooler(), Dense(nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"check: ignore\[0\] '\(pooler' is not a regular expression"):
        check(ours, theirs, _normal(3, 8), ignore=["(pooler"])
    with pytest.raises(ValueError, match=r"ignore\[0\] must be a regular expression \(a str\), got 3"):
        check(ours, theirs, _normal(3, 8), ignore=[3])


def test_ignore_names_keys_with_the_prefix():
    whole, ours = _torch_whole(), Body(nnx.Rngs(0))
    copy_torch_to_jax(whole, ours, prefix="body.")
    ours.out.bias[...] = np.zeros(4, np.float32)  # now differs from torch's; left out of the comparison
    result = check(ours, whole, _normal(3, 8), prefix="body.", ignore=[r"^body\.out\.bias$"], grads=False)
    assert result.ignored == ["body.out.bias"] and not result.differing_weights


def test_locate_takes_a_prefix_and_lists_what_has_no_counterpart():
    whole, ours = _torch_whole(), Body(nnx.Rngs(0))
    copy_torch_to_jax(whole, ours, prefix="body.")
    result = locate(ours, whole, _normal(3, 8), prefix="body.")
    assert result.first_failure is None, str(result)
    assert [layer.path for layer in result.layers] == ["body", "body.dense", "body.out"]
    assert result.torch_only == ["body.act"]


def test_locate_with_strict_false_and_ignore():
    torch.manual_seed(0)
    theirs, ours = torch.nn.Linear(8, 4, bias=False), jaxlin.Linear(8, 4, rngs=nnx.Rngs(0))
    copy_torch_to_jax(theirs, ours, strict=False)
    ours.bias[...] = np.zeros(4, np.float32)
    with pytest.raises(WeightsError, match=r"missing key 'bias'"):
        locate(ours, theirs, _normal(3, 8))
    result = locate(ours, theirs, _normal(3, 8), strict=False, grads=True)
    assert result.passed and result.missing == ["bias"], str(result)
    pooled, dense = WithPooler(), Dense(nnx.Rngs(0))
    copy_torch_to_jax(pooled, dense, ignore=r"^pooler\.")
    result = locate(dense, pooled, _normal(3, 8), ignore=r"^pooler\.")
    assert result.passed and result.ignored == ["pooler.weight", "pooler.bias"], str(result)
    with pytest.raises(WeightsError, match=r"locate: ignore pattern 'nothing' found no key"):
        locate(dense, pooled, _normal(3, 8), ignore=["nothing"])


def jax_block():
    """A factory for ``crosscheck locate --jax``: the port of ``build_torch()``'s ``block`` alone."""
    from tests.crosscheck.porting.models import JaxBlock

    return JaxBlock(nnx.Rngs(0))


def test_the_locate_command_takes_prefix_ignore_and_no_strict(tmp_path, capsys):
    from crosscheck.cli import main as cli_main

    argv = ["locate", "--jax", "tests.crosscheck.porting.test_strict:jax_block", "--torch",
            "tests.crosscheck.porting.models:build_torch", "--input-shape", "3,5,16", "--out", str(tmp_path)]  # fmt: skip
    assert cli_main([*argv, "--prefix", "block.", "--ignore", r"norm\.bias$", "--no-strict"]) == 0
    assert "4 layers: 0 failed; first failure: none" in capsys.readouterr().out
    assert cli_main([*argv, "--prefix", "blok."]) == 2
    assert "--prefix blok.: locate: prefix 'blok.': the torch model TorchModel has no submodule" in (
        capsys.readouterr().err
    )
