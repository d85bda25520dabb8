"""The probe table's words: what was seen at the sizes tried, and what its numbers mean."""

import io

from rich.console import Console

from crosscheck.reporting.answer_lines import _batch_size
from crosscheck.reporting.probe_report import LEGEND, print_probe_table, probe_section, table_rows


def _record(**overrides) -> dict:
    record = {
        "module": "linear", "framework": "torch_ref", "mode": "torch", "dtype": "bfloat16",
        "batch_sizes": [1, 2, 4, 8, 16], "differing_batch_sizes": [], "rows_compared": 80,
        "rows_bitwise_equal": 80, "fraction_bitwise_equal": 1.0, "max_ulp": 0.0,
        "max_error_over_allowance": 0.0, "repeats": 5, "deterministic": True, "passed": True,
        "verdict": "invariant",
    }  # fmt: skip
    return record | overrides


def test_no_difference_reads_as_what_was_seen_at_these_sizes_not_a_guarantee():
    row = table_rows([_record()])[0]
    assert row[-1] == "no difference seen (batch ≤ 16)"
    assert "invariant" not in row[-1]


def test_the_record_keeps_its_verdict_word():
    record = _record()
    table_rows([record])
    assert record["verdict"] == "invariant"  # probe.json and report.json unchanged


def test_other_verdicts_read_as_before():
    varies = _record(differing_batch_sizes=[2], verdict="varies within rounding", max_ulp=282624.0)
    failed = _record(passed=False, verdict="repeated calls gave different bits")
    rows = table_rows([varies, failed])
    assert rows[0][-1] == "varies within rounding" and rows[0][6] == "282624"
    assert rows[1][-1] == "FAIL: repeated calls gave different bits"


def test_the_legend_explains_max_ulp_and_the_allowance_ratio():
    assert "units in the last place" in LEGEND and "near zero" in LEGEND
    assert "the number the verdict uses" in LEGEND
    assert "not a promise" in LEGEND
    assert probe_section([_record()], [1, 2, 4, 8, 16])[-1] == LEGEND


def test_the_terminal_table_is_followed_by_the_legend():
    out = io.StringIO()
    print_probe_table(Console(file=out, width=400), [_record()], title="t")
    text = " ".join(out.getvalue().split())
    assert "no difference seen (batch ≤ 16)" in text
    assert "max ULP: the largest gap from the row computed alone" in text


def test_the_answer_line_says_no_difference_seen_at_the_sizes_tried():
    module = {"invariant": True, "passed": True, "max_error_over_allowance": 0.0, "differing_batch_sizes": []}
    answer = {"modules": {"linear": module, "batch-invariant-linear": module}, "speed": {}}
    text = _batch_size(answer)
    assert "No difference seen here: every row came out bitwise the same at every batch size tried" in text
    assert "BatchInvariantLinear gave the same bits at every batch size tried" in text
