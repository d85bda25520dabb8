"""The vmap-vs-matmul performance study (``crosscheck study``): what each formulation costs.

:mod:`~crosscheck.study.names` (the constants), :mod:`~crosscheck.study.engine` (check, then time,
interleaved), :mod:`~crosscheck.study.inputs`, :mod:`~crosscheck.study.per_head` and
:mod:`~crosscheck.study.configs` (the configurations), :mod:`~crosscheck.study.plan` (which ones
run), :mod:`~crosscheck.study.targets` (the declarative table), :mod:`~crosscheck.study.outputs`.
"""
