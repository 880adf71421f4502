"""Run a real ``secretsd serve`` process for end-to-end tests."""

from __future__ import annotations

import configparser
import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

LISTENING_RE = re.compile(r"^secretsd: listening on (https?://127\.0\.0\.1:(\d+))$")
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
LOG_NAME = "server.log"
STDOUT_LOG_NAME = "server.stdout.log"
CREDENTIALS_NAME = "admin.credentials"
# Variables of the outer environment that could change how the server (or a client it spawns)
# behaves: a developer's own AWS profile or secretsd configuration must not leak into tests.
SCRUBBED_ENV_PREFIXES = ("AWS_", "SECRETSD_", "BOTO_")


class ServerStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    # Temporary credentials (ASIA...) from STS carry a session token.
    session_token: str | None = None


def scrubbed_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_ENV_PREFIXES)}
    env.update(extra or {})
    return env


def read_credentials(path: Path, profile: str = "default") -> Credentials:
    parser = configparser.ConfigParser()
    if not parser.read(path):
        raise FileNotFoundError(path)
    section = parser[profile]
    return Credentials(section["aws_access_key_id"], section["aws_secret_access_key"])


class ServerProcess:
    """One ``secretsd serve`` process on a data dir (and optionally a database URL).

    stderr goes straight to ``<data_dir>/server.log`` (appended across restarts), stdout is drained
    by a thread into ``server.stdout.log``, so neither pipe can ever block the server.
    The server runs in its own process group so that ``kill9()`` also takes any worker processes
    down, as a machine crash would.
    """

    def __init__(
        self,
        data_dir: Path,
        database_url: str | None = None,
        *,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.extra_args = tuple(extra_args)
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.log_path = data_dir / LOG_NAME
        self.stdout_log_path = data_dir / STDOUT_LOG_NAME
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._endpoint: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def command(self) -> list[str]:
        argv = [sys.executable, "-m", "secretsd", "serve", "--host", "127.0.0.1", "--port", "0"]
        argv += ["--data-dir", str(self.data_dir)]
        if self.database_url is not None:
            argv += ["--database", self.database_url]
        return argv + list(self.extra_args)

    def start(self) -> ServerProcess:
        if self.running:
            raise RuntimeError("server already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                bufsize=1,
                env=scrubbed_environ({"PYTHONUNBUFFERED": "1", **self.env}),
                start_new_session=True,
            )
        self._proc = proc
        assert proc.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(
            target=_drain_stdout,
            args=(proc.stdout, self.stdout_log_path, lines),
            name=f"secretsd-stdout-{proc.pid}",
            daemon=True,
        )
        self._reader.start()
        self._endpoint = self._wait_until_listening(lines, log_offset)
        return self

    def _wait_until_listening(self, lines: queue.Queue[str | None], log_offset: int) -> str:
        deadline = time.monotonic() + self.startup_timeout
        seen: list[str] = []
        why = f"did not report listening within {self.startup_timeout:g} s"
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                why = "exited before reporting that it listens"
                break
            seen.append(line)
            if match := LISTENING_RE.match(line):
                return match.group(1)
        returncode = self._terminate(kill_after=2.0)
        with self.log_path.open("rb") as log:
            log.seek(log_offset)
            stderr = log.read().decode(errors="replace")
        stdout = "".join(f"{line}\n" for line in seen)
        raise ServerStartError(
            f"secretsd {why} (exit code {returncode})\n"
            f"command: {' '.join(self.command())}\n"
            f"--- stdout ---\n{stdout}--- stderr ---\n{stderr}"
        )

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("server was never started")
        return self._proc.pid

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if self._endpoint is None or not self.running:
            raise RuntimeError("server is not running")
        return self._endpoint

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / CREDENTIALS_NAME

    @property
    def credentials(self) -> Credentials:
        return read_credentials(self.credentials_path)

    def stop(self) -> int | None:
        """SIGTERM and wait; SIGKILL the process group after ``STOP_TIMEOUT`` seconds.

        Returns the exit code (None if it was never started).
        """
        return self._terminate(kill_after=STOP_TIMEOUT)

    def kill9(self) -> int | None:
        """SIGKILL the whole process group at once, like a crash: no shutdown code runs."""
        if self._proc is None:
            return None
        self._killpg()
        return self._reap()

    def restart(self, *, graceful: bool = True) -> ServerProcess:
        """Stop (SIGTERM, or SIGKILL when not graceful) if running, then start on the same data
        dir and database. The port usually changes."""
        if graceful:
            self.stop()
        else:
            self.kill9()
        return self.start()

    def _terminate(self, kill_after: float) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                pass
        # Also reaps stray workers left in the group after a clean exit of the main process.
        self._killpg()
        return self._reap()

    def _killpg(self) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)

    def _reap(self) -> int | None:
        assert self._proc is not None
        returncode = self._proc.wait(timeout=30)
        if self._reader is not None:
            self._reader.join(timeout=10)
            self._reader = None
        self._endpoint = None
        return returncode

    # -- logs -------------------------------------------------------------------------------------

    def logs(self) -> str:
        """Everything the server wrote so far (stderr and stdout, all runs on this data dir)."""
        parts = []
        for path in (self.log_path, self.stdout_log_path):
            with contextlib.suppress(FileNotFoundError):
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self._endpoint if self.running else "stopped"
        return f"<ServerProcess {self.data_dir} {self.database_url or 'sqlite'} {state}>"


def _drain_stdout(stream: IO[str], copy_to: Path, lines: queue.Queue[str | None]) -> None:
    try:
        with stream, copy_to.open("a", encoding="utf-8") as copy:
            for line in stream:
                copy.write(line)
                copy.flush()
                lines.put(line.rstrip("\r\n"))
    finally:
        lines.put(None)


def wait_for_log(server: ServerProcess, needle: str, since: int, timeout: float) -> None:
    """Wait until the server's stderr log, from byte `since` on, contains `needle`."""
    deadline = time.monotonic() + timeout
    while True:
        with server.log_path.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        if needle in text:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"no {needle!r} in the server log within {timeout:g} s:\n{text[-3000:]}")
        time.sleep(0.1)
