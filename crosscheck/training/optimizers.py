"""optax and ``torch.optim`` configured to compute the same update, and where they differ by default.

=====================  ==========================================  ==========================================
                       torch.optim                                 optax (as built here)
=====================  ==========================================  ==========================================
SGD momentum           ``b = μ·b + g``; ``p -= lr·b`` (lr outside  ``optax.sgd(lr, momentum=μ)``: ``trace``
                       the buffer, so a schedule acts at once)      then ``-lr`` — the same convention
SGD/Adam weight decay  ``weight_decay``: L2, ``g += wd·p`` before   ``add_decayed_weights(wd, mask)`` chained
                       the moments (coupled)                       *before* the moments
AdamW weight decay     ``p *= 1 - lr·wd``, then the Adam step       ``optax.adamw(..., weight_decay, mask)``:
                       (decoupled; default wd 0.01)                ``-lr·(adam + wd·p)`` (default wd 1e-4)
which parameters       every parameter of a param group: biases     every leaf unless ``mask``: here a mask
decay                  excluded by a group with ``weight_decay=0``  of the kernels, and groups in torch
Adam epsilon           ``m̂ / (√v / √(1-β₂ᵗ) + eps)``: outside the   ``eps`` outside the root as torch;
                       root, after bias correction                 ``eps_root`` (default 0) inside it
bias correction        ``1-βᵗ`` in Python float64                  ``1-βᵗ`` in the working dtype (float32:
                                                                   ~1e-5 off at small t, a rounding error)
schedule               ``LambdaLR``: ``lr(0)`` for the first step;  the update count, 0 for the first update
                       ``scheduler.step()`` after ``opt.step()``
=====================  ==========================================  ==========================================

The schedule is optax's ``warmup_cosine_decay_schedule``; :func:`learning_rate` is its formula in Python
for torch's ``LambdaLR``. Weight decay goes to the weights (kernels), never to biases, in both.

>>> config = OptimizerConfig("adam", lr=1e-3, steps=100)
>>> round(learning_rate(config, 0), 6), round(learning_rate(config, 10), 6), learning_rate(config, 100)
(0.0001, 0.001, 0.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax
import torch

from crosscheck.training.choices import OPTIMIZERS, SCHEDULES

DEFAULTS = {  # lr, weight decay
    "sgd": (0.05, 1e-4),
    "adam": (3e-3, 1e-4),
    "adamw": (3e-3, 1e-2),
}
WARMUP_START = 0.1  # the warmup starts at this fraction of the peak learning rate


@dataclass(frozen=True)
class OptimizerConfig:
    """One optimizer's hyperparameters, for both frameworks.

    ``steps`` is the schedule's length: a linear warmup over the first tenth, then a cosine decay to 0.

    Shape:
        scalars only.
    """

    name: str
    lr: float | None = None
    steps: int = 200
    weight_decay: float | None = None
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    schedule: str = "warmup-cosine"

    def __post_init__(self):
        if self.name not in OPTIMIZERS or self.schedule not in SCHEDULES:
            raise ValueError(
                f"OptimizerConfig(name={self.name!r}, schedule={self.schedule!r}): choose the name from "
                f"{', '.join(OPTIMIZERS)} and the schedule from {', '.join(SCHEDULES)}."
            )
        lr, decay = DEFAULTS[self.name]
        object.__setattr__(self, "lr", lr if self.lr is None else self.lr)
        object.__setattr__(self, "weight_decay", decay if self.weight_decay is None else self.weight_decay)
        if not (self.lr > 0 and self.weight_decay >= 0 and self.steps >= 1):
            raise ValueError(
                f"OptimizerConfig(name={self.name!r}, lr={self.lr}, weight_decay={self.weight_decay}, "
                f"steps={self.steps}): lr must be > 0, weight_decay >= 0 and steps >= 1."
            )

    @property
    def warmup(self) -> int:
        return max(1, self.steps // 10)

    @property
    def decay(self) -> int:
        """The cosine's length: the steps after the warmup (at least one)."""
        return max(self.steps - self.warmup, 1)

    def record(self) -> dict:
        """The hyperparameters as the reports print them."""
        keys = ("name", "lr", "steps", "weight_decay", "momentum", "betas", "eps", "schedule", "warmup")
        return {key: getattr(self, key) for key in keys}


def learning_rate(config: OptimizerConfig, step: int) -> float:
    """The learning rate of update ``step`` (0 for the first), as optax's warmup-cosine computes it."""
    if config.schedule == "constant":
        return config.lr
    start, warmup, decay = WARMUP_START * config.lr, config.warmup, config.decay
    if step < warmup:
        return (start - config.lr) * (1 - step / warmup) + config.lr
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(step - warmup, decay) / decay))


def optax_schedule(config: OptimizerConfig, *, offset: int = 0):
    """The optax schedule, evaluated at ``count + offset`` (``offset=1`` is the planted off-by-one).

    The count is handed over as a float of JAX's default float dtype. optax's own int32 count makes
    its linear warmup compute ``count / steps`` in float32 even with 64-bit mode on, which would put
    float32 rounding into the float64 reference run; in float32 runs nothing changes.
    """
    if config.schedule == "constant":
        return config.lr
    schedule = optax.warmup_cosine_decay_schedule(
        WARMUP_START * config.lr, config.lr, config.warmup, config.warmup + config.decay, 0.0
    )
    return lambda count: schedule(jnp.asarray(count + offset, jnp.result_type(float)))


def kernel_mask(params):
    """True for the kernels (the weights), False for the biases: which leaves get weight decay."""
    return jax.tree_util.tree_map_with_path(lambda path, _: "kernel" in map(_key_name, path), params)


def _key_name(key) -> str:
    """The name in a pytree path entry (a dict key or an attribute)."""
    return str(getattr(key, "key", getattr(key, "name", key)))


def optax_transform(
    config: OptimizerConfig, *, mask=kernel_mask, eps_root: float = 0.0, eps: float | None = None, offset=0
) -> optax.GradientTransformation:
    """The optax transformation matching :func:`torch_optimizer`; the keywords exist to plant
    differences (``mask=None`` decays biases too; ``eps_root`` puts an epsilon inside the root)."""
    lr = optax_schedule(config, offset=offset)
    eps = config.eps if eps is None else eps
    b1, b2 = config.betas
    decay = (
        [optax.add_decayed_weights(config.weight_decay, mask)]
        if config.weight_decay and config.name != "adamw"
        else []
    )
    if config.name == "sgd":
        return optax.chain(*decay, optax.sgd(lr, momentum=config.momentum))
    if config.name == "adam":
        return optax.chain(*decay, optax.adam(lr, b1, b2, eps, eps_root=eps_root))
    return optax.adamw(lr, b1, b2, eps, eps_root=eps_root, weight_decay=config.weight_decay, mask=mask)


def torch_optimizer(config: OptimizerConfig, model: torch.nn.Module):
    """``(optimizer, scheduler)`` for ``model``: weights in a group with the weight decay, biases in one
    without, and a ``LambdaLR`` giving :func:`learning_rate` (call ``scheduler.step()`` after
    ``optimizer.step()``)."""
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if not n.endswith("bias")], "weight_decay": config.weight_decay},
        {"params": [p for n, p in named if n.endswith("bias")], "weight_decay": 0.0},
    ]
    if config.name == "sgd":
        optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    else:
        kind = torch.optim.Adam if config.name == "adam" else torch.optim.AdamW
        optimizer = kind(groups, lr=config.lr, betas=config.betas, eps=config.eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate(config, step) / config.lr
    )
    return optimizer, scheduler


def matching_notes(config: OptimizerConfig) -> list[str]:
    """How the two frameworks are made to compute the same update for ``config``, one line each."""
    wd, schedule = (
        config.weight_decay,
        (
            "optax.warmup_cosine_decay_schedule read at update count k (0 for the first update); torch "
            "LambdaLR giving the same formula, scheduler.step() after optimizer.step()"
            if config.schedule == "warmup-cosine"
            else "a constant learning rate in both"
        ),
    )
    notes = {
        "sgd": [
            f"torch.optim.SGD(momentum={config.momentum}): b = mu*b + g, p -= lr*b; optax.sgd(lr, "
            f"momentum={config.momentum}): trace then -lr, the same (the lr stays outside the buffer)",
            f"weight decay {wd:g}: torch's weight_decay (L2, added to the gradient before the momentum) on "
            "the weight group only; optax.add_decayed_weights(wd, mask=kernels) chained before sgd",
        ],
        "adam": [
            f"eps={config.eps:g} outside the square root, after the bias correction, in both "
            "(optax.adam(eps_root=0))",
            "bias correction 1-beta^t: torch in Python float64, optax in the working dtype",
            f"weight decay {wd:g}: torch Adam's weight_decay is L2 (coupled), on the weight group only; "
            "optax.add_decayed_weights(wd, mask=kernels) chained before adam",
        ],
        "adamw": [
            f"eps={config.eps:g} outside the square root, after the bias correction, in both",
            f"weight decay {wd:g} decoupled: torch AdamW p *= 1 - lr*wd on the weight group only; "
            "optax.adamw(weight_decay=wd, mask=kernels) adds -lr*wd*p (defaults differ: torch 0.01, "
            "optax 1e-4; both set here)",
        ],
    }[config.name]
    return notes + [schedule]
