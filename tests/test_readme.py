"""The README's examples run as written from any directory, and CI runs exactly the README's test
command."""

import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
HF = "pip install -e '.[hf]'"

# Each block runs in its own interpreter, in an empty directory, with nothing added to the import path:
# what the README's set-up installed is all it has. The guard proves the repository is not on the path.
GUARD = f"""import sys
assert not any(p and __import__("os").path.realpath(p) == {str(ROOT)!r} for p in sys.path), sys.path
"""


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _needs_hf(block: str) -> bool:
    """The paragraph right above ``block`` names the hf extra."""
    before = README[: README.index(f"\n{block}")].rsplit("\n\n", 2)[-2:]
    return any(HF in paragraph or "(hf extra)" in paragraph for paragraph in before)


def _environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")  # the venv's scripts
    return env


@pytest.mark.slow  # each block in a fresh interpreter importing jax and torch: ~45 s in all
@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_readme_python_blocks_run_as_written_from_another_directory(index, tmp_path):
    block = _blocks("python")[index]
    if "examples" in block:  # the porting examples' references are Hugging Face models
        assert _needs_hf(block), "say the hf extra right above a block that runs the examples"
    if _needs_hf(block):
        pytest.importorskip("transformers", reason=f"the hf extra ({HF}) is not installed")
    script = tmp_path / "block.py"
    script.write_text(GUARD + block)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(_blocks("console"))))
def test_readme_console_commands_run_as_written_from_another_directory(index, tmp_path):
    block = _blocks("console")[index]
    if _needs_hf(block):
        pytest.importorskip("transformers", reason=f"the hf extra ({HF}) is not installed")
    commands = [line[2:] for line in block.splitlines() if line.startswith("$ ")]
    assert commands
    for command in commands:
        done = subprocess.run(
            shlex.split(command),
            cwd=tmp_path,
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_command():
    commands = [block.strip() for block in _blocks("bash")]
    assert len(commands) == 2
    main_job, tests = commands
    assert "crosscheck" in main_job and "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text()
    # CI may silence pip (-q) but must run the same steps in the same order.
    assert tests.split("&& ", 2)[-1].replace("pip install", "pip install -q") in ci


def test_the_test_setup_installs_every_extra_the_readme_names():
    tests = _blocks("bash")[1]
    for extra in re.findall(r"pip install -e '\.\[(\w+)\]'", README):
        assert extra in tests, f"the test set-up does not install the {extra} extra"
