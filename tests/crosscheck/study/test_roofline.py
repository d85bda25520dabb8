"""The roofline: each row's least time is the slower of compute at the GEMM peak and its bytes at the
bandwidth of where its data lives; a row above the roof is flagged. No timing is asserted (DESIGN.md)."""

import json
import pathlib

import pytest

from crosscheck.study import names
from crosscheck.study.engine import Traffic
from crosscheck.study.roofline import SANE, annotate, last_level_cache_bytes, limits

COMMITTED = pathlib.Path(__file__).resolve().parents[3] / "docs" / "results" / "study-cpu" / "study.json"


def _limits_rows(cache=True):
    rows = [
        {"study": names.PEAK, "framework": "jax", "median_s": 1.0, "flops": 100e9},
        {"study": names.PEAK, "framework": "torch", "median_s": 2.0, "flops": 100e9},
        {"study": names.BANDWIDTH, "level": "memory", "median_s": 1.0, "bytes": 10e9, "flops": 1},
        {"study": names.BANDWIDTH, "level": "memory", "median_s": 1.0, "bytes": 20e9, "flops": 1},
    ]
    if cache:
        cache = {"level": "cache", "median_s": 1.0, "bytes": 80e9, "flops": 1, "footprint_bytes": 1e6}
        rows.append({"study": names.BANDWIDTH} | cache)
    return rows


def test_the_limits_are_the_best_of_both_frameworks_per_level():
    assert limits(_limits_rows()) == {
        "flops_per_s": 100e9,
        "memory_bytes_per_s": 20e9,
        "cache_bytes_per_s": 80e9,
    }


def test_a_plain_float32_gemm_of_the_kernel_parity_rows_faster_than_the_peak_shapes_raises_the_peak():
    rows = _limits_rows()
    parity = {"study": "per-head", "impl": names.JAX_BMM, "median_s": 1.0, "flops": 120e9}
    bfloat16 = {"study": "per-head", "impl": names.JAX_BMM_BF16, "median_s": 1.0, "flops": 500e9}
    jaxlin = {"study": "per-head", "impl": names.JAXLIN_AUTO, "median_s": 1.0, "flops": 130e9}
    assert limits(rows + [parity, bfloat16])["flops_per_s"] == 120e9  # bfloat16 is not the float32 peak
    annotate(rows + [parity, jaxlin], cache_bytes=None)
    assert parity["roofline_fraction"] == 1.0 and "above_roofline" not in parity
    assert jaxlin["roofline_fraction"] == pytest.approx(130 / 120) and jaxlin["above_roofline"]


def test_a_memory_bound_row_is_judged_by_bytes_over_the_bandwidth_of_where_its_data_lives():
    big = {"study": "s", "median_s": 0.2, "flops": 1e9, "bytes": 2e9, "footprint_bytes": 4e9}
    small = {"study": "s", "median_s": 0.01, "flops": 1e6, "bytes": 4e8, "footprint_bytes": 1e6}
    rows = annotate(_limits_rows() + [big, small], cache_bytes=32 * 2**20)
    assert big["bound"] == "memory" and big["roofline_fraction"] == pytest.approx(0.5)  # 2e9 B / 20 GB/s
    assert small["bound"] == "memory" and small["roofline_fraction"] == pytest.approx(0.5)  # 4e8 B / 80 GB/s
    assert big["gbps"] == pytest.approx(10) and big["gflops"] == pytest.approx(5)
    assert all("above_roofline" not in r for r in rows)


def test_without_a_cache_measurement_every_row_gets_the_memory_bandwidth():
    small = {"study": "s", "median_s": 0.01, "flops": 1e6, "bytes": 4e8, "footprint_bytes": 1e6}
    annotate(_limits_rows(cache=False) + [small], cache_bytes=32 * 2**20)
    assert small["roofline_fraction"] == pytest.approx(2.0) and small["above_roofline"]


def test_a_row_faster_than_its_roof_is_flagged_as_a_measurement_error():
    impossible = {"study": "s", "median_s": 0.5, "flops": 100e9, "bytes": 1.0, "footprint_bytes": 1.0}
    annotate(_limits_rows() + [impossible], cache_bytes=None)
    assert impossible["roofline_fraction"] == pytest.approx(2.0) and impossible["above_roofline"]
    assert SANE < 2.0


def test_an_untimed_row_or_one_without_bytes_gets_what_can_be_computed():
    failed = {"study": "s", "impl": "x", "error": "boom"}
    compute_only = {"study": "s", "median_s": 2.0, "flops": 100e9}
    annotate(_limits_rows() + [failed, compute_only], cache_bytes=None)
    assert "roofline_fraction" not in failed and "gbps" not in compute_only
    assert compute_only["bound"] == "compute" and compute_only["roofline_fraction"] == pytest.approx(0.5)


def test_traffic_counts_inputs_once_per_call_and_every_rotated_input_set_in_the_footprint():
    traffic = Traffic(inputs=100, weights=10, outputs=1)
    assert traffic.moved == 111 and traffic.footprint(3) == 311


def test_the_cache_size_is_read_where_the_machine_tells_it():
    size = last_level_cache_bytes()
    assert size is None or size >= 2**16


def test_no_row_of_the_committed_study_is_above_its_roofline():
    records = json.loads(COMMITTED.read_text())["measurements"]
    timed = [r for r in records if "median_s" in r and r.get("flops")]
    assert timed and all("roofline_fraction" in r for r in timed)
    above = [
        (r["impl"], r["config"], r["roofline_fraction"])
        for r in records
        if r.get("roofline_fraction", 0) > SANE
    ]
    assert above == []
