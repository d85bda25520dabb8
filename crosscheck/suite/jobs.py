"""The jobs of ``crosscheck run``: check every case, probe batch sizes, then time the seed shapes alone.

Checks and probes are :class:`CheckJob` and :class:`ProbeJob` objects. A check job holds a group of
cases (:attr:`crosscheck.suite.cases.Case.group`) in every dtype: their JAX evaluations compile as
one program (:mod:`crosscheck.porting.fused`), several times cheaper than one program each. With
worker processes (spawned: a fork would copy XLA's threads), the probes go to the workers alone
(their torch threads sleep when idle there, see :data:`WORKER_ENVIRONMENT`) and the check jobs to a
queue shared with this process, the largest first; the workers start on them while this process
prepares the timed entries (:mod:`crosscheck.suite.seed_timing`), then it joins in. Timed calls run
last, alone, once the workers have exited; the entries one answer compares, in the same rounds.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue as queues
from collections.abc import Callable
from dataclasses import dataclass, field

import jax

from crosscheck.probes.probing import DEFAULT_REPEATS
from crosscheck.runtime.choices import TIMED_ROUNDS
from crosscheck.runtime.devices import jax_device, torch_device
from crosscheck.runtime.meshes import MeshSpec
from crosscheck.runtime.precision import precision_mode
from crosscheck.runtime.timing import Timing
from crosscheck.suite import cases as registry
from crosscheck.suite.batch_probe import failed_record, probe_case
from crosscheck.suite.check_groups import CaseRun, check_group
from crosscheck.suite.seed_shapes import TimedEntry
from crosscheck.suite.seed_timing import measure_groups, prepare_entry

__all__ = ["CaseRun", "CheckJob", "EntryRun", "Options", "ProbeJob", "default_workers", "run_jobs"]


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
    backward: bool = False  # time forward+backward too


@dataclass
class EntryRun:
    """What became of one timed entry: its timings ``{(framework, kind): Timing}`` or its error."""

    entry: TimedEntry
    timings: dict[tuple[str, str], Timing] | None = None
    error: str | None = None


def _failure(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class CheckJob:
    """Check a group of ``(case, dtype)`` entries together (:func:`check_group`)."""

    index: int
    entries: tuple[tuple[str, str], ...]

    def run(self, options: Options) -> list[CaseRun]:
        with jax.default_device(jax_device(options.device)):
            return check_group(
                list(self.entries), seed=options.seed, weights=options.weights, mesh=options.mesh
            )


@dataclass(frozen=True)
class ProbeJob:
    """The batch-size probe of one module in one dtype (:func:`crosscheck.suite.batch_probe.probe_case`)."""

    index: int
    module: str
    dtype: str

    def run(self, options: Options) -> list[dict]:
        x64 = jax.enable_x64(True) if self.dtype == "float64" else contextlib.nullcontext()
        try:
            with x64, jax.default_device(jax_device(options.device)):
                sizes, modes = options.probe_batch_sizes, options.probe_modes
                case = registry.probe_cases()[self.module]
                return probe_case(
                    case, self.dtype, modes, sizes, seed=options.seed, repeats=options.probe_repeats
                )
        except Exception as error:  # the probe of a module that cannot be built fails; the run goes on
            return [failed_record(self.module, self.dtype, _failure(error))]


def _worker(queues_: tuple, results, options: Options) -> None:
    """A spawned process: run the jobs of each queue in turn (its own first, then the shared one), each
    until ``None``, putting ``(index, outcome)`` on ``results``."""
    with precision_mode(options.precision):
        for pending in queues_:
            for job in iter(pending.get, None):
                results.put((job.index, job.run(options)))


WORKER_ENVIRONMENT = {"OMP_WAIT_POLICY": "PASSIVE"}
"""Set for the workers: their OpenMP threads (torch's) sleep when idle instead of spinning. Spinning
threads of two processes on two cores starve each other: the same run took 91 s instead of 34 s
(docs/crosscheck-run.md). It changes no result; nothing is timed in a worker."""


@contextlib.contextmanager
def _worker_environment():
    """:data:`WORKER_ENVIRONMENT` in ``os.environ`` while workers start (they inherit it), unless the
    user set those variables; this process's own environment comes back unchanged."""
    added = {key: value for key, value in WORKER_ENVIRONMENT.items() if key not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            del os.environ[key]


def default_workers() -> int:
    """One check worker on a CPU-only machine with 2+ cores; none beside an accelerator (a second
    process would claim its memory too)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 1 if jax.default_backend() == "cpu" and cores >= 2 else 0


@dataclass
class _Pool:
    """Worker processes, the queue only they take from, the queue this process shares with them, and
    their results (none at all when ``workers == 0``)."""

    processes: list = field(default_factory=list)
    own: object = None
    shared: object = None
    results: object = None

    @classmethod
    def start(cls, own: list, shared: list, workers: int, options: Options) -> _Pool:
        if not workers or not (own or shared):
            return cls()
        context = multiprocessing.get_context("spawn")
        pool = cls([], context.Queue(), context.Queue(), context.Queue())
        for queue, jobs, stops in ((pool.own, own, workers), (pool.shared, shared, workers + 1)):
            for job in jobs:
                queue.put(job)
            for _ in range(stops):  # one stop sign for each process that takes from this queue
                queue.put(None)
        with _worker_environment():
            for _ in range(workers):
                args = ((pool.own, pool.shared), pool.results, options)
                pool.processes.append(context.Process(target=_worker, args=args, daemon=True))
                pool.processes[-1].start()
        return pool

    def shared_jobs(self, every: list):
        """The jobs for this process: from the shared queue, or all of ``every`` without workers."""
        return iter(self.shared.get, None) if self.processes else iter(every)

    def collect(self, store: Callable) -> None:
        """Store every result that has arrived."""
        if self.results is not None:
            with contextlib.suppress(queues.Empty):
                while True:
                    store(*self.results.get_nowait())

    def wait(self, store: Callable, done: Callable[[], bool]) -> None:
        """Store results as they arrive until ``done()`` or no worker is left."""
        while not done() and self.alive():
            with contextlib.suppress(queues.Empty):
                store(*self.results.get(timeout=0.2))
        self.collect(store)

    def alive(self) -> bool:
        return any(process.is_alive() for process in self.processes)

    def stop(self, *, finished: bool) -> str:
        """Make sure no worker runs before anything is timed; their exit codes. Once every result is in
        (``finished``), a worker has nothing left to say and is stopped at once: its interpreter's own
        shutdown takes a second of CPU here. Otherwise each gets time to exit by itself."""
        for process in self.processes:
            if finished and process.is_alive():
                process.terminate()
            process.join(timeout=30)
        return ", ".join(str(process.exitcode) for process in self.processes)


def _check_jobs(cases: list[tuple[str, str]], start: int) -> list[CheckJob]:
    """One job per group, its cases in every dtype asked for; the largest groups first."""
    known = registry.all_cases()
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, dtype in cases:
        case = known.get(name)
        groups.setdefault((case.group if case else "") or name, []).append((name, dtype))
    ordered = sorted(groups.values(), key=len, reverse=True)
    return [CheckJob(start + i, tuple(entries)) for i, entries in enumerate(ordered)]


def run_jobs(
    cases: list[tuple[str, str]],
    probes: list[tuple[str, str]],
    options: Options,
    *,
    workers: int,
    progress,
    timed: list[TimedEntry] = (),
) -> tuple[list[CaseRun], list[dict], list[EntryRun]]:
    """Check every ``(case, dtype)``, probe every ``(module, dtype)``, then time every ``timed`` entry.

    Returns one :class:`CaseRun` per case, in order, the probe's records, and one :class:`EntryRun`
    per timed entry. ``progress`` is a rich ``Progress`` (or anything with
    ``add_task``/``advance``/``start_task``).
    """
    probe_jobs = [ProbeJob(i, name, dtype) for i, (name, dtype) in enumerate(probes)]
    check_jobs = _check_jobs(cases, len(probe_jobs))
    outcomes: dict[int, object] = {}
    bars = {"checks": progress.add_task("checks", total=len(cases))}
    if probe_jobs:
        bars["probe"] = progress.add_task("batch-size probe", total=len(probe_jobs))
    bars["compiling timers"] = progress.add_task("compiling timers", total=len(timed))
    bars["timing"] = progress.add_task("timing", total=len(timed), start=False)

    def store(index: int, outcome) -> None:
        outcomes[index] = outcome
        is_probe = index < len(probe_jobs)
        progress.advance(bars["probe" if is_probe else "checks"], 1 if is_probe else len(outcome))

    pool = _Pool.start(probe_jobs, check_jobs, workers, options)
    prepared = _prepare_timed(timed, options, pool, store, progress, bars["compiling timers"])
    for job in pool.shared_jobs(probe_jobs + check_jobs):  # this process joins in
        store(job.index, job.run(options))
        pool.collect(store)
    finished = lambda: len(outcomes) == len(probe_jobs) + len(check_jobs)  # noqa: E731
    pool.wait(store, finished)
    codes = pool.stop(finished=finished())
    pool.collect(store)
    progress.start_task(bars["timing"])
    measured = measure_groups(
        timed, prepared, repeats=options.repeats, advance=lambda done: progress.advance(bars["timing"], done)
    )
    timings = [
        EntryRun(entry, error=outcome) if isinstance(outcome, str) else EntryRun(entry, timings=outcome)
        for entry, outcome in zip(timed, measured, strict=True)
    ]
    lost = f"the check worker exited (code {codes})"
    by_case = {(run.name, run.dtype): run for job in check_jobs for run in outcomes.get(job.index) or []}
    runs = [by_case.get(key) or CaseRun(*key, error=lost) for key in cases]
    probe_records = [
        r
        for job in probe_jobs
        for r in outcomes.get(job.index) or [failed_record(job.module, job.dtype, "the worker exited")]
    ]
    return runs, probe_records, timings


def _prepare_timed(timed, options: Options, pool: _Pool, store, progress, bar) -> list:
    """Each timed entry's calls made ready here (:func:`prepare_entry`), or the error that stopped them."""
    prepared, made = [], {}
    for entry in timed:
        try:
            prepared.append(
                prepare_entry(
                    entry,
                    seed=options.seed,
                    device=jax_device(options.device),
                    torch_device=torch_device(options.device),
                    mesh=options.mesh,
                    backward=options.backward,
                    made=made,
                )
            )
        except Exception as error:  # an entry that cannot be timed is reported; the run goes on
            prepared.append(f"timing: {_failure(error)}")
        progress.advance(bar)
        pool.collect(store)
    return prepared
