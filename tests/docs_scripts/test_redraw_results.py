"""docs/scripts/redraw_results.py --roofline: the committed study's rows put against the current roofline
rule, measurements untouched, only the roofline's targets recomputed."""

import importlib.util
from pathlib import Path

from crosscheck.study import names

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "redraw_results", ROOT / "docs" / "scripts" / "redraw_results.py"
)
redraw = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(redraw)


def test_stale_flags_go_and_only_the_roofline_targets_change():
    rows = [
        {"study": names.PEAK, "impl": "jax matmul", "config": "p", "median_s": 1.0, "flops": 100e9},
        {"study": names.BANDWIDTH, "impl": "jax sum", "config": "b", "level": "memory", "median_s": 1.0,
         "bytes": 10e9, "flops": 1},
        {"study": "per-head", "impl": names.JAX_BMM, "config": "c", "median_s": 1.0, "flops": 120e9,
         "roofline_fraction": 1.2, "above_roofline": True},
    ]  # fmt: skip
    other = {"target": "t", "name": "jaxlin / torch", "value": 0.5, "met": True, "interval": [0.4, 0.6]}
    highest = "highest fraction of the roofline of any row (above it: a measurement error)"
    roof = {"target": highest, "name": highest, "value": 1.2, "limit": 1.05, "met": False}
    document = {"measurements": rows, "targets": [roof, other]}
    redraw.against_the_roofline_again(document, cache_bytes=None)
    assert rows[2]["roofline_fraction"] == 1.0 and "above_roofline" not in rows[2]
    assert rows[0]["roofline_fraction"] == 100 / 120
    assert document["targets"][0]["value"] == 1.0 and document["targets"][0]["met"]
    assert document["targets"][1] is other  # its interval came from per-round times the JSON leaves out
