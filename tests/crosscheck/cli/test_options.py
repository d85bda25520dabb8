"""The command line's vocabulary: selection by glob in registry order, compact listings, seeds, dtypes."""

import argparse

import pytest

import crosscheck.suite.cases
from crosscheck.cli import main as cli_main
from crosscheck.cli import options


def test_case_selection_keeps_registry_order():
    names = list(crosscheck.suite.cases.all_cases())
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


@pytest.mark.parametrize("text", ["²", "١٢", "1²"])
def test_numbers_are_ascii_digits_only(text):
    for parse, noun in ((options.count, "count"), (options.seed, "seed")):
        with pytest.raises(argparse.ArgumentTypeError, match=f"invalid {noun} '{text}'"):
            parse(text)


@pytest.mark.parametrize("command, text, message", [
    ("run", "data=²", "argument --mesh: invalid mesh 'data=²': the size '²' of axis 'data' is not a whole number of "
     "devices (ASCII digits, e.g. data=2,heads=4)"),
    ("study", "heads=٤", "argument --mesh: invalid mesh 'heads=٤': the size '٤' of axis 'heads'"),
    ("run", "data=2,data=2", "argument --mesh: 'data=2,data=2' must name one or more different axes, e.g. data=2,heads=4"),
])  # fmt: skip
def test_a_mesh_size_in_other_digits_is_refused_in_one_line(command, text, message, tmp_path, capsys):
    assert cli_main([command, "--mesh", text, "--out", str(tmp_path / "out")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"crosscheck {command}: error: {message}" if message.endswith(")") else message in last


def test_batch_sizes_in_other_digits_are_refused_in_one_line(tmp_path, capsys):
    assert cli_main(["batch-probe", "--batch-sizes", "1-²", "--out", str(tmp_path)]) == 2
    assert "argument --batch-sizes: invalid batch sizes '1-²' (ASCII digits" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["run", "--cases", "nonesuch"],
    ["batch-probe", "--modules", "nonesuch"],
    ["locate", "--jax", "nonesuch:build", "--torch", "nonesuch:build", "--input-shape", "2,3"],
    ["train", "--batch", "5000"],
])  # fmt: skip
def test_a_subcommands_own_usage_errors_show_its_usage(argv, tmp_path, capsys):
    assert cli_main([*argv, "--out", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith(f"usage: crosscheck {argv[0]} [-h]")
    assert lines[-1].startswith(f"crosscheck {argv[0]}: error: ")
