"""The job runner of ``crosscheck run``: build each case's modules, check them (in a spawned worker
process while this one compiles the timers), then time them alone.

Each job is ``(case name, dtype)`` and gives one report record (:func:`crosscheck.report.case_record`).
"""

from __future__ import annotations

import contextlib
import os

from crosscheck.probe import DEFAULT_REPEATS


def weights_fit(path: str, torch_module) -> str | None:
    """``None`` when the file's keys and shapes are the module's state_dict, else why not."""
    from crosscheck import weightfile

    declared = {key: shape for key, (shape, _) in weightfile.header(path).items()}
    expected = {key: tuple(t.shape) for key, t in torch_module.state_dict().items()}
    return (
        None
        if declared == expected
        else f"--weights {path} does not fit: it holds {declared}, not {expected}"
    )


def build_modules(case, dtype: str, *, seed: int, weights: str | None):
    """A case's (or probe subject's) jaxlin and torch_ref modules with one set of weights (torch's init, or
    ``weights``)."""
    import jax.numpy as jnp
    import torch
    from flax import nnx

    from crosscheck.weights import copy_torch_to_jax, load_weights

    torch.manual_seed(seed)
    torch_module = case.make_torch(getattr(torch, dtype))
    jax_module = case.make_jax(nnx.Rngs(seed), jnp.dtype(dtype))
    copy_torch_to_jax(torch_module, jax_module)
    if weights is not None:
        load_weights(torch_module, weights, cast=True)
        load_weights(jax_module, weights, cast=True)
    return jax_module, torch_module


def _x64(dtype: str):
    import jax

    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


def check_job(case, dtype: str, *, seed: int, weights: str | None, device: str, modules=None) -> dict:
    """The report record of :func:`crosscheck.check.check` for one case; an exception fails the case."""
    import jax
    import numpy as np

    from crosscheck.check import check
    from crosscheck.report import case_record
    from crosscheck.timing import jax_device

    try:
        with _x64(dtype), jax.default_device(jax_device(device)):
            jax_module, torch_module = modules or build_modules(case, dtype, seed=seed, weights=weights)
            inputs = case.make_inputs(np.random.default_rng(seed))
            result = check(jax_module, torch_module, *inputs, name=case.name)
    except Exception as error:  # a case that raises fails; the run goes on
        return case_record(case.name, dtype, error=f"{type(error).__name__}: {error}")
    return case_record(case.name, dtype, result=result)


def probe_job(
    name: str, dtype: str, *, seed: int, device: str, batch_sizes, modes, repeats: int = DEFAULT_REPEATS
) -> list[dict]:
    """The batch-size probe records of one subject in one dtype; an exception fails its rows."""
    import jax

    from crosscheck.batch_probe import probe_subject, subjects
    from crosscheck.timing import jax_device

    try:
        with _x64(dtype), jax.default_device(jax_device(device)):
            return probe_subject(subjects()[name], dtype, modes, batch_sizes, seed=seed, repeats=repeats)
    except Exception as error:  # the probe of a module that cannot be built fails; the run goes on
        failed = {"passed": False, "verdict": f"ERROR: {type(error).__name__}: {error}"}
        return [{"module": name, "framework": "–", "mode": "–", "dtype": dtype} | failed]


def _do(kind: str, name: str, dtype: str, options: dict, cases=None):
    if kind == "probe":
        return probe_job(name, dtype, **options["probe"])
    return check_job(cases[name], dtype, **options["check"])


def _worker(tasks, options: dict, precision: str, results) -> None:
    """Run in a spawned process: do ``(index, kind, name, dtype)`` jobs from ``tasks`` until ``None``
    (``kind`` is ``"check"`` or ``"probe"``), putting ``(index, result)`` on ``results``."""
    from crosscheck.cases import all_cases
    from crosscheck.precision import precision_mode

    cases = all_cases()
    with precision_mode(precision):
        for index, kind, name, dtype in iter(tasks.get, None):
            results.put((index, _do(kind, name, dtype, options, cases)))


def default_workers() -> int:
    """One check worker on a CPU-only machine with 2+ cores; none beside an accelerator (a second
    process would claim its memory too)."""
    import jax

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 1 if jax.default_backend() == "cpu" and cores >= 2 else 0


def run_jobs(cases, jobs, args, misfit, progress, probes=(), probe_options=None):
    """Check, compile and time every ``(name, dtype)`` job, and run the batch-size probe of every
    ``(subject, dtype)`` in ``probes`` (with ``probe_options``: ``batch_sizes``, ``modes``).

    Returns one report record per job, in order, and the probe's records. Checks and probes run in
    the worker processes while this one compiles the timers; timed calls run alone, at the end.
    """
    import multiprocessing
    import queue as queues

    from crosscheck.report import case_record, timing_fields
    from crosscheck.timing import measure_case, prepare_case

    options = {
        "check": {"seed": args.seed, "weights": args.weights, "device": args.device},
        "probe": {"seed": args.seed, "device": args.device, **(probe_options or {})},
    }
    records: list = [None] * (len(jobs) + len(probes))  # checks, then one list per probe job
    todo = [(i, name, dtype) for i, (name, dtype) in enumerate(jobs) if name not in misfit]
    for i, (name, dtype) in enumerate(jobs):
        records[i] = case_record(name, dtype, skipped=misfit[name]) if name in misfit else None
    probe_todo = [(len(jobs) + i, "probe", name, dtype) for i, (name, dtype) in enumerate(probes)]
    tasks = {key: progress.add_task(key, total=len(todo)) for key in ("checks", "compiling timers")}
    if probes:
        tasks["probe"] = progress.add_task("batch-size probe", total=len(probes))
    tasks["timing"] = progress.add_task("timing", total=len(todo), start=False)
    context = multiprocessing.get_context("spawn")
    workers, pending, results = [], context.Queue(), context.Queue()
    if args.workers:  # the workers take jobs from `pending`; this process joins in once its compiles are done
        for index, name, dtype in todo:
            pending.put((index, "check", name, dtype))
        for job in probe_todo:
            pending.put(job)
        for _ in range(args.workers + 1):
            pending.put(None)
        for _ in range(min(args.workers, len(todo) + len(probes))):
            work = (pending, options, args.precision, results)
            workers.append(context.Process(target=_worker, args=work, daemon=True))
            workers[-1].start()

    def store(index: int, result) -> None:
        records[index] = result
        progress.advance(tasks["checks" if index < len(jobs) else "probe"])

    def collect(block: bool) -> None:
        try:
            while True:
                store(*(results.get(timeout=0.5) if block else results.get_nowait()))
        except queues.Empty:
            pass

    prepared, failures = {}, {}
    for index, name, dtype in todo:
        try:
            with _x64(dtype):
                modules = build_modules(cases[name], dtype, seed=args.seed, weights=args.weights)
        except Exception as error:  # check_job meets the same error and records it
            modules, failures[index] = None, f"{type(error).__name__}: {error}"
        if not workers:
            store(index, check_job(cases[name], dtype, modules=modules, **options["check"]))
        try:
            if modules is not None:
                prepared[index] = prepare_case(
                    cases[name], *modules, dtype, device=args.device, seed=args.seed
                )
        except Exception as error:  # timing a case that raises fails it; the run goes on
            failures[index] = f"timing: {type(error).__name__}: {error}"
        progress.advance(tasks["compiling timers"])
        collect(block=False)
    for index, kind, name, dtype in iter(pending.get, None) if workers else probe_todo:
        store(index, _do(kind, name, dtype, options, cases))
        collect(block=False)
    waiting = [i for i, _, _ in todo] + [i for i, _, _, _ in probe_todo]
    while any(records[i] is None for i in waiting) and any(p.is_alive() for p in workers):
        collect(block=True)
    for process in workers:  # let them exit (and free their memory) before anything is timed
        process.join(timeout=30)
    collect(block=False)
    progress.start_task(tasks["timing"])
    for index, name, dtype in todo:
        if records[index] is None:
            codes = ", ".join(str(p.exitcode) for p in workers)
            records[index] = case_record(name, dtype, error=f"the check worker exited (code {codes})")
        if index in prepared:
            records[index] |= timing_fields(measure_case(prepared[index], repeats=args.repeats))
        elif "error" not in records[index]:
            records[index] |= {"passed": False, "error": failures[index]}
        progress.advance(tasks["timing"])
    probe_records = []
    for index, _, name, dtype in probe_todo:
        lost = {"module": name, "framework": "–", "mode": "–", "dtype": dtype, "passed": False}
        probe_records += records[index] or [lost | {"verdict": "ERROR: the worker exited"}]
    return records[: len(jobs)], probe_records
