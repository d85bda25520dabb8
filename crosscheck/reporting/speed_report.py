"""The ``timing`` section of a ``crosscheck run`` report: each timed entry at its seed shape
(:mod:`crosscheck.suite.seed_shapes`), forward medians of both frameworks, their ratio with its
interval (:mod:`crosscheck.runtime.ratio_intervals`: per-round ratios of the interleaved rounds), and
the dispatch cost (the same call on one row) apart.

>>> from crosscheck.runtime.timing import Timing
>>> t = Timing(2e-3, 1e-4, 2e-3, 3e-3, 0.1, 5)
>>> timings = {"jax": {"forward": t.as_dict()}, "torch": {"forward": t.as_dict()}}
>>> record = {"name": "linear", "shape": "(4, 8)→8", "covers": ["linear"], "timings": timings}
>>> record |= {"speed_ratio": 1.3, "speed_ratio_interval": [1.2, 1.4]}
>>> speed_rows([record])
[('linear', '(4, 8)→8', '1', '2 ms', '2 ms', '1.3× (1.2–1.4)', '–', '–')]
>>> speed_rows([record | {"speed_ratio": 1.02, "speed_ratio_interval": [0.97, 1.1]}])[0][5]
'≈ 1.02× (0.97–1.1)'
"""

from __future__ import annotations

from crosscheck.reporting.answer_lines import seconds
from crosscheck.runtime.ratio_intervals import paired_ratio, side_of

HEADERS = (
    "timed entry",
    "shape",
    "covers",
    "jax fwd",
    "torch fwd",
    "torch/jax",
    "jax dispatch",
    "torch dispatch",
)

NOTE = (
    "One entry per distinct computation, timed in float32 at the shape of its question (where compute "
    "dominates), after every check, with nothing else running: medians of the steady state, both "
    "frameworks interleaved round by round; torch/jax > 1 means jaxlin is faster: the median of the "
    "per-round ratios, with its 95% bootstrap interval in brackets; '≈' where that interval is not "
    "wholly beyond 1 ± 5% (as fast, within noise). 'covers' counts the checked cases that compute the "
    "same thing. 'dispatch' is the same call on one row: what a call "
    "costs beyond its arithmetic."
)


def entry_record(run) -> dict:
    """One entry of ``report["timing"]["entries"]`` from a :class:`crosscheck.suite.jobs.EntryRun`."""
    entry = run.entry
    record: dict[str, object] = {"name": entry.name, "shape": entry.shape, "covers": list(entry.covers)}
    if run.error is not None:
        return record | {"error": run.error}
    nested: dict[str, dict] = {}
    for (framework, kind), timing in run.timings.items():
        nested.setdefault(framework, {})[kind] = timing.as_dict() | {"samples_s": list(timing.samples_s)}
    record["timings"] = nested
    for kind, key in (("forward", "speed_ratio"), ("forward_backward", "speed_ratio_forward_backward")):
        if ("jax", kind) in run.timings:
            jax, torch = run.timings["jax", kind], run.timings["torch", kind]
            ratio = paired_ratio(torch.samples_s, jax.samples_s)
            record[key], record[f"{key}_interval"] = ratio.ratio, [ratio.low, ratio.high]
    return record


def _ratio_cell(record: dict) -> str:
    """``"1.4× (1.3–1.5)"``, ``"≈ 1.02× (0.97–1.1)"`` within noise; the ratio alone without an interval."""
    ratio = float(record["speed_ratio"])
    if "speed_ratio_interval" not in record:
        return f"{ratio:.2g}×"
    low, high = (float(value) for value in record["speed_ratio_interval"])
    mark = "≈ " if side_of(low, high) == 0 else ""
    return f"{mark}{ratio:.3g}× ({low:.3g}–{high:.3g})"


def _median(record: dict, framework: str, kind: str) -> str:
    timing = record.get("timings", {}).get(framework, {}).get(kind)
    return "–" if timing is None else seconds(float(timing["median_s"]))


def speed_rows(entries: list[dict]) -> list[tuple[str, ...]]:
    """One row per timed entry under :data:`HEADERS`; an entry that failed shows its error."""
    rows = []
    for record in entries:
        cells = [record["name"], record["shape"], str(len(record["covers"]))]
        if "error" in record:
            rows.append((*cells, record["error"], "", "", "", ""))
            continue
        cells += [_median(record, "jax", "forward"), _median(record, "torch", "forward")]
        cells.append(_ratio_cell(record))
        cells += [_median(record, "jax", "dispatch"), _median(record, "torch", "dispatch")]
        rows.append(tuple(cells))
    return rows
