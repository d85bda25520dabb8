"""``python -m crosscheck``: the ``crosscheck`` command (see :mod:`crosscheck.cli`)."""

import sys

from crosscheck.cli.dispatch import main

if __name__ == "__main__":  # spawned worker processes import this module too
    sys.exit(main())
