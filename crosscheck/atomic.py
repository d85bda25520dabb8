"""``atomic_write``: all of a new file or none of it — the one way crosscheck writes a file.

This module is the base layer of crosscheck: the standard library only, imported by the weights
files and the reports alike.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "note.txt")
>>> atomic_write(path, "hello\\n")
>>> open(path).read()
'hello\\n'
"""

from __future__ import annotations

import contextlib
import os
import tempfile

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` so that a crash never leaves half a file.

    The bytes go to a temporary file in the same directory, are flushed to disk, and the temporary
    file then replaces ``path`` in one step (``os.replace``). An existing file keeps its permission
    bits; a new one gets the usual ``0o666`` less the umask, as ``open(path, "w")`` would give it.

    Raises:
        OSError: the directory cannot be written; ``path`` is then unchanged and no temporary file
        is left behind.
    """
    name = os.fspath(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        mode = os.stat(name).st_mode & 0o777
    except OSError:
        mode = 0o666 & ~_UMASK
    directory = os.path.dirname(os.path.abspath(name))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(name)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
