"""One measurement in its own process, so that its peak resident memory is that job's: build the pair at
a named size, run one job (``check`` or ``locate``, with or without gradients; or none, for the
unavoidable work alone), then the unavoidable work (:mod:`benchmarks.unavoidable`).

    python -m benchmarks.worker SIZE JOB RESULT.json [--repeats N]

The result file is written after the job and again after the unavoidable work, so a process killed in
the second phase still leaves the first phase's numbers.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import os
import time

JOBS = ("check-grads", "check", "locate-grads", "locate", "unavoidable")
"""What one process measures: ``check``/``locate`` with gradients (``-grads``) or without, or only the
unavoidable work."""


def _run_job(job: str, port, reference, inputs, torch_inputs, rename) -> dict:
    from crosscheck import check, locate

    grads = job.endswith("-grads")
    if job.startswith("check"):
        result = check(port, reference, *inputs, torch_inputs=torch_inputs, rename=rename, grads=grads)
        return {"passed": result.passed, "items": len(result.items)}
    extra = {"progress": False} if "progress" in inspect.signature(locate).parameters else {}
    result = locate(port, reference, *inputs, torch_inputs=torch_inputs, rename=rename, grads=grads, **extra)
    judged = sum(layer.error is None for layer in result.layers)
    return {"passed": result.passed, "items": len(result.layers), "judged": judged}


def _model_sizes(reference) -> dict:
    """One model's parameter count and float32 bytes, and its largest layer (a block of a module list,
    or an embedding table) in float64 bytes."""
    import torch

    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    layers = [m for m in reference.modules() if isinstance(m, torch.nn.Embedding)]
    for module in reference.modules():
        if isinstance(module, torch.nn.ModuleList):
            layers.extend(module)
    parameters = count(reference)
    largest = max((count(layer) for layer in layers), default=parameters)
    return {
        "parameters": parameters,
        "weight_bytes": 4 * parameters,
        "largest_layer_float64_bytes": 8 * largest,
    }


def _write(path: str, row: dict) -> None:
    with open(path + ".tmp", "w") as out:
        json.dump(row, out)
    os.replace(path + ".tmp", path)


def measure(size_name: str, job: str, path: str, repeats: int) -> dict:
    """Build, run ``job``, then the unavoidable work; the row is written to ``path`` after each phase."""
    from benchmarks.memory import lifetime_peak_bytes, peak_bytes, reset_peak, rss_bytes
    from benchmarks.sizes import SIZES

    size = SIZES[size_name]
    row = {"size": size_name, "family": size.family, "job": job, "tokens": list(size.tokens)}
    start = time.perf_counter()  # the imports, timed apart from the build
    import transformers  # noqa: F401

    import crosscheck  # noqa: F401

    size.example()
    row |= {"import_s": time.perf_counter() - start, "rss_start_bytes": rss_bytes()}
    start = time.perf_counter()
    port, reference, inputs, torch_inputs, rename = size.build()
    gc.collect()
    row |= {"build_s": time.perf_counter() - start, "rss_built_bytes": rss_bytes()}
    row |= {"build_peak_bytes": peak_bytes()} | _model_sizes(reference)
    row["peak_reset"] = reset_peak()
    if job != "unavoidable":
        start = time.perf_counter()
        row |= _run_job(job, port, reference, inputs, torch_inputs, rename)
        row |= {"wall_s": time.perf_counter() - start, "job_peak_bytes": peak_bytes()}
    row["lifetime_peak_bytes"] = lifetime_peak_bytes()
    _write(path, row)

    from benchmarks.unavoidable import measure as unavoidable

    pair = {"port": port, "reference": reference, "inputs": inputs, "torch_inputs": torch_inputs}
    del port, reference
    row["unavoidable"] = unavoidable(pair, size.build_reference, repeats)
    row["lifetime_peak_bytes"] = lifetime_peak_bytes()
    _write(path, row)
    return row


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.worker SIZE JOB RESULT.json [--repeats N]``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker", description=__doc__.split("\n")[0])
    parser.add_argument("size")
    parser.add_argument("job", choices=JOBS)
    parser.add_argument("result")
    parser.add_argument("--repeats", type=int, default=3, help="warm repeats of each unavoidable pass")
    args = parser.parse_args(argv)
    measure(args.size, args.job, args.result, args.repeats)


if __name__ == "__main__":
    main()
