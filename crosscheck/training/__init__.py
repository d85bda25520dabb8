"""Training parity: one model trained in both frameworks from one weights file on one data stream.

:mod:`~crosscheck.training.choices` (the vocabulary, free of any framework),
:mod:`~crosscheck.training.data` (the sparse-input task and its batch stream),
:mod:`~crosscheck.training.models` (the classifier in jaxlin and torch_ref layers),
:mod:`~crosscheck.training.optimizers` (optax and ``torch.optim`` matched),
:mod:`~crosscheck.training.planted` (the differences the verdict must catch),
:mod:`~crosscheck.training.runs` (N steps in each framework, in float32 and float64),
:mod:`~crosscheck.training.trajectory` (distances between runs and the per-step verdict),
:mod:`~crosscheck.training.parity` (the four runs of one job and their verdict),
:mod:`~crosscheck.training.experiment` (Linear vs Conv1d over many seeds) with
:mod:`~crosscheck.training.stats` (spreads and confidence intervals),
:mod:`~crosscheck.training.outputs` and :mod:`~crosscheck.training.plots` (what is written).

This package imports no framework itself, so that the command line can read its choices.
"""
