"""The four answers: built from a run's own results (here a small fake result set), one line each,
printed before anything else, and saying what the run did not measure."""

import io

import numpy as np
from rich.console import Console

from crosscheck.porting.verdicts import CaseResult, Evidence, OutputTruth, judge_analytic
from crosscheck.reporting import run_report
from crosscheck.reporting.answer_lines import answer_lines
from crosscheck.runtime.timing import Timing
from crosscheck.suite.answers import answers
from crosscheck.suite.check_groups import CaseRun
from crosscheck.suite.jobs import EntryRun
from crosscheck.suite.seed_shapes import TimedEntry

BASE = np.array([[1.0, -2.0], [0.5, 4.0]])
MAGNITUDE = np.abs(BASE) + 1.0


def _run(name: str, output: np.ndarray = BASE, dtype: str = "float32") -> CaseRun:
    """A passing check whose float64 output is ``output``."""
    item = judge_analytic("output", Evidence(output, output, output, output), MAGNITUDE, 8, dtype)
    return CaseRun(name, dtype, CaseResult(name, dtype, [item], truth=OutputTruth(output, MAGNITUDE, 8)))


class _Named:
    """A case stand-in for :class:`TimedEntry`: only its name matters here."""

    def __init__(self, name):
        self.name = name


NOISE = {"jax": (1.0, 1.02, 0.98, 1.01, 0.99), "torch": (1.0, 0.98, 1.02, 0.99, 1.01)}  # per round


def _timing(median_s: float, framework: str) -> Timing:
    samples = tuple(median_s * factor for factor in NOISE[framework])
    return Timing(median_s, 0.0, min(samples), max(samples), 0.1, 5, samples)


def _entry(name: str, jax_s: float, torch_s: float, shape: str) -> EntryRun:
    """A timed entry whose forward medians are ``jax_s`` and ``torch_s``, each round a little off."""
    timings = {(f, "forward"): _timing(t, f) for f, t in (("jax", jax_s), ("torch", torch_s))}
    return EntryRun(TimedEntry(_Named(name), shape, (name,), None), timings)


def _probe(module: str, framework: str, differing: list[int], ratio: float) -> dict:
    mode = "torch" if framework == "torch_ref" else "jax.jit"
    record = {"module": module, "framework": framework, "mode": mode, "dtype": "float32", "passed": True}
    return record | {"differing_batch_sizes": differing, "max_error_over_allowance": ratio}


def _fake_run():
    relu_differs = BASE + np.array([[0.0, 1.0], [0.0, 0.0]])  # pooling at the input: another function
    runs = [
        _run("pooled-output-linear-full-reorder"),
        _run("pooled-output-linear-full-literal", BASE * (1 + 2.0**-52)),  # one float64 rounding apart
        _run("pooled-input-relu-full-literal", relu_differs),
        _run("pooled-output-relu-full-literal"),
        _run("linear"),
        _run("pointwise-conv"),
        _run("perhead-einsum-bmm"),
        _run("perhead-loop-vmap"),
    ]
    entries = [
        _entry("linear", 0.010, 0.012, "(16, 1024, 256)→256"),
        _entry("batch-invariant-linear", 0.015, 0.030, "(16, 1024, 256)→256"),
        _entry("pointwise-conv", 0.008, 0.018, "(16, 1024, 256)→256"),
        _entry("pooled-output-linear-full-reorder", 0.004, 0.005, "(16, 2048, 512) 512→512→16"),
        _entry("pooled-output-linear-full-literal", 0.160, 0.200, "(16, 2048, 512) 512→512→16"),
        _entry("perhead-einsum-bmm", 0.012, 0.009, "(32×64 rows, 16 heads, 128→128)"),
        _entry("perhead-vmap-vmap", 0.011, 0.015, "(32×64 rows, 16 heads, 128→128)"),
    ]
    probes = [
        _probe("linear", "jaxlin", [2, 4, 256], 0.044),
        _probe("linear", "torch_ref", [8, 16], 0.024),
        _probe("batch-invariant-linear", "jaxlin", [], 0.0),
        _probe("batch-invariant-linear", "torch_ref", [], 0.0),
    ]
    return runs, probes, entries


def test_the_four_lines_are_built_from_the_results():
    runs, probes, entries = _fake_run()
    lines = answer_lines(answers(runs, probes, entries))
    assert lines[0].startswith(
        "1. Pool before or after the linear layers? Without an activation: the same function (max diff "
    )
    assert "with relu between them, pooling at the input is a different function (" in lines[0]
    assert lines[0].endswith(
        "Pooling first is 40× faster (95%: 40–40×) in jaxlin (160 ms → 4 ms) and 40× faster (95%: 40–40×) in "
        "torch_ref (200 ms → 5 ms) at (16, 2048, 512) 512→512→16."
    )
    assert lines[1] == (
        "2. Is Conv1d(kernel_size=1) the same as Linear? The same function (max diff 0× the float64 bound). "
        "At (16, 1024, 256)→256 it is 1.5× slower than Linear (95%: 1.5–1.5×) in torch_ref (nn.Conv1d) and "
        '1.25× faster than Linear (95%: 1.25–1.25×) in jaxlin (PointwiseConv impl="conv").'
    )
    assert lines[2] == (
        "3. Why does a Linear's output change with the batch size? Rounding, not different math: rows differ "
        "from the row alone at batch sizes 2–256 by at most 0.044× the rounding allowance; "
        "BatchInvariantLinear gave the same bits at every batch size tried, at 1.5× Linear's time (95%: "
        "1.5–1.5×) in jaxlin and 2.5× Linear's time (95%: 2.5–2.5×) in torch_ref at (16, 1024, 256)→256."
    )
    assert lines[3] == (
        "4. h independent per-head linear layers in one pass? jaxlin's einsum, vmap and loop and torch_ref's "
        "bmm, vmap and loop are the same function (worst 0× the float64 bound over 2 checks). At (32×64 rows, "
        "16 heads, 128→128) jaxlin's fastest, vmap (11 ms), is 1.22× slower (95%: 1.17–1.27×) than "
        "torch_ref's fastest, bmm (9 ms)."
    )


def test_the_ratio_in_a_line_is_the_measured_one():
    runs, probes, entries = _fake_run()
    pooling = answers(runs, probes, entries)[0]
    assert 0 < pooling["linear"]["ratio"] < 1 and pooling["linear"]["same_function"]
    assert f"max diff {pooling['linear']['ratio']:.2g}× the float64 bound" in answer_lines([pooling])[0]
    assert pooling["relu"]["ratio"] > 1e10 and not pooling["relu"]["same_function"]


def test_what_a_run_did_not_measure_is_said_not_guessed():
    lines = answer_lines(answers([_run("linear")], [], []))
    assert lines == [
        "1. Pool before or after the linear layers? Without an activation: not checked in this run (needs "
        "pooled-output-linear-full-reorder, pooled-output-linear-full-literal, pooled-output-linear-masked-reorder, "
        "pooled-output-linear-masked-literal). Not timed in this run.",
        "2. Is Conv1d(kernel_size=1) the same as Linear? Not checked in this run (needs pointwise-conv, linear). "
        "Not timed in this run.",
        "3. Why does a Linear's output change with the batch size? Not probed in this run.",
        "4. h independent per-head linear layers in one pass? Not checked in this run (needs perhead-*). "
        "Not timed in this run.",
    ]


def test_the_summary_starts_with_the_four_answers():
    runs, probes, entries = _fake_run()
    records = [run_report.case_record(run) for run in runs]
    report = run_report.build_report(
        {"command": "crosscheck run"}, records, answers=answers(runs, probes, entries)
    )
    out = io.StringIO()
    run_report.print_summary(Console(file=out, width=100), report)
    printed = out.getvalue().splitlines()
    assert printed[:4] == answer_lines(report["answers"])  # one line each, not wrapped at the width
    markdown = run_report.render_markdown(report).splitlines()
    assert markdown[0] == "# crosscheck run" and markdown[2:6] == answer_lines(report["answers"])


def _ratio(ratio: float, low: float, high: float) -> dict:
    return {"ratio": ratio, "interval": [low, high], "confidence": 0.95, "rounds": 10, "times_s": [0, 0]}


def test_faster_or_slower_only_when_the_whole_interval_is_beyond_five_percent():
    answer = {
        "question": "pointwise",
        "verdict": {"same_function": True, "ratio": 0.04},
        "speed": {"torch": _ratio(1.2, 1.01, 1.4), "jax": _ratio(0.8, 0.75, 0.85)},
        "shape": "(16, 1024, 256)→256",
    }
    text = answer_lines([answer])[0]
    assert "it is as fast as Linear (within noise, 95%: 1.01–1.4× its time) in torch_ref (nn.Conv1d)" in text
    assert '1.25× faster than Linear (95%: 1.18–1.33×) in jaxlin (PointwiseConv impl="conv")' in text
    answer["speed"]["torch"] = _ratio(1.2, 1.06, 1.4)
    assert "it is 1.2× slower than Linear (95%: 1.06–1.4×) in torch_ref" in answer_lines([answer])[0]


def test_the_fastest_names_a_set_when_others_are_within_noise_of_it():
    answer = {
        "question": "per_head",
        "verdict": {"missing": ["perhead-*"]},
        "fastest": {
            "jax": {"impl": "einsum", "time_s": 0.0151, "within_noise": ["einsum", "vmap"]},
            "torch": {"impl": "bmm", "time_s": 0.008, "within_noise": ["bmm"]},
        },
        "speed": _ratio(1.03, 0.9, 1.2),
        "shape": "(32×64 rows, 16 heads, 128→128)",
    }
    assert answer_lines([answer])[0].endswith(
        "jaxlin's fastest, einsum, vmap (within noise; einsum 15.1 ms), is as fast (within noise, 95%: "
        "0.9–1.2×) as torch_ref's fastest, bmm (8 ms)."
    )
