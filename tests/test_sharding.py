"""The sharded tests (tests/sharded) in a process of their own, started with 8 host devices on CPU —
the device count must be set before JAX starts, so they cannot share this process."""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FILES = sorted(path.name for path in (ROOT / "tests" / "sharded").glob("test_*.py"))


@pytest.mark.parametrize("name", FILES)
def test_the_sharded_tests_pass_on_8_host_devices(name):
    env = os.environ | {"XLA_FLAGS": "--xla_force_host_platform_device_count=8", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"tests/sharded/{name}"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
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
