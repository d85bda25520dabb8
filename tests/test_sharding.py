"""The sharded tests (tests/sharded) in a process of their own, started with 8 host devices on CPU —
the device count must be set before JAX starts, so they cannot share this process."""

import os
import pathlib
import subprocess
import sys
from xml.etree import ElementTree

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# ~50 s: a process starting JAX on 8 host devices runs every sharded test.
pytestmark = pytest.mark.slow  # deselect with -m "not slow" (README)

FILES = sorted(path.name for path in (ROOT / "tests" / "sharded").glob("test_*.py"))


def test_the_sharded_tests_pass_on_8_host_devices(tmp_path):
    """All of tests/sharded in one process (one start of JAX and torch, not one per file), with a JUnit
    report to tell each file's tests apart. One test, not one per file: tests sharing a module-scoped run
    are split across the two test workers, each starting the process again."""
    report = tmp_path / "junit.xml"
    env = os.environ | {"XLA_FLAGS": "--xla_force_host_platform_device_count=8", "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
        "tests/sharded",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    cases = list(ElementTree.parse(report).iter("testcase")) if report.exists() else []
    output = done.stdout[-6000:] + done.stderr[-3000:]
    wrong = {}  # every file's tests that did not pass, or "no test of it ran"
    for name in FILES:
        module = f"tests.sharded.{name.removesuffix('.py')}"
        mine = [case for case in cases if f"{case.get('classname')}.".startswith(f"{module}.")]
        not_passed = {
            case.get("name"): tags
            for case in mine
            if (tags := [c.tag for c in case if c.tag in ("failure", "error", "skipped")])
        }
        if not mine or not_passed:
            wrong[name] = not_passed or "no test of it ran"
    assert not wrong, f"{wrong}\n{output}"
    assert done.returncode == 0, output
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]


def test_a_multi_host_start_dry_runs_in_one_process():
    script = ROOT / "docs" / "scripts" / "multihost_dry_run.py"
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=os.environ | {"PYTHONPATH": str(ROOT)})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        "process 0 of 1" in done.stdout
        and "heads-sharded forward equals the unsharded one: True" in done.stdout
    )
