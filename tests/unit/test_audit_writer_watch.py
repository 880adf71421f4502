"""The supervisor's watch on its audit writer process: a writer killed is replaced at once; one
that left cleanly (told to, as by a signal to the whole process group) is replaced only if the
node itself is not stopping within the grace period, since the supervisor's own copy of that
signal may be handled a moment after the writer's."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from secretsd.audit import writer_process
from secretsd.audit.writer_process import AuditWriterProcess
from secretsd.settings import Settings


class _Gone:
    def __init__(self, exitcode: int) -> None:
        self.exitcode = exitcode
        self.pid = 4242

    def is_alive(self) -> bool:
        return False


def _supervisor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exitcode: int) -> Any:
    monkeypatch.setattr(writer_process, "WATCH_SECONDS", 0.02)
    monkeypatch.setattr(writer_process, "CLEAN_EXIT_GRACE_SECONDS", 1.0)
    # Its socket directory goes in the test's own directory, removed with it.
    monkeypatch.setattr(writer_process.tempfile, "tempdir", str(tmp_path))
    supervisor = AuditWriterProcess(Settings(data_dir=tmp_path))
    spawned = threading.Event()
    supervisor._spawn = spawned.set  # type: ignore[method-assign]
    supervisor._process = _Gone(exitcode)  # type: ignore[assignment]
    supervisor.spawned = spawned
    return supervisor


def _watch(supervisor: Any) -> threading.Thread:
    thread = threading.Thread(target=supervisor._watch, daemon=True)
    thread.start()
    return thread


def test_a_killed_writer_is_replaced_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    supervisor = _supervisor(tmp_path, monkeypatch, exitcode=-9)
    started = time.monotonic()
    _watch(supervisor)
    assert supervisor.spawned.wait(5)
    assert time.monotonic() - started < 0.9
    supervisor.node_stopping()


def test_a_clean_exit_before_the_nodes_own_stop_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    supervisor = _supervisor(tmp_path, monkeypatch, exitcode=0)
    thread = _watch(supervisor)
    time.sleep(0.2)  # the supervisor handles its SIGTERM a moment after the writer left
    supervisor.node_stopping()
    thread.join(5)
    assert not thread.is_alive()
    assert not supervisor.spawned.is_set()


def test_a_clean_exit_with_the_node_running_on_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    supervisor = _supervisor(tmp_path, monkeypatch, exitcode=0)
    _watch(supervisor)
    assert supervisor.spawned.wait(5)
    supervisor.node_stopping()
