"""Resident memory of this process, from ``/proc/self/status`` (Linux) with ``getrusage`` as the fallback:
now, the peak since the last :func:`reset_peak`, and the process's lifetime peak.

>>> now = rss_bytes()
>>> peak_bytes() >= now > 0
True
"""

from __future__ import annotations

import re
import resource
import sys


def _kib_field(path: str, field: str) -> int | None:
    """Bytes of a ``field:  N kB`` line of a /proc file, or ``None`` where there is none."""
    try:
        with open(path) as text:
            found = re.search(rf"^{field}:\s+(\d+) kB", text.read(), re.MULTILINE)
    except OSError:
        return None
    return int(found.group(1)) * 1024 if found else None


def _status(field: str) -> int | None:
    return _kib_field("/proc/self/status", field)


def lifetime_peak_bytes() -> int:
    """``ru_maxrss``: the most this process has held resident since it started (KiB on Linux, bytes on
    macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def rss_bytes() -> int:
    """Resident memory now (``VmRSS``)."""
    return _status("VmRSS") or lifetime_peak_bytes()


def peak_bytes() -> int:
    """The most held resident since the last :func:`reset_peak` (``VmHWM``), else since the start."""
    return _status("VmHWM") or lifetime_peak_bytes()


def reset_peak() -> bool:
    """Start :func:`peak_bytes` afresh from the memory held now (``echo 5 > /proc/self/clear_refs``);
    ``False`` where the kernel does not allow it (then the peak is the lifetime one)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def available_bytes() -> int | None:
    """The machine's ``MemAvailable`` (what can still be allocated without swapping), or ``None``."""
    return _kib_field("/proc/meminfo", "MemAvailable")
