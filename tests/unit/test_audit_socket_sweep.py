"""Socket directories of audit writers killed with their server are removed at the next start;
live, young and other users' ones are left alone."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsd.audit.writer_process import SOCKET_DIR_PREFIX, SOCKET_NAME, sweep_stale_socket_dirs


def _socket_dir(parent: Path, name: str, *, listening: bool, age: float) -> socket.socket:
    path = parent / (SOCKET_DIR_PREFIX + name)
    path.mkdir()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path / SOCKET_NAME))
    if listening:
        sock.listen()
    else:
        sock.close()  # the file stays, as a SIGKILLed writer leaves it
    then = time.time() - age
    os.utime(path, (then, then))
    return sock


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: a Unix socket's path may not pass 107 bytes, and pytest's
    tmp_path (named after the test) can."""
    path = Path(tempfile.mkdtemp(prefix="sweep-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_only_old_directories_nobody_listens_on_are_removed(short_dir: Path) -> None:
    tmp_path = short_dir
    live = _socket_dir(tmp_path, "live", listening=True, age=3600)
    _socket_dir(tmp_path, "dead", listening=False, age=3600)
    _socket_dir(tmp_path, "starting", listening=False, age=1)
    empty = tmp_path / (SOCKET_DIR_PREFIX + "empty")
    empty.mkdir()
    os.utime(empty, (time.time() - 3600,) * 2)
    unrelated = tmp_path / "other-dir"
    unrelated.mkdir()
    try:
        assert sweep_stale_socket_dirs(str(tmp_path), older_than=300) == 2
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == ["other-dir", SOCKET_DIR_PREFIX + "live", SOCKET_DIR_PREFIX + "starting"]
    finally:
        live.close()
