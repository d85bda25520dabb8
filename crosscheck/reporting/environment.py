"""What every report records beside its numbers: versions, the machine, precision, the git commit,
the command, the time — and the one line that names the machine above every table.

>>> machine_line({"device": {"cpu_model": "AMD EPYC", "cpu_cores": 2, "jax_backend": "cpu"}})
'AMD EPYC · 2 cores · jax cpu (–) · torch – (– threads) · precision – · XLA_FLAGS=(unset)'
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib import metadata

PACKAGES = ("jax", "jaxlib", "flax", "torch", "numpy")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """``git rev-parse HEAD`` of the checkout this package runs from, or ``None`` outside git."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def environment(command: str, *, device: dict, precision: dict, **extra) -> dict[str, object]:
    """Versions, machine, precision, XLA flags, git commit, command line, UTC timestamp, and ``extra``."""
    versions = {"python": platform.python_version()} | {name: _version(name) for name in PACKAGES}
    return {
        "versions": versions,
        "device": device,
        "precision": precision,
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "git_commit": git_commit(),
        "command": command,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    } | extra


def machine_line(env: dict) -> str:
    """The machine, threads, precision and XLA flags, in one line (``–`` for what is not recorded)."""
    device, precision = env.get("device", {}), env.get("precision", {})

    def get(mapping: dict, key: str) -> str:
        value = mapping.get(key)
        return "–" if value is None else str(value)

    flags = env.get("xla_flags") or "(unset)"
    jax_part = f"jax {get(device, 'jax_backend')} ({get(device, 'jax_device')})"
    torch_part = f"torch {get(device, 'torch_device')} ({get(device, 'torch_threads')} threads)"
    return (
        f"{get(device, 'cpu_model')} · {get(device, 'cpu_cores')} cores · {jax_part} · {torch_part} · "
        f"precision {get(precision, 'mode')} · XLA_FLAGS={flags}"
    )
