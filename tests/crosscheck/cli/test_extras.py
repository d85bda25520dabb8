"""``crosscheck study`` and ``crosscheck train`` need matplotlib (the plot extra) for the plots they write
at the end: without it they stop before any work, exit 2, with one line naming the install command."""

import importlib.util

import pytest

from crosscheck.cli import main as cli_main

REAL_FIND_SPEC = importlib.util.find_spec


@pytest.fixture
def no_matplotlib(monkeypatch):
    """matplotlib as if not installed, whether it is or not."""

    def find_spec(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            return None
        return REAL_FIND_SPEC(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


@pytest.fixture
def no_work(monkeypatch):
    """Any work started fails the test: the check comes first."""
    from crosscheck.cli import common

    def fail(*args, **kwargs):
        raise AssertionError("work started before the missing extra was reported")

    monkeypatch.setattr(common, "session", fail)
    monkeypatch.setattr(common, "out_dir_or_exit", fail)


@pytest.mark.parametrize(
    "command", [["study", "--quick"], ["train", "--steps", "2"], ["train", "--experiment", "conv-vs-linear"]]
)
def test_a_missing_plot_extra_exits_2_before_any_work_naming_the_install_command(
    command, tmp_path, capsys, no_matplotlib, no_work
):
    out = tmp_path / "out"
    assert cli_main([*command, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"crosscheck {command[0]}: error: needs matplotlib (the plot extra): pip install -e '.[plot]'\n"
    )
    assert not out.exists()  # nothing written


def test_an_installed_extra_passes_silently():
    from crosscheck.cli.common import extra_or_exit

    assert extra_or_exit("study", "importlib", "plot") is None
