"""Names as converters write them: regex rules on module paths, and mismatch messages a person can read."""

import re

import numpy as np
import pytest
import torch
from flax import nnx

from crosscheck import WeightsError, copy_torch_to_jax
from crosscheck.weights.tree import renamed

RULES = [
    (r"^layer(\d)\.blocks\.(\d+)\.conv(\d)\.", r"stages.\1.layers.\2.layer.\3.conv."),
    (r"^stem\.", "embedder."),
]


def test_regex_rules_map_module_paths_first_match_wins_leaf_kept():
    assert renamed("layer0.blocks.1.conv2.kernel", RULES) == "stages.0.layers.1.layer.2.conv.kernel"
    assert renamed("stem.conv.weight", RULES) == "embedder.conv.weight"
    assert renamed("stem.", RULES) == "embedder."  # a module path, as locate pairs modules
    assert renamed("head.weight", RULES) == "head.weight"  # no rule matches: unchanged
    assert renamed("stem.x.", [(r"^stem\.", "a."), (r"^stem\.x\.", "b.")]) == "a.x."  # the first wins


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            [("^a", "b", "c")],
            r"rename[0]: expected a (regex, replacement) pair of strings, got ('^a', 'b', 'c')",
        ),
        ([("(", "b")], r"rename[0]: '(' is not a regular expression"),
    ],
)
def test_a_bad_rule_is_named(rules, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        renamed("a.b.", rules)


class Ours(nnx.Module):
    def __init__(self):
        self.stem = nnx.Linear(3, 4, rngs=nnx.Rngs(0))
        self.layers = nnx.List([nnx.Linear(4, 4, rngs=nnx.Rngs(i)) for i in range(12)])


class Theirs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedder = torch.nn.Linear(3, 4)
        self.blocks = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(12)])


def test_a_list_of_regex_rules_copies_a_model_whose_names_differ():
    theirs, ours = Theirs(), Ours()
    copy_torch_to_jax(theirs, ours, rename=[(r"^stem\.", "embedder."), (r"^layers\.(\d+)\.", r"blocks.\1.")])
    assert np.array_equal(
        np.asarray(ours.layers[11].kernel[...]), theirs.blocks[11].weight.detach().numpy().T
    )


def test_a_mismatch_lists_ten_keys_then_counts_and_suggests_each_missing_keys_counterpart():
    with pytest.raises(WeightsError) as raised:
        copy_torch_to_jax(Theirs(), Ours())
    message = str(raised.value)
    assert (
        "missing keys 'stem.weight' (perhaps 'embedder.weight': same shape), 'stem.bias' (perhaps" in message
    )
    assert "and 16 more and unexpected keys" in message  # 26 missing: 10 shown
    assert "'layers.0.weight' (perhaps 'blocks.0.weight': same shape)" in message
    assert (
        "rename= maps names (a dict of path pieces, a list of (regex, replacement) pairs or a function)"
        in message
    )
    assert len(message) < 2000
