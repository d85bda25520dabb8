"""The command line's vocabulary: selection by glob in registry order, compact listings, seeds, dtypes."""

import argparse

import pytest

import crosscheck.harness.cases
from crosscheck.cli import options


def test_case_selection_keeps_registry_order():
    names = list(crosscheck.harness.cases.all_cases())
    assert options.select_names("collapse,linear", names, option="--cases", noun="case") == [
        "linear",
        "collapse",
    ]
    assert len(options.select_names("pooled-*-masked-*", names, option="--cases", noun="case")) == 12
    assert options.compact_names(["a-x", "a-y", "b"]) == "a-{x,y}, b"


@pytest.mark.parametrize("text", ["-1", "4294967296", "x", "1.5"])
def test_a_seed_outside_what_numpy_and_torch_take_is_a_usage_error(text):
    with pytest.raises(argparse.ArgumentTypeError, match=f"invalid seed '{text}'"):
        options.seed(text)


def test_batch_sizes_are_parsed_without_being_expanded():
    sizes = options.batch_sizes("1-100000000,5")
    assert sizes.largest == 100_000_000 and sizes.ranges == ((1, 100_000_000), (5, 5))
