"""The cost model as a picture: peak resident memory and wall time of each job against the parameter count
of one model, log–log, with the physical floor (memory: both models' float32 weights plus the largest
layer in float64; time: the unavoidable work, alone and with both models widened to float64) and the goal
of 3× one model's float32 weights."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import GB, derived, filled

STYLE = {
    "check-grads": ("tab:blue", "o"),
    "check": ("tab:cyan", "s"),
    "locate-grads": ("tab:red", "^"),
    "locate": ("tab:orange", "v"),
}
FAMILIES = {"bert": "-", "decoder": ":"}


def _series(rows: list[dict], key) -> list[tuple[float, float]]:
    points = [(row["parameters"], key(row)) for row in rows if row.get("parameters") and key(row)]
    return sorted(points)


def _draw(axis, rows: list[dict], key, label: str, color: str, marker: str, family: str, labelled: set):
    points = _series(rows, key)
    if points:
        xs, ys = zip(*points, strict=True)
        shown = label if (id(axis), label) not in labelled else None
        labelled.add((id(axis), label))
        axis.plot(xs, ys, FAMILIES[family], color=color, marker=marker, label=shown, markersize=6)


def _widened_too(row: dict) -> float | None:
    """The cold unavoidable work (forward+backward) plus both models' widening to float64, where timed."""
    unavoidable = row.get("unavoidable") or {}
    if unavoidable.get("cold_s") is None or unavoidable.get("widen_s") is None:
        return None
    return unavoidable["cold_s"] + unavoidable["widen_s"]


def plot(rows: list[dict], path: Path, title: str) -> None:
    """Write the two panels to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [derived(row) for row in filled(rows)]
    figure, (memory, wall) = plt.subplots(1, 2, figsize=(14, 7.5))
    peak = lambda r: r.get("job_peak_bytes") and r["job_peak_bytes"] / GB  # noqa: E731
    shared = [  # (axis, label, value, color, marker): one point per size
        (memory, "floor: 2× weights f32 + largest layer f64", lambda r: r["floor_bytes"] / GB, "black", "."),
        (memory, "goal: 3× one model's weights f32", lambda r: 3 * r["weight_bytes"] / GB, "green", "."),
        (memory, "RSS after building both models", lambda r: r.get("rss_built_bytes", 0) / GB, "grey", "x"),
        (
            wall,
            "unavoidable work (cold, forward+backward)",
            lambda r: (r.get("unavoidable") or {}).get("cold_s"),
            "black",
            ".",
        ),
        (
            wall,
            "unavoidable work + widening to f64 (goal 3)",
            _widened_too,
            "dimgrey",
            "+",
        ),
    ]
    labelled: set = set()
    for family in FAMILIES:
        mine = [row for row in rows if row.get("family") == family]
        for job, (color, marker) in STYLE.items():
            of_job = [row for row in mine if row["job"] == job]
            _draw(memory, of_job, peak, job, color, marker, family, labelled)
            _draw(wall, of_job, lambda r: r.get("wall_s"), job, color, marker, family, labelled)
        # one row per size, one with the unavoidable work where there is one (a 1 B row may lack it)
        ranked = sorted(mine, key=lambda row: bool(row.get("unavoidable")))
        one = list({row["size"]: row for row in ranked}.values())
        for axis, label, value, color, marker in shared:
            _draw(axis, one, value, label, color, marker, family, labelled)
    plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}")
    for axis, ylabel in ((memory, "peak resident memory (GB)"), (wall, "wall time of the job (s)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.yaxis.set_major_formatter(plain)
        axis.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.set_xlabel("parameters of one model")
        axis.set_ylabel(ylabel)
        axis.grid(True, which="major", alpha=0.4)
        axis.grid(True, which="minor", alpha=0.1)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, frameon=False)
    figure.suptitle(f"{title}\nsolid: BERT example · dotted: decoder example", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
