"""Every timed row against the limit it can reach: compute, or the bandwidth of where its data lives.

A call cannot take less than ``max(FLOPs / peak, bytes / bandwidth)``: the GEMM peak (the best
rate of the plain float32 matmuls the run times: those of the peak shapes, 2048³ and 2048×1024×1024 in the
full study, and the kernel-parity GEMMs, :data:`~crosscheck.study.names.FLOAT32_GEMMS`, one of which,
(1, 2048, 512) @ (1, 512, 512), ran 6% above the peak shapes on an AMD EPYC) and the streaming-read
bandwidth are measured in the same run, in both frameworks, and the faster framework sets each.
``roofline_fraction`` is that least time over the measured median; a row above :data:`SANE` is a
measurement or byte-count error, not a fast kernel.

Where the data lives matters: a row whose timing loop touches less than the last-level cache
(:func:`last_level_cache_bytes`; the rotated input sets, weights and output) is read from the
cache, so its memory limit is the bandwidth of a streaming read of a cache-sized array, measured
the same way. Bigger rows get the bandwidth of a read of at least 256 MB.

>>> records = [
...     {"study": "peak", "median_s": 1.0, "flops": 100e9},
...     {"study": "bandwidth", "level": "memory", "median_s": 1.0, "bytes": 10e9},
...     {"study": "s", "median_s": 2.0, "flops": 100e9, "bytes": 1e9, "footprint_bytes": 1e9},
... ]
>>> row = annotate(records, cache_bytes=None)[2]
>>> row["bound"], row["roofline_fraction"], row["gflops"], row["gbps"]
('compute', 0.5, 50.0, 0.5)
"""

from __future__ import annotations

import glob

from crosscheck.study import names

SANE = 1.05
"""A row measured above this fraction of its roofline is flagged (``above_roofline``)."""


def last_level_cache_bytes() -> int | None:
    """The largest CPU cache of this machine (Linux sysfs), or None where it cannot be read."""
    sizes = []
    for path in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"):
        try:
            with open(path) as file:
                text = file.read().strip()
        except OSError:
            continue
        scale = {"K": 1024, "M": 1024**2}.get(text[-1:], 1)
        digits = text.rstrip("KM")
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return max(sizes) if sizes else None


def _best(records: list[dict], chosen, value) -> float | None:
    """The highest ``value`` of the timed records ``chosen`` picks; ``None`` when it picks none."""
    rates = [value(r) for r in records if "median_s" in r and chosen(r)]
    return max(rates) if rates else None


def _plain_gemm(record: dict) -> bool:
    """A float32 GEMM alone: the peak shapes, or a kernel-parity GEMM."""
    return bool(record.get("flops")) and (
        record.get("study") == names.PEAK or record.get("impl") in names.FLOAT32_GEMMS
    )


def _read(level: str):
    return lambda record: record.get("study") == names.BANDWIDTH and record.get("level") == level


def limits(records: list[dict]) -> dict[str, float | None]:
    """``{"flops_per_s", "memory_bytes_per_s", "cache_bytes_per_s"}``: the best of both frameworks."""
    bandwidth = lambda r: r["bytes"] / r["median_s"]  # noqa: E731
    return {
        "flops_per_s": _best(records, _plain_gemm, lambda r: r["flops"] / r["median_s"]),
        "memory_bytes_per_s": _best(records, _read("memory"), bandwidth),
        "cache_bytes_per_s": _best(records, _read("cache"), bandwidth),
    }


def _bandwidth(record: dict, roof: dict, cache_bytes: int | None) -> float | None:
    footprint = record.get("footprint_bytes", float("inf"))
    if cache_bytes and roof["cache_bytes_per_s"] and footprint <= cache_bytes:
        return roof["cache_bytes_per_s"]
    return roof["memory_bytes_per_s"]


def annotate(records: list[dict], *, cache_bytes: int | None) -> list[dict]:
    """Add ``gflops``, ``gbps``, ``roofline_fraction``, ``bound`` ("compute" | "memory") and, above
    :data:`SANE`, ``above_roofline`` to every timed record (in place; returns ``records``)."""
    roof = limits(records)
    for record in records:
        if "median_s" not in record or record.get("flops") is None:
            continue
        time = record["median_s"]
        record["gflops"] = record["flops"] / time / 1e9
        least = {"compute": record["flops"] / roof["flops_per_s"] if roof["flops_per_s"] else 0.0}
        bandwidth = _bandwidth(record, roof, cache_bytes)
        if "bytes" in record:
            record["gbps"] = record["bytes"] / time / 1e9
            if bandwidth:
                least["memory"] = record["bytes"] / bandwidth
        bound = max(least, key=least.get)
        if least[bound] > 0:
            record["bound"] = bound
            record["roofline_fraction"] = least[bound] / time
            if record["roofline_fraction"] > SANE:
                record["above_roofline"] = True
    return records
