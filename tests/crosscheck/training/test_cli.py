"""``crosscheck train``: exit statuses 0 (every step passes), 1 (a planted difference is caught) and 2
(usage errors, one line each), the files it writes, and the experiment's short run."""

import json

import pytest

from crosscheck.cli import main as cli_main

pytestmark = pytest.mark.slow  # deselect with -m "not slow" (README)

QUICK = ["--steps", "20", "--optimizer", "sgd"]


def test_an_honest_run_exits_0_and_writes_json_markdown_plots_and_the_weights(tmp_path, capsys):
    assert cli_main(["train", *QUICK, "--out", str(tmp_path)]) == 0
    assert "1 optimizers × 20 steps: 0 failed" in capsys.readouterr().out
    document = json.loads((tmp_path / "train.json").read_text())
    record = document["optimizers"][0]
    assert document["rule"]["c"] == 2.0 and document["plant"] == "none" and document["steps"] == 20
    assert record["passed"] and record["first_failure"] is None and len(record["steps"]) == 21
    assert record["steps"][0]["loss_jax"] is None and record["steps"][20]["loss_torch"] > 0
    assert any("lr stays outside the buffer" in note for note in record["matched"])
    markdown = (tmp_path / "train.md").read_text()
    assert (
        markdown.startswith("# crosscheck train") and "## Rule" in markdown and "![train-sgd.png]" in markdown
    )
    assert (tmp_path / "train-sgd.png").stat().st_size > 10_000
    assert (tmp_path / "initial.safetensors").exists()


def test_a_planted_difference_exits_1_and_names_the_step(tmp_path, capsys):
    argv = ["train", *QUICK, "--plant", "schedule-offset", "--out", str(tmp_path)]
    assert cli_main(argv) == 1
    assert "FAIL at step 1" in capsys.readouterr().out
    record = json.loads((tmp_path / "train.json").read_text())["optimizers"][0]
    assert record["first_failure"] == 1 and record["plant"] == "schedule-offset"
    assert "**FAIL** at step 1" in (tmp_path / "train.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--optimizer", "rmsprop"], "invalid optimizer 'rmsprop' (choose from sgd, adam, adamw"),
    (["--lr", "0"], "invalid value '0' (a finite number > 0)"),
    (["--lr", "inf"], "invalid value 'inf' (a finite number > 0)"),
    (["--weight-decay", "-1"], "invalid value '-1' (a finite number >= 0)"),
    (["--seeds", "1", "--experiment", "conv-vs-linear"], "invalid count '1' (an integer >= 2)"),
    (["--optimizer", "sgd", "--plant", "adam-eps"], "--plant adam-eps changes Adam, not sgd; choose --optimizer adam or adamw"),
    (["--plant", "bias-decay", "--weight-decay", "0"], "--plant bias-decay needs weight decay, and sgd has --weight-decay 0"),
    (["--plant", "schedule-offset", "--schedule", "constant"], "--plant schedule-offset needs a schedule that changes"),
    (["--batch", "5000"], "--batch 5000: the task has 2000 training examples; give at most that"),
    (["--experiment", "conv-vs-linear", "--plant", "adam-eps"], "--experiment runs honest pairs only; drop --plant"),
    (["--experiment", "conv-vs-linear", "--steps", "15"], "--steps 15: the experiment records every 10 steps; give a multiple of 10"),
    (["--steps", "1000000000000"], "argument --steps: invalid count '1000000000000' (an integer from 1 to 10000; every step's parameters are kept in memory, about 0.1 MB a step per optimizer)"),
    (["--steps", "10001", "--experiment", "conv-vs-linear"], "invalid count '10001' (an integer from 1 to 10000;"),
    (["--steps", "²"], "argument --steps: invalid count '²' (an integer from 1 to 10000;"),
])  # fmt: skip
def test_usage_errors_exit_2_with_one_line(argv, message, tmp_path, capsys):
    assert cli_main(["train", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert message in last and last.startswith("crosscheck") and "error: " in last
    assert not (tmp_path / "train.json").exists()


def test_an_output_directory_that_cannot_be_written_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli_main(["train", *QUICK, "--out", str(blocker / "out")]) == 2
    assert "cannot write there" in capsys.readouterr().err


def test_the_experiment_runs_short_and_its_equivalence_claims_hold(tmp_path, capsys):
    argv = [
        "train",
        "--experiment",
        "conv-vs-linear",
        "--seeds",
        "2",
        "--steps",
        "10",
        "--out",
        str(tmp_path),
    ]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert "matmul_bitwise_equal_every_seed: True" in out and "2 seeds × 10 steps" in out
    record = json.loads((tmp_path / "experiment.json").read_text())["experiment"]
    assert record["seeds"] == 2 and set(record["accuracy"]) == {
        "linear", "conv-same-init", "conv-matmul-same-init", "conv-own-init", "conv-maxpool"
    }  # fmt: skip
    assert record["accuracy"]["linear"] == record["accuracy"]["conv-matmul-same-init"]
    assert record["differences"]["conv-matmul-same-init − linear"]["equal"] == 2
    assert record["answers"]["conv_within_allowance_every_seed"]
    assert "## Paired differences" in (tmp_path / "experiment.md").read_text()
    assert (tmp_path / "experiment.png").stat().st_size > 10_000
