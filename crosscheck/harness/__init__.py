"""The harness: cases and the one pair builder, evaluation, the two-tier check, the batch-size probe,
precision modes, devices, the one timing engine, and the jobs of ``crosscheck run``.

Needs JAX and PyTorch. Modules: :mod:`~crosscheck.harness.cases`, :mod:`~crosscheck.harness.pairs`,
:mod:`~crosscheck.harness.evaluate`, :mod:`~crosscheck.harness.checking`,
:mod:`~crosscheck.harness.probing`, :mod:`~crosscheck.harness.batch_probe`,
:mod:`~crosscheck.harness.precision`, :mod:`~crosscheck.harness.devices`,
:mod:`~crosscheck.harness.timing`, :mod:`~crosscheck.harness.jobs`.
"""
