"""Start a server process, wait for its "listening on" line, and always take it down again.

Each server runs in its own session (process group), so stopping it also ends its uvicorn
workers; stdout is drained by a thread and stderr goes to a log file, so no pipe can fill up and
stall the server in the middle of a measurement.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from bench import SOURCE
from secretsd.audit.writer_process import AUDIT_WRITER_COMM

# Settings of the outer environment must not change how the measured server behaves.
SCRUBBED_ENV_PREFIXES = ("AWS_", "SECRETSD_", "BOTO_")
LISTENING_RE = re.compile(r"listening on (http://127\.0\.0\.1:(\d+))\s*$")


class StartError(RuntimeError):
    pass


def clean_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_ENV_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    # Servers run this tree's secretsd and bench, whatever the virtualenv's editable install
    # points at (see bench/__init__.py); `extra` may still say otherwise.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SOURCE), str(SOURCE.parent), env.get("PYTHONPATH", "")) if p
    )
    env.update(extra or {})
    return env


class ServerProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self.env = clean_environ(env)
        self.startup_timeout = startup_timeout
        self.endpoint = ""
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    @property
    def host_header(self) -> str:
        return self.endpoint.split("://", 1)[1]

    def start(self) -> ServerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                bufsize=1,
                start_new_session=True,
            )
        self._proc = proc
        assert proc.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(
            target=_drain, args=(proc.stdout, lines), name=f"{self.name}-stdout", daemon=True
        )
        self._reader.start()
        deadline = time.monotonic() + self.startup_timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                break
            if match := LISTENING_RE.search(line):
                self.endpoint = match.group(1)
                return self
        self.stop()
        tail = self.log_path.read_text(errors="replace")[-3000:]
        raise StartError(f"{self.name} did not start: {' '.join(self.argv)}\n{tail}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server's live processes: the supervisor
        and its workers, which all share the server's process group (its own session)."""
        proc = self._proc
        if proc is None:
            raise RuntimeError(f"{self.name} is not running")
        return group_cpu_seconds(proc.pid)

    def pids(self) -> list[int]:
        """The live processes of the server's group: the supervisor first, then its workers
        (with one worker, `secretsd serve` serves in the supervisor process itself)."""
        proc = self._proc
        if proc is None:
            raise RuntimeError(f"{self.name} is not running")
        return group_pids(proc.pid)

    def peak_rss_kib(self) -> dict[int, int]:
        """VmHWM (peak resident set) of each process that serves requests: the workers, or the
        only process when it has none (the audit writer process and multiprocessing's resource
        tracker serve none)."""
        pids = [pid for pid in self.pids() if not _helper_process(pid)]
        serving = pids[1:] if len(pids) > 1 else pids
        return {pid: peak for pid in serving if (peak := vm_hwm_kib(pid)) is not None}

    def stop(self, timeout: float = 10.0) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
        # Whatever is left of the group (workers of a killed supervisor) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if self._reader is not None:
            self._reader.join(timeout=5)
        self._proc = None
        self._reader = None
        self.endpoint = ""

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _helper_process(pid: int, proc_root: Path = Path("/proc")) -> bool:
    try:
        comm = (proc_root / str(pid) / "comm").read_text().strip()
        cmdline = (proc_root / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False
    return comm == AUDIT_WRITER_COMM or b"resource_tracker" in cmdline


def group_cpu_seconds(pgid: int, proc_root: Path = Path("/proc")) -> float:
    """utime + stime of every process in process group `pgid`, from /proc/PID/stat (Linux)."""
    ticks = 0
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended meanwhile
        # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / _CLOCK_TICKS


def group_pids(pgid: int, proc_root: Path = Path("/proc")) -> list[int]:
    """Processes of group `pgid`, the group leader first."""
    found = []
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[2]) == pgid:
            found.append(int(entry.name))
    return sorted(found, key=lambda pid: (pid != pgid, pid))


def vm_hwm_kib(pid: int, proc_root: Path = Path("/proc")) -> int | None:
    """Peak resident set size (VmHWM in /proc/PID/status), in KiB; None if the process is gone."""
    try:
        status = (proc_root / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def _drain(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    try:
        with stream:
            for line in stream:
                lines.put(line.rstrip("\r\n"))
    finally:
        lines.put(None)
