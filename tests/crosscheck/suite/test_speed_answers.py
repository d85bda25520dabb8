"""The speed words of the four answers, driven by a stub timing engine that returns noisy samples (no
real timing here): the words follow the intervals, runs never contradict each other, and a change of
load that hits every call of a round alike changes nothing."""

import itertools
import re

import numpy as np
import pytest

from crosscheck.reporting.answer_lines import answer_lines
from crosscheck.reporting.speed_diff import contradictions
from crosscheck.reporting.speed_report import entry_record, speed_rows
from crosscheck.runtime.timing import Timing
from crosscheck.suite.answers import answers
from crosscheck.suite.jobs import EntryRun
from crosscheck.suite.seed_shapes import all_timed_entries
from crosscheck.suite.seed_timing import PreparedEntry, measure_groups

MS = 1e-3
TRUE_S = {  # (entry, framework): seconds per forward call
    ("linear", "jax"): 10 * MS,
    ("linear", "torch"): 12 * MS,
    ("batch-invariant-linear", "jax"): 15 * MS,
    ("batch-invariant-linear", "torch"): 30 * MS,
    ("pointwise-matmul", "jax"): 10 * MS,
    ("pointwise-matmul", "torch"): 12 * MS,
    ("pointwise-conv", "jax"): 10 * MS,  # as fast as Linear
    ("pointwise-conv", "torch"): 18 * MS,  # 1.5× slower than Linear
    ("pooled-output-linear-full-reorder", "jax"): 4 * MS,
    ("pooled-output-linear-full-reorder", "torch"): 5 * MS,
    ("pooled-output-linear-full-literal", "jax"): 160 * MS,
    ("pooled-output-linear-full-literal", "torch"): 200 * MS,
    ("perhead-einsum-bmm", "jax"): 12 * MS,
    ("perhead-einsum-bmm", "torch"): 9 * MS,
    ("perhead-vmap-vmap", "jax"): 12.2 * MS,  # as fast as einsum
    ("perhead-vmap-vmap", "torch"): 15 * MS,
}


def stub_engine(noise: float, seed: int, load=lambda round_: 1.0):
    """A timing engine in place of :func:`crosscheck.runtime.timing.measure`: each call's true time
    times ``load(round)`` (the machine, the same for every call of a round) times its own lognormal
    noise of relative size ``noise``."""
    rng = np.random.default_rng(seed)

    def measure(calls, *, repeats):
        timings = {}
        for name, framework, kind in calls:
            true = TRUE_S[name, framework] / (100 if kind == "dispatch" else 1)
            samples = [true * load(r) * float(np.exp(rng.normal(0, noise))) for r in range(repeats)]
            timings[name, framework, kind] = Timing(
                float(np.median(samples)), 0.0, min(samples), max(samples), 0.1, repeats, tuple(samples)
            )
        return timings

    return measure


def _run(engine, repeats: int = 10) -> dict:
    """A report's ``answers`` and ``timing`` sections from the stub engine's samples."""
    entries = all_timed_entries()
    prepared = [
        PreparedEntry({(f, kind): None for f in ("jax", "torch") for kind in ("forward", "dispatch")}, 1e-3)
        for _ in entries
    ]
    measured = measure_groups(entries, prepared, repeats=repeats, engine=engine)
    runs = [EntryRun(entry, timings=timings) for entry, timings in zip(entries, measured, strict=True)]
    timing = {"entries": [entry_record(run) for run in runs]}
    return {"answers": answers([], [], runs), "timing": timing}


def _lines(report: dict) -> list[str]:
    return answer_lines(report["answers"])


NUMBERS = r"([\d.]+)× (faster|slower)(?: than Linear)? \(95%: ([\d.]+)–([\d.]+)×\)"


def _said(before: str, after: str, line: str) -> tuple[float, str]:
    """The ratio and the word the line says between ``before`` and ``after``; its interval holds it."""
    found = re.search(re.escape(before) + NUMBERS + re.escape(after), line)
    assert found, line
    ratio, word, low, high = found.groups()
    assert float(low) <= float(ratio) <= float(high)
    return float(ratio), word


def test_clear_differences_read_faster_or_slower_and_ties_read_within_noise():
    pooling, pointwise, batch_size, per_head = _lines(_run(stub_engine(noise=0.03, seed=0)))
    ratio, word = _said("Pooling first is ", " in jaxlin (1", pooling)
    assert 38 < ratio < 42 and word == "faster"
    ratio, word = _said("it is ", " in torch_ref (nn.Conv1d)", pointwise)
    assert 1.4 < ratio < 1.6 and word == "slower"
    assert "and as fast as Linear (within noise, 95%: " in pointwise
    assert "its time) in jaxlin (PointwiseConv" in pointwise
    assert re.search(r"at 1\.\d+× Linear's time \(95%: [\d.]+–[\d.]+×\) in jaxlin and 2\.\d+×", batch_size)
    assert "jaxlin's fastest, einsum, vmap (within noise; " in per_head  # 12 ms and 12.2 ms: a set
    ratio, word = _said("), is ", " than torch_ref's fastest, bmm (", per_head)
    assert 1.25 < ratio < 1.45 and word == "slower"


@pytest.mark.parametrize("noise", [0.03, 0.1, 0.3])
def test_no_two_runs_contradict_each_other(noise):
    reports = [_run(stub_engine(noise, seed)) for seed in range(8)]
    for a, b in itertools.combinations(reports, 2):
        assert contradictions(a, b) == []
    pointwise_lines = [_lines(report)[1] for report in reports]
    assert not any(" faster than Linear" in line for line in pointwise_lines)  # conv is never faster


def test_heavy_noise_widens_the_intervals_and_what_is_still_said_is_right():
    lines = [_lines(_run(stub_engine(noise=0.5, seed=seed), repeats=5))[1] for seed in range(10)]
    conv_in_jaxlin = [line.split(" and ")[-1] for line in lines]  # as fast as Linear, in truth
    assert all(part.startswith("as fast as Linear (within noise") for part in conv_in_jaxlin)
    assert not any("faster than Linear" in line for line in lines)
    assert any(line.count("within noise") == 2 for line in lines)  # 1.5× not told apart from 1 there


def test_a_load_change_that_hits_every_call_of_a_round_alike_cancels_out():
    every_other_round_slow = stub_engine(noise=0.02, seed=1, load=lambda r: 3.0 if r % 2 else 1.0)
    report = _run(every_other_round_slow)
    pooling = report["answers"][0]["speed"]["jax"]
    assert pooling["interval"][0] > 35 and pooling["interval"][1] < 46  # paired rounds: still 40×
    assert "in jaxlin (PointwiseConv" in _lines(report)[1] and "within noise" in _lines(report)[1]


def test_the_table_gives_each_ratio_its_interval_and_the_samples_behind_it():
    records = _run(stub_engine(noise=0.03, seed=0))["timing"]["entries"]
    entries = {record["name"]: record for record in records}
    low, high = entries["batch-invariant-linear"]["speed_ratio_interval"]
    assert 1.8 < low <= entries["batch-invariant-linear"]["speed_ratio"] <= high < 2.2  # 30 ms / 15 ms
    assert len(entries["linear"]["timings"]["jax"]["forward"]["samples_s"]) == 10
    cell = dict((row[0], row[5]) for row in speed_rows(records))["batch-invariant-linear"]
    assert cell == f"{entries['batch-invariant-linear']['speed_ratio']:.3g}× ({low:.3g}–{high:.3g})"
