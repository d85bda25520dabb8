"""The PNGs of ``crosscheck train``, drawn from the records the JSON holds (so they can be redrawn).

- :func:`plot_training`: one optimizer — both loss curves; the distance between the frameworks
  against its allowance, with each framework's distance to its float64 run; both tiers' ratios.
- :func:`plot_experiment`: accuracy per variant over the seeds with the 95% interval of the mean;
  the paired differences from Linear against the question's 0.6-point gap; the same-init
  Linear-vs-Conv trajectories against their allowance, seed by seed.

>>> CURVES["distance"]
'between the frameworks (float32)'
"""

from __future__ import annotations

import os

import numpy as np

CURVES = {
    "distance": "between the frameworks (float32)",
    "allowance": "allowance c·max(own) + floor",
    "own_jax": "JAX to its float64 run",
    "own_torch": "torch to its float64 run",
}
CURVE_STYLES = {
    "distance": {"color": "tab:blue", "linewidth": 6, "alpha": 0.3, "solid_capstyle": "butt"},
    "allowance": {"color": "tab:orange", "linewidth": 1.5, "linestyle": ":"},
    "own_jax": {"color": "tab:green", "linewidth": 1.2, "linestyle": "-.", "marker": "o", "markersize": 4},
    "own_torch": {"color": "tab:red", "linewidth": 1.2, "linestyle": "--", "marker": "s", "markersize": 4},
}
"""Distinct colour, width, dash and marker per curve: the distance between the frameworks is a wide pale
band under the others, so a curve on top of it (JAX's own rounding often is) shows both."""
CURVE_NICKNAMES = {
    "distance": "the wide band",
    "allowance": "the allowance",
    "own_jax": "the JAX curve",
    "own_torch": "the torch curve",
}
LOSS_STYLES = {
    "jax": {"color": "tab:blue", "linewidth": 5, "alpha": 0.35},
    "torch": {"color": "black", "linewidth": 1, "linestyle": "--"},
}


def pyplot():
    """matplotlib's pyplot on the Agg backend."""
    import matplotlib  # the plot extra: imported only when plots are drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _positive(values) -> np.ndarray:
    """Values for a log axis: None and zeros become NaN (not drawn)."""
    a = np.array([np.nan if v is None else v for v in values], np.float64)
    return np.where(a > 0, a, np.nan)


def coincide(first, second, tolerance: float = 0.1, share: float = 0.9) -> bool:
    """Whether two curves lie on each other: within ``tolerance`` (relative) at ``share`` of the steps
    where both are positive (the first steps, where both are tiny, may differ more).

    >>> coincide([1.0, 2.0, None], [1.05, 1.9, 3.0]), coincide([1.0, 2.0], [1.5, 2.0])
    (True, False)
    """
    a, b = _positive(first), _positive(second)
    both = np.isfinite(a) & np.isfinite(b)
    if not both.any():
        return False
    return bool(np.mean(np.abs(np.log(a[both] / b[both])) <= np.log1p(tolerance)) >= share)


def _markevery(count: int, index: int) -> tuple[int, int]:
    """About a dozen markers per curve, each marked curve starting at its own offset so markers of
    curves that lie on each other alternate instead of hiding one another."""
    every = max(2, count // 12)
    return (index * every // 2 % every, every)


def _distance_curves(axis, steps: list[int], column) -> None:
    """The distance between the frameworks as a wide pale band, the other curves thin and marked on
    top of it, so a curve lying on another still shows (and its label says which it lies on)."""
    drawn: list[str] = []
    for key in CURVES:
        style = dict(CURVE_STYLES[key])
        label = CURVES[key]
        under = next((other for other in drawn if coincide(column(key), column(other))), None)
        if under is not None:
            label += f" (lies on {CURVE_NICKNAMES[under]})"
        if "marker" in style:
            style["markevery"] = _markevery(
                len(steps), len([k for k in drawn if "marker" in CURVE_STYLES[k]])
            )
        axis.plot(steps, _positive(column(key)), label=label, **style)
        drawn.append(key)


def plot_training(path: str, record: dict) -> str:
    """Three panels for one optimizer's record (:func:`~crosscheck.training.outputs.parity_record`);
    returns the file name."""
    plt = pyplot()
    steps = [s["step"] for s in record["steps"]]
    column = lambda key: [s[key] for s in record["steps"]]  # noqa: E731
    figure, (loss_axis, distance_axis, ratio_axis) = plt.subplots(1, 3, figsize=(17, 4.8))
    loss_axis.plot(
        steps[1:], column("loss_jax")[1:], label="jaxlin + optax (wide band)", **LOSS_STYLES["jax"]
    )
    loss_axis.plot(
        steps[1:], column("loss_torch")[1:], label="torch_ref + torch.optim", **LOSS_STYLES["torch"]
    )
    loss_axis.set(xlabel="step", ylabel="training loss (batch)", title="loss")
    _distance_curves(distance_axis, steps, column)
    distance_axis.set(
        xlabel="step",
        ylabel="L2 distance of all parameters",
        yscale="log",
        title="divergence against its allowance",
    )
    ratio_axis.plot(steps, _positive(column("ratio")), label="rounding tier")
    ratio_axis.plot(steps, _positive(column("float64_ratio")), label="same-function tier (float64)")
    ratio_axis.axhline(1.0, color="red", linewidth=1, label="fails above 1")
    ratio_axis.set(xlabel="step", ylabel="worst tensor: distance / allowance", yscale="log", title="verdict")
    if record["first_failure"] is not None:
        for axis in (distance_axis, ratio_axis):
            axis.axvline(record["first_failure"], color="red", linestyle=":", linewidth=1)
    for axis in (loss_axis, distance_axis, ratio_axis):
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    config = record["optimizer"]
    verdict = "pass" if record["passed"] else f"FAIL at step {record['first_failure']}"
    figure.suptitle(
        f"{config['name']} (lr {config['lr']:g}, {config['schedule']}) · model {record['model']} · "
        f"plant {record['plant']} · {verdict}"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return os.path.basename(path)


def _mean_and_interval(axis, x: float, summary: dict) -> None:
    """A black dot at the mean, in points, with its confidence interval as error bars."""
    low, high = (100 * v for v in summary["interval"])
    mean = 100 * summary["mean"]
    axis.errorbar(x, mean, yerr=[[mean - low], [high - mean]], fmt="o", color="black", capsize=4)


def plot_experiment(path: str, record: dict) -> str:
    """Three panels for the experiment's record (:func:`~crosscheck.training.experiment.conv_vs_linear`);
    returns the file name."""
    plt = pyplot()
    names = list(record["variants"])
    figure, (accuracy_axis, difference_axis, trajectory_axis) = plt.subplots(1, 3, figsize=(18, 5.2))
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, record["seeds"])
    for index, name in enumerate(names):
        values = 100 * np.asarray(record["accuracy"][name])
        accuracy_axis.scatter(index + jitter, values, s=14, alpha=0.6)
        _mean_and_interval(accuracy_axis, index + 0.3, record["summary"][name])
    accuracy_axis.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    accuracy_axis.set(ylabel="test accuracy % (torch)", title=f"{record['seeds']} seeds; black: mean, 95% CI")
    others = list(record["differences"])
    gap = 100 * record["user_gap"]
    band = f"±{gap:.1f} points (the question's gap)"
    difference_axis.axhspan(-gap, gap, color="orange", alpha=0.15, label=band)
    for index, name in enumerate(others):
        d = record["differences"][name]
        difference_axis.scatter(index + jitter, 100 * np.asarray(d["values"]), s=14, alpha=0.6)
        _mean_and_interval(difference_axis, index + 0.3, d)
    difference_axis.axhline(0, color="gray", linewidth=1)
    difference_axis.set_xticks(range(len(others)), others, rotation=20, ha="right", fontsize=8)
    difference_axis.set(
        ylabel="accuracy difference, same seed (points)", title="paired differences; black: mean, 95% CI"
    )
    difference_axis.legend(fontsize=8)
    for seed_record in record["per_seed"]:
        steps = seed_record["steps"]
        for framework, color in (("torch", "tab:blue"), ("jax", "tab:orange")):
            ratio = _positive(seed_record["checks"][framework]["conv_ratio"])
            trajectory_axis.plot(
                steps,
                ratio,
                color=color,
                alpha=0.35,
                linewidth=1,
                label=framework if seed_record["seed"] == 0 else None,
            )
    trajectory_axis.axhline(1.0, color="red", linewidth=1, label="fails above 1")
    trajectory_axis.set(
        xlabel="step",
        ylabel="worst tensor: distance / allowance",
        yscale="log",
        title="linear vs conv-same-init trajectories, every seed",
    )
    trajectory_axis.legend(fontsize=8)
    for axis in (accuracy_axis, difference_axis, trajectory_axis):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return os.path.basename(path)
