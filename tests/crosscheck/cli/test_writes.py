"""What the commands' report writes leave when the process is killed: SIGTERM waits until both files
are whole and in place, a SIGKILL's temporary file is removed by the next write, and a run id tells
whether ``report.json`` and ``report.md`` come from the same run."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from crosscheck import atomic
from crosscheck.reporting import documents


def _python(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)},
    )


def _old_report(out) -> None:
    (out / "report.json").write_text('{"old": true}\n')
    (out / "report.md").write_text("# old\n")


WRITE = """
    import os, signal
    from crosscheck.reporting import documents

    original = os.{call}
    def {call}_then_killed(*args):
        original(*args)
        os.kill(os.getpid(), signal.{signal})  # once the first file is on disk / in place

    os.{call} = {call}_then_killed
    documents.write_documents(".", "report", {{"new": True}}, "# new\\n")
    print("not reached")
"""


def test_sigterm_while_the_temporary_files_are_written_stops_there_and_leaves_the_old_pair(tmp_path):
    _old_report(tmp_path)
    done = _python(WRITE.format(call="fsync", signal="SIGTERM"), tmp_path)
    assert done.returncode == -signal.SIGTERM, done.stderr  # it still ends as SIGTERM ends it
    assert "not reached" not in done.stdout
    assert sorted(os.listdir(tmp_path)) == ["report.json", "report.md"]  # no temporary file
    assert json.loads((tmp_path / "report.json").read_text()) == {"old": True}
    assert (tmp_path / "report.md").read_text() == "# old\n"


def test_sigterm_while_the_files_are_replaced_waits_until_both_are_in_place(tmp_path):
    _old_report(tmp_path)
    done = _python(WRITE.format(call="replace", signal="SIGTERM"), tmp_path)
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert "not reached" not in done.stdout
    assert sorted(os.listdir(tmp_path)) == ["report.json", "report.md"]
    assert json.loads((tmp_path / "report.json").read_text())["new"] is True
    assert (tmp_path / "report.md").read_text().startswith("# new\n")
    assert documents.documents_match(tmp_path, "report")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_whose_handler_returns_makes_the_write_an_oserror_and_leaves_nothing(
    signum, tmp_path, monkeypatch
):
    _old_report(tmp_path)
    received, fsync = [], os.fsync
    previous = signal.signal(signum, lambda number, frame: received.append(number))
    monkeypatch.setattr(os, "fsync", lambda fd: (fsync(fd), os.kill(os.getpid(), signum)))
    try:
        with pytest.raises(InterruptedError, match=f"interrupted by {signal.Signals(signum).name}"):
            documents.write_documents(tmp_path, "report", {"new": True}, "# new\n")
    finally:
        signal.signal(signum, previous)
    assert received == [signum]  # delivered once, after the clean-up
    assert sorted(os.listdir(tmp_path)) == ["report.json", "report.md"]
    assert (tmp_path / "report.md").read_text() == "# old\n"


def test_ctrl_c_while_writing_is_a_keyboard_interrupt_after_the_clean_up(tmp_path, monkeypatch):
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsync(fd), os.kill(os.getpid(), signal.SIGINT)))
    # Python's own Ctrl-C handler, as in a terminal (a shell's background job starts with SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            atomic.atomic_write(tmp_path / "w.safetensors", b"weights")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert os.listdir(tmp_path) == []


def test_a_sigkill_between_the_replaces_is_told_by_the_run_id_and_its_leftover_removed_next_time(tmp_path):
    _old_report(tmp_path)
    done = _python(WRITE.format(call="replace", signal="SIGKILL"), tmp_path)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert (tmp_path / "report.md").read_text().startswith("# new\n")  # the Markdown is replaced first
    assert json.loads((tmp_path / "report.json").read_text()) == {"old": True}
    assert not documents.documents_match(tmp_path, "report")
    leftover = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert len(leftover) == 1 and leftover[0].startswith(".report.json.")
    documents.write_documents(tmp_path, "report", {"again": True}, "# again\n")
    assert sorted(os.listdir(tmp_path)) == ["report.json", "report.md"]
    assert documents.documents_match(tmp_path, "report")


def test_only_temporary_files_of_gone_processes_on_this_host_are_removed(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    gone = int(done.stdout)
    names = [
        f".report.json.{gone}@{atomic._HOST}.abcd1234.tmp",  # removed
        f".report.json.{os.getpid()}@{atomic._HOST}.abcd1234.tmp",  # this process: writing now
        f".report.json.{gone}@another-host.abcd1234.tmp",  # cannot tell from here
        ".report.json.abcd1234.tmp",  # an older version's: no owner recorded
        f".report.md.{gone}@{atomic._HOST}.abcd1234.tmp",  # another file's
    ]
    for name in names:
        (tmp_path / name).write_text("partial")
    assert atomic.remove_stale_temporaries(str(tmp_path), "report.json") == [str(tmp_path / names[0])]
    assert sorted(os.listdir(tmp_path)) == sorted(names[1:])


def test_signals_are_held_only_in_the_main_thread_and_delivered_after(tmp_path):
    received = []
    previous = signal.signal(signal.SIGTERM, lambda number, frame: received.append(number))
    try:
        with atomic.held_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            assert received == []
        assert received == [signal.SIGTERM]
        seen = []
        thread = threading.Thread(
            target=lambda: (atomic.atomic_write(tmp_path / "t.txt", "x"), seen.append(1))
        )
        thread.start()
        thread.join()
        assert seen == [1] and (tmp_path / "t.txt").read_text() == "x"
    finally:
        signal.signal(signal.SIGTERM, previous)
