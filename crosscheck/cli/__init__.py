"""The ``crosscheck`` command (console script, and ``python -m crosscheck``).

:mod:`~crosscheck.cli.dispatch` runs it (``main``); :mod:`~crosscheck.cli.parser` builds the parser from one
module per command (:mod:`~crosscheck.cli.run`, :mod:`~crosscheck.cli.batch_probe`,
:mod:`~crosscheck.cli.study`); :mod:`~crosscheck.cli.options` holds the argument types and
defaults, :mod:`~crosscheck.cli.common` what the commands share.
"""

from crosscheck.cli.dispatch import main

__all__ = ["main"]
