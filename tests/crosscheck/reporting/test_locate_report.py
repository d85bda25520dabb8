"""The locate report says how the models ran and which weights differ."""

from crosscheck.porting.locating import LocateResult
from crosscheck.reporting.locate_report import locate_record, render_locate


def test_the_report_names_the_mode_the_switched_layers_and_differing_weights():
    result = LocateResult(
        "m", "float32", [], [], [], differing_weights=["dense.kernel differs from dense.weight"]
    )
    result.switched = ["torch Dropout at drop"]
    markdown = render_locate({"command": "crosscheck locate"}, result)
    assert (
        "Both models ran in inference mode; switched from training mode and restored: torch Dropout"
        in markdown
    )
    assert "Weights that differ between the two models: dense.kernel differs from dense.weight" in markdown
    record = locate_record(result)
    assert record["mode"] == "inference" and record["switched"] == ["torch Dropout at drop"]
    assert record["differing_weights"] == ["dense.kernel differs from dense.weight"]
