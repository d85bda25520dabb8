"""``crosscheck batch-probe``: its report, its exit statuses and its usage errors (batch sizes bounded
by the memory they need, checked before anything is allocated)."""

import json

import jax
import pytest

from crosscheck.cli import main as cli_main


def test_the_command_writes_its_report_and_exits_zero(tmp_path, capsys):
    argv = ["batch-probe", "--modules", "batch-invariant-linear,perhead", "--dtype", "float32"]
    assert (
        cli_main([*argv, "--batch-sizes", "1-3,9", "--modes", "jax.jit,torch", "--out", str(tmp_path)]) == 0
    )
    data = json.loads((tmp_path / "probe.json").read_text())
    assert data["batch_probe"]["batch_sizes"] == [1, 2, 3, 9]
    assert len(data["batch_probe"]["records"]) == 4 and data["environment"]["torch_deterministic"] is False
    markdown = (tmp_path / "probe.md").read_text()
    assert (
        markdown.startswith("# crosscheck batch-probe")
        and "| batch-invariant-linear | jaxlin | jax.jit |" in markdown
    )
    assert "| no difference seen (batch ≤ 9) |" in markdown and "max ULP: the largest gap" in markdown
    assert "invariant" in {r["verdict"] for r in data["batch_probe"]["records"]}  # the JSON word stays
    assert "4 probed: 0 failed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--modules", "nope"],
            "--modules: 'nope' matches no module; the modules are linear, batch-invariant-linear",
        ),
        (["--batch-sizes", "0"], "argument --batch-sizes: batch sizes: '0' must be positive and increasing"),
        (["--modes", "jit"], "invalid mode 'jit' (choose from jax.jit, eager, torch)"),
        (["--max-batch", "0"], "invalid count '0'"),
        (["--seed", "-1"], "invalid seed '-1' (an integer from 0 to 4294967295)"),
        (
            ["--modules", "linear", "--batch-sizes", "1-100000000"],
            "--batch-sizes: a batch of 100000000 rows of linear in float32 needs more than half the memory available here; the limit is",
        ),
        (
            ["--modules", "linear", "--max-batch", "1000000000000"],
            "--max-batch: a batch of 1000000000000 rows of linear in float32 needs more than half the memory",
        ),
    ],
)
def test_bad_options_exit_two_with_a_message(argv, message, tmp_path, capsys):
    assert cli_main(["batch-probe", *argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(any(d.platform == "tpu" for d in jax.devices()), reason="this machine has a TPU")
def test_an_unavailable_device_is_refused_before_the_output_directory_is_made(tmp_path, capsys):
    out = tmp_path / "never-made"
    assert cli_main(["batch-probe", "--device", "tpu", "--out", str(out)]) == 2
    assert "--device tpu: not available here" in capsys.readouterr().err and not out.exists()
