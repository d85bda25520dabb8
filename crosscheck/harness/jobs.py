"""The jobs of ``crosscheck run``: check every case, probe batch sizes, then time the cases alone.

Checks and probes are :class:`CheckJob` and :class:`ProbeJob` objects on one queue. With worker
processes (spawned: a fork would copy XLA's threads), they run there while this process builds
every case's pair and compiles its timed calls; then this process takes jobs from the same queue
until it is empty. Timed calls run last, alone, once the workers have exited.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue as queues
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import numpy as np

from crosscheck.harness import cases as registry
from crosscheck.harness.batch_probe import failed_record, probe_case
from crosscheck.harness.cases import Case
from crosscheck.harness.checking import check
from crosscheck.harness.choices import TIMED_ROUNDS
from crosscheck.harness.devices import jax_device, torch_device
from crosscheck.harness.evaluate import cast_inputs
from crosscheck.harness.meshes import MeshSpec, input_placer, make_mesh, shard_module
from crosscheck.harness.pairs import Pair, build_pair
from crosscheck.harness.precision import precision_mode
from crosscheck.harness.probing import DEFAULT_REPEATS
from crosscheck.harness.timing import ROTATE, Timing, measure, prepare_pair
from crosscheck.harness.verdicts import CaseResult


@dataclass(frozen=True)
class Options:
    """What every job of one run shares."""

    seed: int = 0
    weights: str | None = None
    device: str = "auto"
    precision: str = "pinned"
    repeats: int = TIMED_ROUNDS
    probe_batch_sizes: tuple[int, ...] = ()
    probe_modes: tuple[str, ...] = ("jax.jit", "torch")
    probe_repeats: int = DEFAULT_REPEATS
    mesh: MeshSpec = ()  # ((name, size), ...): the JAX side runs sharded on this mesh


def sharded_pair(case: Case, dtype: str, options: Options) -> tuple[Pair, object]:
    """The case's pair (:func:`build_pair`) and how to place its JAX inputs: on the default device, or
    the JAX module sharded on ``options.mesh`` with its inputs split on ``data``."""
    pair = build_pair(case, dtype, seed=options.seed, weights=options.weights)
    if not options.mesh:
        return pair, None
    mesh = make_mesh(options.mesh)
    shard_module(pair.jax, mesh)
    return pair, input_placer(mesh)


@dataclass
class CaseRun:
    """What became of one case in one dtype: its check result or error, or why it was skipped, and
    its timings ``{(framework, kind): Timing}``."""

    name: str
    dtype: str
    result: CaseResult | None = None
    error: str | None = None
    skipped: str | None = None
    timings: dict[tuple[str, str], Timing] | None = None


def _x64(dtype: str):
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


def _failure(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class CheckJob:
    """Check one case in one dtype (:func:`crosscheck.harness.checking.check`)."""

    index: int
    case: str
    dtype: str

    def run(self, options: Options, built: tuple[Pair, object] | None = None) -> CaseRun:
        case = registry.all_cases()[self.case]
        try:
            with _x64(self.dtype), jax.default_device(jax_device(options.device)):
                pair, place = built or sharded_pair(case, self.dtype, options)
                inputs = case.make_inputs(np.random.default_rng(options.seed))
                result = check(
                    *pair, *inputs, channels_first=case.channels_first, name=case.name, place=place
                )
        except Exception as error:  # a case that raises fails; the run goes on
            return CaseRun(case.name, self.dtype, error=_failure(error))
        return CaseRun(case.name, self.dtype, result=result)


@dataclass(frozen=True)
class ProbeJob:
    """The batch-size probe of one module in one dtype (:func:`crosscheck.harness.batch_probe.probe_case`)."""

    index: int
    module: str
    dtype: str

    def run(self, options: Options) -> list[dict]:
        try:
            with _x64(self.dtype), jax.default_device(jax_device(options.device)):
                sizes, modes = options.probe_batch_sizes, options.probe_modes
                case = registry.probe_cases()[self.module]
                return probe_case(
                    case, self.dtype, modes, sizes, seed=options.seed, repeats=options.probe_repeats
                )
        except Exception as error:  # the probe of a module that cannot be built fails; the run goes on
            return [failed_record(self.module, self.dtype, _failure(error))]


def _worker(pending, results, options: Options) -> None:
    """A spawned process: run jobs from ``pending`` until ``None``, putting ``(index, outcome)`` on
    ``results``."""
    with precision_mode(options.precision):
        for job in iter(pending.get, None):
            results.put((job.index, job.run(options)))


def default_workers() -> int:
    """One check worker on a CPU-only machine with 2+ cores; none beside an accelerator (a second
    process would claim its memory too)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 1 if jax.default_backend() == "cpu" and cores >= 2 else 0


@dataclass
class _Pool:
    """Worker processes and their two queues (none at all when ``workers == 0``)."""

    processes: list = field(default_factory=list)
    pending: object = None
    results: object = None

    @classmethod
    def start(cls, jobs: list, workers: int, options: Options) -> _Pool:
        if not workers or not jobs:
            return cls()
        context = multiprocessing.get_context("spawn")
        pool = cls([], context.Queue(), context.Queue())
        for job in jobs:
            pool.pending.put(job)
        for _ in range(workers + 1):  # one stop sign each, and one for this process
            pool.pending.put(None)
        for _ in range(min(workers, len(jobs))):
            pool.processes.append(
                context.Process(target=_worker, args=(pool.pending, pool.results, options), daemon=True)
            )
            pool.processes[-1].start()
        return pool

    def collect(self, store: Callable, *, block: bool) -> None:
        if self.results is None:
            return
        with contextlib.suppress(queues.Empty):
            while True:
                store(*(self.results.get(timeout=0.5) if block else self.results.get_nowait()))

    def alive(self) -> bool:
        return any(process.is_alive() for process in self.processes)

    def stop(self) -> str:
        """Let the workers exit (and free their memory) before anything is timed; their exit codes."""
        for process in self.processes:
            process.join(timeout=30)
        return ", ".join(str(process.exitcode) for process in self.processes)


def _timing_argsets(case: Case, dtype: str, seed: int) -> tuple[list, list]:
    argsets = [
        cast_inputs(case.make_inputs(np.random.default_rng(seed + 1 + i)), np.dtype(dtype))
        for i in range(ROTATE)
    ]
    return argsets, [case.torch_inputs(args) for args in argsets]


def _prepare_timing(case: Case, built: tuple[Pair, object], dtype: str, options: Options) -> dict:
    pair, place = built
    argsets, torch_argsets = _timing_argsets(case, dtype, options.seed)
    return prepare_pair(
        pair.jax,
        pair.torch,
        argsets,
        torch_argsets,
        device=jax_device(options.device),
        torch_device=torch_device(options.device),
        x64=dtype == "float64",
        place=place,
    )


def run_jobs(
    cases: list[tuple[str, str]], probes: list[tuple[str, str]], options: Options, *, workers: int, progress
) -> tuple[list[CaseRun], list[dict]]:
    """Check, compile and time every ``(case, dtype)``; probe every ``(module, dtype)``.

    Returns one :class:`CaseRun` per case, in order, and the probe's records. ``progress`` is a rich
    ``Progress`` (or anything with ``add_task``/``advance``/``start_task``).
    """
    checks = [CheckJob(i, name, dtype) for i, (name, dtype) in enumerate(cases)]
    probe_jobs = [ProbeJob(len(checks) + i, name, dtype) for i, (name, dtype) in enumerate(probes)]
    outcomes: dict[int, object] = {}
    bars = {key: progress.add_task(key, total=len(checks)) for key in ("checks", "compiling timers")}
    if probe_jobs:
        bars["probe"] = progress.add_task("batch-size probe", total=len(probe_jobs))
    bars["timing"] = progress.add_task("timing", total=len(checks), start=False)

    def store(index: int, outcome) -> None:
        outcomes[index] = outcome
        progress.advance(bars["checks" if index < len(checks) else "probe"])

    pool = _Pool.start(checks + probe_jobs, workers, options)
    prepared = _compile_timers(checks, options, pool, store, progress, bars["compiling timers"])
    for job in iter(pool.pending.get, None) if pool.processes else probe_jobs:  # this process joins in
        store(job.index, job.run(options))
        pool.collect(store, block=False)
    while len(outcomes) < len(checks) + len(probe_jobs) and pool.alive():
        pool.collect(store, block=True)
    codes = pool.stop()
    pool.collect(store, block=False)
    progress.start_task(bars["timing"])
    runs = []
    for job in checks:
        run = outcomes.get(job.index) or CaseRun(
            job.case, job.dtype, error=f"the check worker exited (code {codes})"
        )
        timers = prepared.get(job.index)
        if isinstance(timers, str):
            run.error = run.error or timers
        elif timers is not None:
            run.timings = measure(timers, repeats=options.repeats)
        runs.append(run)
        progress.advance(bars["timing"])
    lost = "the worker exited"
    probe_records = [
        r
        for job in probe_jobs
        for r in outcomes.get(job.index) or [failed_record(job.module, job.dtype, lost)]
    ]
    return runs, probe_records


def _compile_timers(checks, options: Options, pool: _Pool, store, progress, bar) -> dict[int, object]:
    """Build each case's pair and compile its timed calls here (checking it too when there is no
    worker); ``{index: prepared calls, or the error that stopped them}``."""
    prepared: dict[int, object] = {}
    cases = registry.all_cases()
    for job in checks:
        case = cases[job.case]
        try:
            with _x64(job.dtype):
                built = sharded_pair(case, job.dtype, options)
        except Exception as error:  # CheckJob.run meets the same error and records it
            built, prepared[job.index] = None, _failure(error)
        if not pool.processes:
            store(job.index, job.run(options, built))
        if built is not None:
            try:
                prepared[job.index] = _prepare_timing(case, built, job.dtype, options)
            except Exception as error:  # timing a case that raises fails it; the run goes on
                prepared[job.index] = f"timing: {_failure(error)}"
        progress.advance(bar)
        pool.collect(store, block=False)
    return prepared
