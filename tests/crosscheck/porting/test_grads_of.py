"""check(grads_of=...): only the named parameters' gradients are computed and compared — the same
numbers as the whole check's for those items — a tied group whole; locate judges each parameter's
gradient once, at the deepest row holding it, with it."""

import numpy as np
import pytest
from flax import nnx

from crosscheck import check, copy_torch_to_jax
from crosscheck.porting.evaluate import evaluate_jax, evaluate_torch, param_paths
from tests.crosscheck.porting.models import build_jax, build_torch
from tests.crosscheck.porting.test_trust import IDS, _tied_pair

X = np.random.default_rng(0).standard_normal((3, 5, 16))


def _pair():
    theirs, ours = build_torch(), build_jax()
    copy_torch_to_jax(theirs, ours)
    return ours, theirs


def _numbers(item):
    """The errors (each framework's against the truth, in both tiers): the same bits whatever is chosen.
    The relative rule's floor for parameter gradients is the RMS of those compared, so it is the
    chosen ones' own."""
    tiers = (item.same_function.metrics, item.rounding.metrics)
    return [{key: value for key, value in tier.items() if "error" in key} for tier in tiers]


def test_the_chosen_gradients_are_judged_with_the_same_numbers_as_the_whole_checks():
    ours, theirs = _pair()
    whole = {item.item: item for item in check(ours, theirs, X).items}
    chosen = check(ours, theirs, X, grads_of=["block.up.weight", "head.bias"])
    names = [item.item for item in chosen.items]
    assert names == ["output", "grads.block.up.weight", "grads.head.bias", "grads.input"]
    for item in chosen.items:
        assert _numbers(item) == _numbers(whole[item.item]), item.item
        assert item.passed


def test_no_parameter_chosen_leaves_the_output_and_the_input_gradient():
    ours, theirs = _pair()
    result = check(ours, theirs, X, grads_of=[])
    assert result.passed and [item.item for item in result.items] == ["output", "grads.input"]


def test_each_framework_differentiates_only_the_chosen_parameters():
    ours, theirs = _pair()
    x = X.astype(np.float32)
    cotangent = np.ones((3, 5, 4), np.float32)
    torch_grads = evaluate_torch(theirs, (x,), cotangent, params=frozenset({"head.weight"})).grads
    assert sorted(torch_grads) == ["head.weight", "input"]
    select = param_paths(ours, [ours.head.kernel])
    assert select == frozenset({("head", "kernel")})
    jax_grads = evaluate_jax(ours, (x,), cotangent, select=select).grads
    assert sorted(jax_grads) == ["head.weight", "input"]
    np.testing.assert_allclose(jax_grads["head.weight"], torch_grads["head.weight"], rtol=1e-5, atol=1e-5)


def test_a_tied_parameter_is_judged_whole_under_either_name():
    ours, theirs = _tied_pair(train=False)
    whole = {item.item: item for item in check(ours, theirs, IDS).items}
    for name in ("emb.weight", "out.weight"):
        result = check(ours, theirs, IDS, grads_of=[name])
        assert [item.item for item in result.items] == ["output", "grads.emb.weight"], name
        assert result.tied == {"emb.weight": ["out.weight"]}
        assert _numbers(result.items[1]) == _numbers(whole["grads.emb.weight"])


def test_a_float64_truth_with_parameters_left_undifferentiated_is_still_float64():
    ours, theirs = _pair()
    result = check(ours, theirs, X, grads_of=["head.bias"])
    assert result.passed and result.truth_notes == []
    assert all(item.same_function.passed for item in result.items)


@pytest.mark.parametrize("names", [["head.kernel"], ["block.up.weight", "nope"]])
def test_a_name_that_is_not_a_torch_parameter_is_an_error_naming_the_module_and_its_parameters(names):
    ours, theirs = _pair()
    with pytest.raises(ValueError, match=r"grads_of names '[a-z.]+', not a parameter of tests.TorchModel \(its "
                       r"parameters: 'block.down.bias', .*\)"):  # fmt: skip
        check(ours, theirs, X, grads_of=names)


def test_the_nnx_filter_sees_list_items_at_their_index():
    class Stack(nnx.Module):
        def __init__(self):
            self.layers = nnx.List([nnx.Linear(2, 2, rngs=nnx.Rngs(i)) for i in range(2)])

    stack = Stack()
    assert param_paths(stack, [stack.layers[1].bias]) == frozenset({("layers", 1, "bias")})
