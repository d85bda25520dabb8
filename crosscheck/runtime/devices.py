"""Where a run happens: the JAX device for ``--device``, torch's matching device, and the machine's facts.

>>> jax_device("cpu").platform
'cpu'
"""

from __future__ import annotations

import os
import platform

import jax
import torch

from crosscheck.runtime.choices import DEVICES


def jax_device(device: str = "auto"):
    """The JAX device for ``--device``.

    Raises:
        ValueError: ``device`` is not one of :data:`DEVICES`.
        RuntimeError: that platform is not present here.
    """
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}.")
    return jax.devices()[0] if device == "auto" else jax.devices(device)[0]


def torch_device(device: str = "auto") -> str:
    """``"cuda"`` when the run is on a GPU and torch sees CUDA, else ``"cpu"``."""
    platform_ = jax_device(device).platform if device == "auto" else device
    return "cuda" if platform_ == "gpu" and torch.cuda.is_available() else "cpu"


def torch_sync(device: str):
    """``sync(result)`` for timing torch on ``device``: ``torch.cuda.synchronize()`` on CUDA, else nothing."""
    if device == "cuda":
        return lambda _: torch.cuda.synchronize()
    return lambda _: None


def cpu_model() -> str:
    """The CPU's model name, as ``/proc/cpuinfo`` gives it (``platform`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(device: str = "auto") -> dict[str, object]:
    """The machine beside every number: JAX backend and device, torch device and threads, CPU model
    and cores, load average.

    >>> sorted(device_info())[:3]
    ['cpu_cores', 'cpu_cores_usable', 'cpu_model']
    """
    jdev = jax_device(device)
    tdev = torch_device(device)
    return {
        "jax_backend": jdev.platform,
        "jax_device": jdev.device_kind,
        "jax_device_count": jax.device_count(),
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "torch_device": torch.cuda.get_device_name() if tdev == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(),
    }
