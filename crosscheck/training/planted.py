"""Planted differences: three porting mistakes put into the JAX side, which the verdict must catch.

- ``adam-eps``: Adam's epsilon inside the square root (``optax.adam(eps=0, eps_root=eps)``), where
  torch adds it outside, after the bias correction;
- ``bias-decay``: weight decay on the biases too (``mask=None``), where torch's biases sit in a
  parameter group without it;
- ``schedule-offset``: the learning-rate schedule one step ahead (``schedule(count + 1)``), as a
  ``scheduler.step()`` called before ``optimizer.step()`` does it.

>>> plant_problem("adam-eps", OptimizerConfig("sgd"))
'--plant adam-eps changes Adam, not sgd; choose --optimizer adam or adamw'
>>> plant_options("schedule-offset", OptimizerConfig("adam"))
{'offset': 1}
"""

from __future__ import annotations

from crosscheck.training.choices import PLANTS
from crosscheck.training.optimizers import OptimizerConfig

DESCRIPTIONS = {
    "none": "honest: both frameworks configured to compute the same update",
    "adam-eps": "JAX side: Adam's epsilon inside the square root (eps_root=eps, eps=0)",
    "bias-decay": "JAX side: weight decay on the biases too (no mask); torch decays the weights only",
    "schedule-offset": "JAX side: the learning-rate schedule one step ahead (schedule(count + 1))",
}


def plant_problem(plant: str, config: OptimizerConfig) -> str | None:
    """Why ``plant`` cannot be planted into ``config`` (a usage error), or ``None`` when it can."""
    if plant not in PLANTS:
        return f"--plant {plant}: unknown; choose from {', '.join(PLANTS)}"
    if plant == "adam-eps" and config.name == "sgd":
        return "--plant adam-eps changes Adam, not sgd; choose --optimizer adam or adamw"
    if plant == "bias-decay" and config.weight_decay == 0:
        return f"--plant bias-decay needs weight decay, and {config.name} has --weight-decay 0"
    if plant == "schedule-offset" and config.schedule == "constant":
        return "--plant schedule-offset needs a schedule that changes; --schedule constant does not"
    return None


def plant_options(plant: str, config: OptimizerConfig) -> dict:
    """Keyword arguments of :func:`~crosscheck.training.optimizers.optax_transform` that plant it.

    Raises:
        ValueError: the plant does not apply to ``config`` (:func:`plant_problem` says why).
    """
    problem = plant_problem(plant, config)
    if problem:
        raise ValueError(problem)
    return {
        "none": {},
        "adam-eps": {"eps": 0.0, "eps_root": config.eps},
        "bias-decay": {"mask": None},
        "schedule-offset": {"offset": 1},
    }[plant]
