"""``atomic_write``: all of a new file or none of it — the one way crosscheck writes a file.

This module is the base layer of crosscheck: the standard library only, imported by the weights
files and the reports alike.

What a reader of the directory can rely on:

- **Whole files.** The bytes go to a temporary file in the same directory (``.NAME.PID@HOST.XXXXXXXX.tmp``),
  are flushed to disk, and the temporary file then replaces ``NAME`` in one step (``os.replace``):
  ``NAME`` is the old file or the new one, never part of either.
- **No temporary file left by an error, Ctrl-C or SIGTERM.** An exception removes the temporary files.
  SIGINT and SIGTERM are caught while crosscheck writes (:func:`held_signals`, in the main thread, which
  is where Python runs signal handlers): one that comes while the temporary files are written stops the
  write, the temporary files are removed and the targets stay as they were; one that comes while they
  replace their targets waits until all are in place. Either way the signal is then delivered to the
  handler it had: the process ends as it would have (Ctrl-C: ``KeyboardInterrupt``), no ``.tmp`` left.
- **What SIGKILL or a power cut leaves is removed by the next write.** Each write first removes the
  temporary files of the same ``NAME`` in that directory whose process (``PID`` on this ``HOST``) is
  gone. (Temporary files named without ``PID@HOST``, by versions before this one, are left alone.)
- **Several files** (:func:`atomic_write_many`): every temporary file is written first, then they
  replace their targets in the order given. Only SIGKILL or a power cut between two replaces can
  leave the earlier targets new and the later ones old; a caller that needs to tell records a run id
  in each (:func:`crosscheck.reporting.documents.write_documents` does).

>>> import os, tempfile
>>> directory = tempfile.mkdtemp()
>>> path = os.path.join(directory, "note.txt")
>>> atomic_write(path, "hello\\n")
>>> open(path).read()
'hello\\n'
>>> atomic_write_many([(os.path.join(directory, "a.txt"), b"a"), (path, "again\\n")])
>>> sorted(os.listdir(directory)), open(path).read()
(['a.txt', 'note.txt'], 'again\\n')
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator, Sequence

_UMASK = os.umask(0)
os.umask(_UMASK)
_HOST = "".join(c if c.isascii() and (c.isalnum() or c in "-.") else "_" for c in socket.gethostname())[:64]
HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_holding = threading.local()


class _Hold:
    """The signals a :func:`held_signals` block caught; while ``interruptible``, a signal also stops the
    block at once (``InterruptedError``)."""

    def __init__(self):
        self.pending: list[int] = []
        self.interruptible = False

    def __call__(self, signum: int, frame) -> None:
        self.pending.append(signum)
        if self.interruptible:
            self.interrupt_from_now()

    def interrupt_from_now(self) -> None:
        """Be interruptible; raise ``InterruptedError`` now if a signal is already pending."""
        self.interruptible = True
        if self.pending:
            self.interruptible = False
            raise InterruptedError(errno.EINTR, f"interrupted by {signal.Signals(self.pending[0]).name}")


@contextlib.contextmanager
def held_signals() -> Iterator[_Hold]:
    """SIGINT and SIGTERM wait until the block ends, then are delivered to the handlers they had (so
    the default SIGTERM ends the process then, and SIGINT raises ``KeyboardInterrupt`` then). While the
    block allows it (``hold.interrupt_from_now()``), a signal raises ``InterruptedError`` (an ``OSError``)
    at once, and is delivered the same way once the block has cleaned up.

    Only in the main thread, where Python runs signal handlers (elsewhere, and for a signal whose
    handler Python did not install, the block runs as it is). Nested blocks hold until the outermost ends.
    """
    hold = _Hold()
    if threading.current_thread() is not threading.main_thread() or getattr(_holding, "active", False):
        yield hold
        return
    previous = {}
    try:
        for signum in HELD_SIGNALS:
            if signal.getsignal(signum) is not None:
                previous[signum] = signal.signal(signum, hold)
        _holding.active = True
        yield hold
    finally:
        _holding.active = False
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(hold.pending):
            signal.raise_signal(signum)


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: alive, someone else's
        return False
    return False


def remove_stale_temporaries(directory: str, name: str) -> list[str]:
    """Remove the temporary files of ``name`` in ``directory`` left by processes of this host that are
    gone (killed while writing it); return their paths. POSIX only (elsewhere: nothing is removed)."""
    removed = []
    if os.name != "posix":
        return removed
    prefix, suffix = f".{name}.", ".tmp"
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            if not (entry.name.startswith(prefix) and entry.name.endswith(suffix)):
                continue
            owner = entry.name[len(prefix) : -len(suffix)].rpartition(".")[0]  # PID@HOST
            pid, at, host = owner.partition("@")
            if at and host == _HOST and pid.isascii() and pid.isdigit() and _process_gone(int(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(entry.path)
    return removed


def _write_temporary(name: str, payload: bytes, hold: _Hold, written: list[tuple[str, str]]) -> None:
    """``payload`` in a new temporary file beside ``name``, on disk, with ``name``'s permission bits;
    ``(temporary, name)`` is added to ``written`` as soon as the file exists, so the caller removes it
    whatever happens next. A held signal stops the write (see :class:`_Hold`)."""
    try:
        mode = os.stat(name).st_mode & 0o777
    except OSError:
        mode = 0o666 & ~_UMASK
    directory, base = os.path.split(os.path.abspath(name))
    remove_stale_temporaries(directory, base)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{base}.{os.getpid()}@{_HOST}.", suffix=".tmp")
    written.append((temporary, name))
    with os.fdopen(fd, "wb") as file:
        hold.interrupt_from_now()
        try:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        finally:
            hold.interruptible = False
    os.chmod(temporary, mode)


def atomic_write_many(files: Sequence[tuple[str | os.PathLike, str | bytes]]) -> None:
    """Write each ``(path, data)`` (text as UTF-8, or bytes): every temporary file first, then each
    replaces its path in the order given (see the module docstring for what a kill leaves).

    Raises:
        OSError: a directory cannot be written, or a signal whose handler returns came while the
        temporary files were written (``InterruptedError``); the paths not yet replaced are unchanged
        (none, when writing a temporary file failed) and no temporary file is left behind.
    """
    written: list[tuple[str, str]] = []
    with held_signals() as hold:
        try:
            for path, data in files:
                payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
                _write_temporary(os.fspath(path), payload, hold, written)
            for temporary, name in written:  # a signal now waits until every file is in place
                os.replace(temporary, name)
        except BaseException:
            for temporary, _ in written:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)  # those already replaced are gone: nothing to do
            raise


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` so that a crash never leaves half a file.

    An existing file keeps its permission bits; a new one gets the usual ``0o666`` less the umask, as
    ``open(path, "w")`` would give it.

    Raises:
        OSError: the directory cannot be written; ``path`` is then unchanged and no temporary file
        is left behind.
    """
    atomic_write_many([(path, data)])
