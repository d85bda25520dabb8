"""``crosscheck locate``: a port built from module:factory pairs, its table and report, and exit
statuses 0 (all layers pass), 1 (one fails) and 2 (a usage error: one line naming the option, what was
expected and what was given, under the locate subcommand's usage)."""

import argparse
import json

import pytest
import torch

from crosscheck.cli import factories
from crosscheck.cli import locate as locate_cli
from crosscheck.cli import main as cli_main
from tests.crosscheck.cli.factories import Counter

MODELS = "tests.crosscheck.porting.models"
WRONG = "tests.crosscheck.cli.factories"

FACTORIES = ["--torch", "tests.crosscheck.porting.models:build_torch", "--input-shape", "3,5,16"]


def test_an_honest_port_exits_0_and_writes_its_report(tmp_path, capsys):
    argv = [
        "locate",
        "--jax",
        "tests.crosscheck.porting.models:build_jax",
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
        "tests.crosscheck.porting.models:build_jax_tanh_gelu",
        *FACTORIES,
        "--out",
        str(tmp_path),
    ]
    assert cli_main(argv) == 1
    assert "first failure: block ·" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--jax", "nonesuch:build"], "--jax nonesuch:build: cannot build the model (ModuleNotFoundError"),
    (["--jax", "tests.crosscheck.porting.models"], "expected MODULE:FACTORY, e.g. my_port:build"),
    (["--jax", "tests.crosscheck.porting.models:build_jax", "--input", "normal:0,3"], "invalid input 'normal:0,3'"),
    (["--jax", "tests.crosscheck.porting.models:build_jax", "--input", "tokens:2,3"], "invalid input 'tokens:2,3'"),
    (["--jax", "tests.crosscheck.porting.models:build_jax", "--rename", "x"], "invalid rename 'x'"),
])  # fmt: skip
def test_usage_errors_exit_2_with_one_line(argv, message, tmp_path, capsys):
    rest = ["--torch", "tests.crosscheck.porting.models:build_torch", "--input-shape", "3,5,16"]
    assert cli_main(["locate", *argv, *rest, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def _usage_error(argv, tmp_path, capsys) -> str:
    """Run ``crosscheck locate argv``, expect exit 2, and return its one error line."""
    assert cli_main(["locate", *argv, "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and "Traceback" not in captured.err
    assert lines[0].startswith("usage: crosscheck locate ") and lines[-1].startswith(
        "crosscheck locate: error: "
    )
    assert not (tmp_path / "locate.json").exists()
    return lines[-1]


@pytest.mark.parametrize("jax, torch_, message", [
    (f"{MODELS}:build_jax", f"{WRONG}:returns_none",
     f"--torch {WRONG}:returns_none returned None, expected a torch.nn.Module "
     "(a factory is a zero-argument callable returning the model)"),
    (f"{WRONG}:returns_a_function", f"{MODELS}:build_torch",
     f"--jax {WRONG}:returns_a_function returned the function plain, expected a flax.nnx.Module"),
    (f"{WRONG}:returns_none", f"{MODELS}:build_torch", f"--jax {WRONG}:returns_none returned None, expected a flax.nnx.Module"),
    (f"{MODELS}:build_jax", f"{MODELS}:build_jax", f"--torch {MODELS}:build_jax returned a JaxModel, expected a torch.nn.Module"),
    (f"{WRONG}:exits_0", f"{MODELS}:build_torch", f"--jax {WRONG}:exits_0: cannot build the model (SystemExit: 0)"),
    ("builtins:exit", f"{MODELS}:build_torch", "--jax builtins:exit: cannot build the model (SystemExit: None)"),
    (f"{WRONG}:raises_multiline", f"{MODELS}:build_torch",
     f"--jax {WRONG}:raises_multiline: cannot build the model (RuntimeError: cannot load the checkpoint)"),
])  # fmt: skip
def test_a_factory_that_exits_raises_or_returns_no_model_is_a_usage_error(
    jax, torch_, message, tmp_path, capsys
):
    line = _usage_error(["--jax", jax, "--torch", torch_, "--input-shape", "3,5,16"], tmp_path, capsys)
    assert line.endswith(message) if message.endswith(")") else message in line


@pytest.mark.parametrize("inputs, message", [
    (["--input", "tokens=0:2,3"], "argument --input: invalid input 'tokens=0:2,3' (a vocabulary of 1 to 2147483648 token ids for tokens=VOCAB; got 0)"),
    (["--input", "mask:5"], "argument --input: invalid input 'mask:5' (a mask needs (batch, seq) or more axes; got 1 axis)"),
    (["--input", "normal:100000,100000,100000"],
     "argument --input: invalid input 'normal:100000,100000,100000' (1,000,000,000,000,000 elements take 7.1 PiB; "
     "the inputs may take at most 1.0 GiB together)"),
    (["--input-shape", "40000,4000"], "argument --input-shape: invalid shape '40000,4000' (160,000,000 elements take 1.2 GiB"),
    (["--input-shape", "2,x"], "argument --input-shape: invalid shape '2,x' (positive sizes, comma-separated: 2,16,64)"),
    (["--input", "normal:²"], "argument --input: invalid input 'normal:²' (normal:2,16,64, tokens=VOCAB:2,16 or mask:2,16"),
    (["--input", "normal:8000,8000", "--input", "normal:8000,8000,2"],
     "--input normal:8000,8000 --input normal:8000,8000,2: the inputs take 1.4 GiB together; at most 1.0 GiB"),
])  # fmt: skip
def test_inputs_that_cannot_be_made_are_refused_up_front_with_their_size(inputs, message, tmp_path, capsys):
    argv = ["--jax", f"{MODELS}:build_jax", "--torch", f"{MODELS}:build_torch", *inputs]
    assert message in _usage_error(argv, tmp_path, capsys)


BERT = ["--jax", "tests.examples.factories:bert_port", "--torch", "tests.examples.factories:bert_reference",
        "--rename", "self_attention.=self."]  # fmt: skip
PAIR = ["--jax", f"{MODELS}:build_jax", "--torch", f"{MODELS}:build_torch"]


@pytest.mark.parametrize("argv, message", [
    ([*PAIR, "--input-shape", "3,5,8"], "--input-shape 3,5,8: the inputs do not fit the JAX model "
     "(ValueError: Linear(in_features=16, out_features=32): expected input of shape (..., features=16), got (3, 5, 8);"),
    ([*PAIR, "--input-shape", "3,5,16", "--input", "normal:3,5"], "--input normal:3,5 --input-shape 3,5,16: the inputs "
     "do not fit the JAX model (TypeError: JaxModel.__call__() takes 2 positional arguments but 3 were given)"),
    ([*PAIR, "--input", "tokens=10:3,16"], "--input tokens=10:3,16: the inputs do not fit the JAX model (TypeError: "
     "Linear(in_features=16, out_features=32): expected a real floating-point input, got dtype int"),
    ([*BERT, "--input-shape", "2,16,64"], "--input-shape 2,16,64: the inputs do not fit the JAX model "
     "(TypeError: BertEncoderPort.__call__() missing 1 required positional argument: 'attention_mask')"),
    ([*BERT, "--input", "tokens=100:2,16", "--input", "mask:2,64"], "--input tokens=100:2,16 --input mask:2,64: "
     "the inputs do not fit the JAX model ("),
    ([*BERT, "--input", "normal:2,16"], "--input normal:2,16: the inputs do not fit the JAX model "
     "(TypeError: BertEncoderPort.__call__() missing 1 required positional argument: 'attention_mask')"),
])  # fmt: skip
def test_inputs_a_model_refuses_are_a_usage_error_with_its_own_message(argv, message, tmp_path, capsys):
    if "tests.examples.factories:bert_port" in argv:
        pytest.importorskip("transformers", reason="the hf extra is not installed")
    assert message in _usage_error(argv, tmp_path, capsys)


class _TorchWithDropout(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear, self.dropout = torch.nn.Linear(16, 4), torch.nn.Dropout(0.5)

    def forward(self, x):
        return self.dropout(self.linear(x))


def test_the_trial_call_leaves_both_models_as_they_were_and_names_torch_when_torch_refuses(capsys):
    jax_model, torch_model = Counter(), _TorchWithDropout()
    torch_model.linear.eval()  # mixed modes come back as they were
    factories.inputs_fit_or_exit(
        argparse.ArgumentParser(), jax_model, torch_model, [torch.ones(2, 16).numpy()], "x"
    )
    assert jax_model.calls.get_value() == 0  # a copy was called
    assert torch_model.training and torch_model.dropout.training and not torch_model.linear.training
    parser = argparse.ArgumentParser(prog="crosscheck locate")
    torch_model.linear = torch.nn.Linear(8, 4)
    with pytest.raises(SystemExit):
        factories.inputs_fit_or_exit(
            parser, jax_model, torch_model, [torch.ones(2, 16).numpy()], "--input-shape 2,16"
        )
    assert torch_model.training and torch_model.dropout.training
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(
        "crosscheck locate: error: --input-shape 2,16: the inputs do not fit the PyTorch model ("
    )


def test_weights_that_do_not_fit_exit_2(tmp_path, capsys):
    argv = ["locate", "--jax", "tests.crosscheck.porting.models:build_jax", "--torch", "tests.crosscheck.porting.models:build_torch",
            "--input-shape", "3,5,16", "--rename", "block.=trunk.", "--out", str(tmp_path)]  # fmt: skip
    assert cli_main(argv) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("crosscheck locate: error: --rename block.=trunk.: the weights do not fit: ")


def test_a_key_mismatch_is_short_and_suggests_rename_or_align(tmp_path, capsys):
    """BERT without its --rename: a few keys of each kind, then counts (not ~3,000 characters), the
    rename the suggested counterparts imply, and --align; the library's keyword hints are left out."""
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    line = _usage_error([*BERT[:4], "--input", "tokens=100:2,16", "--input", "mask:2,16"], tmp_path, capsys)
    assert "the weights do not fit: " in line and len(line) < 1200, len(line)
    assert line.count("'") // 2 <= 12  # 3 missing (each with its counterpart), 3 unexpected, 3 expected
    assert "and 9 more and unexpected keys" in line and "and 34 more (37 keys)" in line
    assert line.endswith(
        "; try --rename self_attention.=self. or --align (finds the mapping from both models' calls)"
    )
    assert "rename=" not in line and "strict=False" not in line


def test_a_key_mismatch_after_a_rename_says_the_keys_are_its_names(tmp_path, capsys):
    line = _usage_error([*PAIR, "--input-shape", "3,5,16", "--rename", "block.=trunk."], tmp_path, capsys)
    assert line.startswith("crosscheck locate: error: --rename block.=trunk.: the weights do not fit: ")
    assert "missing keys 'trunk.up.weight' (perhaps 'block.up.weight': same shape)" in line
    assert line.endswith(
        "; try another --rename (the keys above are named after it) or --align (finds the mapping from both "
        "models' calls)"
    )


def test_renames_seen_takes_the_differing_path_pieces():
    message = "missing keys 'x.a.b.w' (perhaps 'x.c.w': same shape), 'y.q.w' (perhaps 'y.q.w2': same shape)"
    assert locate_cli.renames_seen(message) == ["a.b.=c.", "w.=w2."]
    assert locate_cli.renames_seen("missing key 'a.w'") == []


@pytest.mark.slow  # a ported example model (tests/examples): ~30 s
def test_align_finds_the_bert_ports_names_from_the_command_line(tmp_path, capsys):
    """No --rename to write: --align pairs the port's own names (self_attention) with transformers' (self)
    from both models' calls, prints the mapping, and locate runs on it. (The README's console command runs
    the same on the ResNet port, which takes twice as long.)"""
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    argv = ["locate", "--jax", "tests.examples.factories:bert_port", "--torch", "tests.examples.factories:bert_reference",
            "--align", "--input", "tokens=100:2,16", "--input", "mask:2,16", "--out", str(tmp_path)]  # fmt: skip
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    mapping = [line.split() for line in out.splitlines() if "self_attention.query" in line]
    assert mapping and all(row[1] == row[0].replace("self_attention.", "self.") for row in mapping)
    assert "35 layers: 0 failed" in out


def test_align_and_rename_together_is_a_usage_error(tmp_path, capsys):
    line = _usage_error([*PAIR, "--align", "--rename", "a.=b.", "--input-shape", "3,5,16"], tmp_path, capsys)
    assert "argument --rename: not allowed with argument --align" in line


def test_a_model_call_error_from_locate_itself_is_a_usage_error_too(tmp_path, monkeypatch, capsys):
    import crosscheck.porting.locating
    from crosscheck.porting.evaluate import ModelCallError

    def refuse(*args, **kwargs):
        raise ModelCallError("the JAX model JaxModel refused the inputs\n(ValueError: a second call differs)")

    monkeypatch.setattr(factories, "inputs_fit_or_exit", lambda *args: None)  # what one call did not meet
    monkeypatch.setattr(crosscheck.porting.locating, "locate", refuse)
    line = _usage_error([*PAIR, "--input-shape", "3,5,16"], tmp_path, capsys)
    assert line.endswith(
        "--input-shape 3,5,16: the JAX model JaxModel refused the inputs (ValueError: a second call differs)"
    )
