"""The vocabulary of ``crosscheck train``, free of any framework import (``--help`` loads neither).

>>> OPTIMIZERS
('sgd', 'adam', 'adamw')
"""

OPTIMIZERS = ("sgd", "adam", "adamw")
DEFAULT_OPTIMIZERS = ("sgd", "adam")
PLANTS = ("none", "adam-eps", "bias-decay", "schedule-offset")
SCHEDULES = ("warmup-cosine", "constant")
MODELS = ("linear", "conv", "conv-maxpool")
EXPERIMENTS = ("conv-vs-linear",)
WORKING_DTYPES = ("float32",)
DEFAULT_STEPS = 200
MAX_STEPS = 10_000
"""The most ``--steps`` a run takes: every step's parameters of all four runs (two frameworks, the working
dtype and float64) are kept to judge them, about 0.1 MB a step per optimizer (measured: 0.84 GB resident
at 200 steps, 1.61 GB at 8,000, one optimizer), so 10,000 steps hold about 1 GB per optimizer."""
STEPS_LIMIT_WHY = "every step's parameters are kept in memory, about 0.1 MB a step per optimizer"
DEFAULT_BATCH = 32
DEFAULT_SEEDS = 20
EXPERIMENT_STEPS = 800  # 20 epochs of 40 batches of 50
EXPERIMENT_RECORD_EVERY = 10
DEFAULT_OUT = "crosscheck-train"
