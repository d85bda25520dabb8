"""``train-<optimizer>.png``: curves that lie on each other both show (a wide pale band under thin marked
lines, markers at alternating steps) and the legend says which lies on which."""

import pytest

from crosscheck.training import plots

pytest.importorskip("matplotlib")


def _record(steps: int = 48) -> dict:
    """Distances where JAX's own rounding equals the distance between the frameworks, as in Adam's run."""
    rows = []
    for step in range(steps):
        distance = 1e-7 * (step + 1)
        rows.append(
            {
                "step": step,
                "loss_jax": 1.0 / (step + 1),
                "loss_torch": 1.0 / (step + 1),
                "distance": distance,
                "allowance": 3 * distance,
                "own_jax": distance,
                "own_torch": distance / 10,
                "ratio": 0.5,
                "float64_ratio": 1e-3,
            }
        )
    optimizer = {"name": "adam", "lr": 1e-3, "schedule": "constant"}
    return {"steps": rows, "optimizer": optimizer, "model": "linear", "plant": "none"} | {
        "passed": True,
        "first_failure": None,
    }


def test_coinciding_curves_are_told_apart(tmp_path, monkeypatch):
    kept = []
    real = plots.pyplot()
    monkeypatch.setattr(real, "close", kept.append)
    plots.plot_training(str(tmp_path / "train-adam.png"), _record())
    distance_axis = kept[0].axes[1]
    lines = {line.get_label(): line for line in distance_axis.get_lines()}
    band = lines[plots.CURVES["distance"]]
    jax_label = plots.CURVES["own_jax"] + " (lies on the wide band)"
    assert jax_label in lines and plots.CURVES["own_torch"] in lines  # torch's own curve lies elsewhere
    assert band.get_linewidth() > 3 * lines[jax_label].get_linewidth() and band.get_alpha() < 0.5
    assert lines[jax_label].get_marker() not in ("", "None")
    loss_axis = kept[0].axes[0]
    widths = sorted(line.get_linewidth() for line in loss_axis.get_lines())
    assert widths[-1] > 3 * widths[0]  # the two identical losses: a wide band and a thin dashed line


def test_marked_curves_start_their_markers_at_different_steps():
    first, second = plots._markevery(200, 0), plots._markevery(200, 1)
    assert first[1] == second[1] == 16 and first[0] != second[0]
    assert plots.coincide([1.0, 2.0, None], [1.05, 1.9, 3.0]) and not plots.coincide([1.0], [2.0])
