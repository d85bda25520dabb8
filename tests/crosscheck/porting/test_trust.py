"""check and locate under unusual but legal use: verdicts that can be believed, models left exactly as
they were, and every model either framework can hold handled with a clear word."""

import dataclasses

import jax
import numpy as np
import pytest
import torch
from flax import nnx

import jaxlin
import torch_ref
from crosscheck import check, copy_torch_to_jax, locate
from crosscheck.porting.evaluate import ModelCallError
from crosscheck.porting.outputs import OutputTreeError
from crosscheck.weights.tree import submodules

VOCAB, WIDTH = 11, 6
IDS = np.array([3, 1, 4, 1, 5, 9, 2, 6])


class TorchTied(torch.nn.Module):
    """Embedding, Linear with a frozen bias, BatchNorm, Dropout, and an output tied to the embedding."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(VOCAB, WIDTH)
        self.lin = torch.nn.Linear(WIDTH, WIDTH)
        self.bn = torch.nn.BatchNorm1d(WIDTH)
        self.drop = torch.nn.Dropout(0.3)
        self.out = torch.nn.Linear(WIDTH, VOCAB, bias=False)
        self.out.weight = self.emb.weight
        self.lin.bias.requires_grad_(False)
        with torch.no_grad():
            self.bn.running_mean.normal_()
            self.bn.running_var.uniform_(0.5, 2.0)

    def forward(self, ids):
        return self.out(self.drop(self.bn(self.lin(self.emb(ids)))))


class JaxTied(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.emb = nnx.Embed(VOCAB, WIDTH, rngs=rngs)
        self.lin = nnx.Linear(WIDTH, WIDTH, rngs=rngs)
        self.bn = nnx.BatchNorm(WIDTH, momentum=0.9, rngs=rngs)
        self.drop = nnx.Dropout(0.3, rngs=rngs)
        self.out = nnx.Linear(WIDTH, VOCAB, use_bias=False, rngs=rngs)

    def __call__(self, ids):
        return self.out(self.drop(self.bn(self.lin(self.emb(ids)))))


def _tied_pair(train: bool):
    torch.manual_seed(0)
    theirs, ours = TorchTied(), JaxTied(nnx.Rngs(0))
    copy_torch_to_jax(theirs, ours)
    theirs.train(train)
    ours.train() if train else ours.eval()
    return ours, theirs


def _torch_snapshot(module):
    bits = lambda t: None if t is None else t.detach().clone()  # noqa: E731
    return {
        "state": {k: bits(v) for k, v in module.state_dict(keep_vars=True).items()},
        "grad": {k: bits(p.grad) for k, p in module.named_parameters(remove_duplicate=False)},
        "requires_grad": {k: p.requires_grad for k, p in module.named_parameters(remove_duplicate=False)},
        "training": {k: m.training for k, m in module.named_modules()},
        "rng": torch.get_rng_state(),
        "tied": module.out.weight is module.emb.weight,
    }


def _same_torch(before, after):
    for part in ("state", "grad"):
        for key, value in before[part].items():
            other = after[part][key]
            assert (value is None) == (other is None), key
            if value is not None:
                assert value.dtype == other.dtype and value.numpy().tobytes() == other.numpy().tobytes(), key
    for part in ("requires_grad", "training", "tied"):
        assert before[part] == after[part], part
    assert torch.equal(before["rng"], after["rng"])


def _jax_snapshot(module):
    values = {}
    for path, variable in nnx.to_flat_state(nnx.state(module)):
        value = variable[...]
        is_key = jax.numpy.issubdtype(value.dtype, jax.dtypes.prng_key)
        values[path] = np.asarray(jax.random.key_data(value) if is_key else value)
    flags = {(path, flag): getattr(layer, flag) for path, layer in submodules(module)
             for flag in ("deterministic", "use_running_average") if hasattr(layer, flag)}  # fmt: skip
    return values, flags


def _same_jax(before, after):
    (values_before, flags_before), (values_after, flags_after) = before, after
    assert flags_before == flags_after
    assert values_before.keys() == values_after.keys()
    for path, value in values_before.items():
        assert value.dtype == values_after[path].dtype and value.tobytes() == values_after[path].tobytes(), (
            path
        )


# ---- B: both models are left exactly as they were ------------------------------------------


@pytest.mark.slow  # deselect with -m "not slow" (README)
@pytest.mark.parametrize("train", [True, False], ids=["training-mode", "inference-mode"])
@pytest.mark.parametrize("call", ["check", "check-no-grads", "locate", "locate-grads"])
def test_check_and_locate_leave_both_models_bitwise_as_they_were(call, train):
    ours, theirs = _tied_pair(train)
    theirs.eval()  # the statistics stay those copied into the JAX model
    theirs(torch.as_tensor(IDS)).square().sum().backward()  # the user's own .grad: never read nor overwritten
    theirs.train(train)
    before = _torch_snapshot(theirs), _jax_snapshot(ours)
    if call.startswith("check"):
        result = check(ours, theirs, IDS, grads=call == "check")
    else:
        result = locate(ours, theirs, IDS, grads=call == "locate-grads")
    assert result.passed, str(result)
    _same_torch(before[0], _torch_snapshot(theirs))
    _same_jax(before[1], _jax_snapshot(ours))
    assert result.mode == "inference"
    assert bool(result.switched) == train  # the result says which layers it switched


# ---- A: verdicts that can be believed -------------------------------------------------------


def test_tied_weights_are_one_item_and_frozen_parameters_are_listed_not_compared():
    ours, theirs = _tied_pair(train=False)
    result = check(ours, theirs, IDS)
    assert result.passed, "\n".join(result.failures())
    items = [item.item for item in result.items]
    assert items[0] == "output"
    assert sorted(items[1:]) == ["grads.bn.bias", "grads.bn.weight", "grads.emb.weight", "grads.lin.weight"]
    assert result.tied == {"emb.weight": ["out.weight"]} and result.frozen == ["lin.bias"]
    assert result.ignored == ["bn.num_batches_tracked"]  # no Flax counterpart: listed
    assert not any("running" in item for item in items)  # statistics are never gradient items


def test_frozen_torch_parameters_are_never_compared_as_zero_gradients():
    theirs = torch_ref.Linear(5, 3)
    theirs.weight.requires_grad_(False)
    ours = jaxlin.Linear(5, 3, rngs=nnx.Rngs(0))
    copy_torch_to_jax(theirs, ours)
    result = check(ours, theirs, np.random.default_rng(0).standard_normal((4, 5)))
    assert result.passed and result.frozen == ["weight"]
    assert [item.item for item in result.items] == ["output", "grads.bias", "grads.input"]


def test_weights_never_copied_fail_and_say_so():
    theirs, ours = torch_ref.Linear(5, 3), jaxlin.Linear(5, 3, rngs=nnx.Rngs(0))
    result = check(ours, theirs, np.ones((2, 5)))
    assert not result.passed and result.problems()[0] == "weights differ"
    message = result.failures()[0]
    assert "kernel differs from weight by up to" in message
    assert "copy them first with copy_torch_to_jax(torch_model, jax_model)" in message


def test_an_edited_call_never_reuses_the_compiled_program():
    class Port(nnx.Module):
        def __init__(self, rngs):
            self.dense = nnx.Linear(4, 3, rngs=rngs)

        def __call__(self, x):
            return self.dense(x)

    class Reference(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = torch.nn.Linear(4, 3)

        def forward(self, x):
            return self.dense(x)

    theirs, port = Reference(), Port(nnx.Rngs(0))
    copy_torch_to_jax(theirs, port)
    x = np.random.default_rng(0).standard_normal((2, 4))
    assert check(port, theirs, x).passed
    original = Port.__call__
    Port.__call__ = lambda self, x: self.dense(x) * 1.001  # the notebook edit
    try:
        assert not check(port, theirs, x).passed  # the same instance
        fresh = Port(nnx.Rngs(1))
        copy_torch_to_jax(theirs, fresh)
        assert not check(fresh, theirs, x).passed  # a fresh one
    finally:
        Port.__call__ = original
    assert check(port, theirs, x).passed


# ---- C: models check must handle --------------------------------------------------------------


def test_a_model_holding_rngs_is_checked():
    class WithRngs(nnx.Module):
        def __init__(self):
            self.rngs = nnx.Rngs(0)
            self.dense = nnx.Linear(4, 3, rngs=self.rngs)
            self.drop = nnx.Dropout(0.5, deterministic=True, rngs=self.rngs)

        def __call__(self, x):
            return self.drop(self.dense(x))

    theirs, ours = torch.nn.Sequential(), WithRngs()
    theirs.dense = torch.nn.Linear(4, 3)
    copy_torch_to_jax(theirs, ours)
    assert check(ours, theirs, np.ones((2, 4))).passed


def test_a_model_without_parameters_is_checked_in_its_inputs_dtype():
    class Relu(nnx.Module):
        def __call__(self, x):
            return nnx.relu(x)

    result = check(
        Relu(), torch.nn.ReLU(), np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    )
    assert result.passed and result.dtype == "float32"
    assert [item.item for item in result.items] == ["output", "grads.input"]


@dataclasses.dataclass
class Pair:
    hidden: object
    count: object


class _Twin(torch.nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.dense = torch.nn.Linear(4, 3)
        self.shape = shape

    def forward(self, x):
        y = self.dense(x)
        if self.shape == "none":
            return None
        if self.shape == "tuple":
            return (None, y)
        return Pair(y, torch.argmax(y, -1))


class _Port(nnx.Module):
    def __init__(self, shape):
        self.dense = nnx.Linear(4, 3, rngs=nnx.Rngs(0))
        self.shape = shape

    def __call__(self, x):
        y = self.dense(x)
        if self.shape == "none":
            return None
        if self.shape == "tuple":
            return (None, y)
        if self.shape == "string":
            return {"y": y, "name": "dense"}
        return Pair(y, y.argmax(-1))


@pytest.mark.parametrize("shape", ["tuple", "dataclass"])
def test_outputs_are_trees_none_skipped_integers_exact(shape):
    theirs, ours = _Twin(shape), _Port(shape)
    copy_torch_to_jax(theirs, ours)
    result = check(ours, theirs, np.random.default_rng(0).standard_normal((5, 4)))
    assert result.passed, "\n".join(result.failures())
    items = {item.item: item.rule for item in result.items}
    if shape == "tuple":
        assert items["output[1]"] == "relative"  # a container: no analytic bound
    else:
        assert items["output.hidden"] == "relative" and items["output.count"] == "exact"
    assert "grads.dense.weight" in items


def test_an_output_of_none_has_nothing_to_compare_and_says_so():
    theirs, ours = _Twin("none"), _Port("none")
    copy_torch_to_jax(theirs, ours)
    result = check(ours, theirs, np.ones((2, 4)))
    assert result.items == [] and "no floating output: gradients not compared" in result.notes


def test_an_output_holding_a_string_is_a_clear_error_naming_the_module():
    theirs, ours = _Twin("tuple"), _Port("string")
    copy_torch_to_jax(theirs, ours)
    with pytest.raises(
        OutputTreeError, match=r"_Port.*: the output holds a str at output\.name; check compares"
    ):
        check(ours, theirs, np.ones((2, 4)))


def test_swapped_models_say_which_argument_is_which():
    theirs, ours = torch_ref.Linear(4, 3), jaxlin.Linear(4, 3, rngs=nnx.Rngs(0))
    for function in (check, locate):
        with pytest.raises(
            TypeError, match=rf"{function.__name__}: the models are swapped: the first argument"
        ):
            function(theirs, ours, np.ones((2, 4)))
    with pytest.raises(TypeError, match=r"check: the second argument must be the torch model"):
        check(ours, ours, np.ones((2, 4)))


@pytest.mark.parametrize("function", [check, locate])
def test_inputs_a_model_rejects_are_a_model_call_error_in_one_line(function):
    theirs, ours = torch_ref.Linear(4, 3), jaxlin.Linear(4, 3, rngs=nnx.Rngs(0))
    copy_torch_to_jax(theirs, ours)
    with pytest.raises(
        ModelCallError, match=r"the (JAX|torch) model .*Linear.* raised on the inputs it was given \("
    ):
        function(ours, theirs, np.ones((2, 5)))
