"""The README's examples run, and CI runs exactly the README's test command."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_readme_python_examples_run(index):
    block = _blocks("python")[index]
    if "examples." in block:  # the porting examples run Hugging Face models
        pytest.importorskip("transformers", reason="the hf extra (pip install -e '.[hf]') is not installed")
    exec(compile(block, "README.md", "exec"), {})


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_command():
    commands = [block.strip() for block in _blocks("bash")]
    assert len(commands) == 2
    main_job, tests = commands
    assert "crosscheck" in main_job and "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text()
    # CI may silence pip (-q) but must run the same steps in the same order.
    assert tests.split("&& ", 2)[-1].replace("pip install", "pip install -q") in ci
