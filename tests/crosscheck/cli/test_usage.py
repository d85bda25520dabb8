"""Usage errors inside a subcommand show that subcommand's usage, not ``usage: crosscheck [-h] COMMAND``."""

import pytest

from crosscheck.cli.dispatch import main


@pytest.mark.parametrize(
    "argv, command",
    [
        (["locate", "--jax", "a:b", "--torch", "c:d", "--seed", "x"], "locate"),
        (["locate", "--jax", "a:b", "--torch", "c:d", "--bogus"], "locate"),
        (["study", "--seed", "1"], "study"),
        (["study", "--quick", "extra"], "study"),
        (["run", "--bogus"], "run"),
    ],
)
def test_a_subcommand_usage_error_shows_its_usage(argv, command, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: crosscheck {command} ")
    assert f"crosscheck {command}: error: " in err
    assert "COMMAND ..." not in err


def test_an_unknown_option_before_the_command_is_crosscheck_s_own(capsys):
    assert main(["--bogus", "run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: crosscheck [-h] COMMAND ...")
    assert "crosscheck: error: unrecognized arguments: --bogus" in err
