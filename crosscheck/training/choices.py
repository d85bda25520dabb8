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
DEFAULT_BATCH = 32
DEFAULT_SEEDS = 20
EXPERIMENT_STEPS = 800  # 20 epochs of 40 batches of 50
EXPERIMENT_RECORD_EVERY = 10
DEFAULT_OUT = "crosscheck-train"
