"""``crosscheck locate``: a port built from module:factory pairs, its table and report, and exit
statuses 0 (all layers pass), 1 (one fails) and 2 (a usage error)."""

import json

import pytest

from crosscheck.cli import main as cli_main

FACTORIES = ["--torch", "tests.crosscheck.harness.models:build_torch", "--input-shape", "3,5,16"]


def test_an_honest_port_exits_0_and_writes_its_report(tmp_path, capsys):
    argv = [
        "locate",
        "--jax",
        "tests.crosscheck.harness.models:build_jax",
        *FACTORIES,
        "--out",
        str(tmp_path),
    ]
    assert cli_main(argv) == 0
    assert "6 layers: 0 failed; first failure: none" in capsys.readouterr().out
    data = json.loads((tmp_path / "locate.json").read_text())
    assert data["locate"]["passed"] and data["locate"]["torch_only"] == ["block.act"]
    assert "First failure: **none**" in (tmp_path / "locate.md").read_text()


def test_a_diverging_port_exits_1_and_names_the_layer(tmp_path, capsys):
    argv = [
        "locate",
        "--jax",
        "tests.crosscheck.harness.models:build_jax_tanh_gelu",
        *FACTORIES,
        "--out",
        str(tmp_path),
    ]
    assert cli_main(argv) == 1
    assert "first failure: block ·" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--jax", "nonesuch:build"], "--jax nonesuch:build: cannot build the model (ModuleNotFoundError"),
    (["--jax", "tests.crosscheck.harness.models"], "expected MODULE:FACTORY, e.g. my_port:build"),
    (["--jax", "tests.crosscheck.harness.models:build_jax", "--input", "normal:0,3"], "invalid input 'normal:0,3'"),
    (["--jax", "tests.crosscheck.harness.models:build_jax", "--input", "tokens:2,3"], "invalid input 'tokens:2,3'"),
    (["--jax", "tests.crosscheck.harness.models:build_jax", "--rename", "x"], "invalid rename 'x'"),
])  # fmt: skip
def test_usage_errors_exit_2_with_one_line(argv, message, tmp_path, capsys):
    rest = ["--torch", "tests.crosscheck.harness.models:build_torch", "--input-shape", "3,5,16"]
    assert cli_main(["locate", *argv, *rest, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_weights_that_do_not_fit_exit_2(tmp_path, capsys):
    argv = ["locate", "--jax", "tests.crosscheck.harness.models:build_jax", "--torch", "tests.crosscheck.harness.models:build_torch",
            "--input-shape", "3,5,16", "--rename", "block.=trunk.", "--out", str(tmp_path)]  # fmt: skip
    assert cli_main(argv) == 2
    assert "the weights do not fit" in capsys.readouterr().err


def test_the_bert_port_from_the_command_line(tmp_path, capsys):
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    argv = ["locate", "--jax", "tests.examples.factories:bert_port", "--torch", "tests.examples.factories:bert_reference",
            "--rename", "self_attention.=self.", "--input", "tokens=100:2,16", "--input", "mask:2,16", "--out", str(tmp_path)]  # fmt: skip
    assert cli_main(argv) == 0
    assert "35 layers: 0 failed" in capsys.readouterr().out
