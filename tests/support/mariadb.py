"""A throw-away MariaDB server for the built-in MySQL rotator tests: its own data directory,
socket and free 127.0.0.1 port, run as the `mysql` user when we are root, deleted at the end."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pymysql

from support.postgres import free_port

INSTALL_DB = "mariadb-install-db"
SERVER = "/usr/sbin/mariadbd"
OWNER = "mysql"


class MariaDbUnavailable(RuntimeError):
    pass


class MariaDb:
    def __init__(self, base: Path, port: int) -> None:
        self.base = base
        self.port = port
        self.data_dir = base / "data"
        self.socket = base / "mariadb.sock"
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls) -> MariaDb:
        if shutil.which(INSTALL_DB) is None or not Path(SERVER).exists():
            raise MariaDbUnavailable(
                "MariaDB not installed (Debian: apt-get install mariadb-server; scripts/test.sh"
                " does this)"
            )
        base = Path(tempfile.mkdtemp(prefix="secretsd-mariadb-"))
        server = cls(base, free_port())
        try:
            server._init()
            server._run()
        except BaseException:
            server.stop()
            raise
        return server

    def _as_owner(self, *argv: str) -> list[str]:
        return ["runuser", "-u", OWNER, "--", *argv] if os.geteuid() == 0 else list(argv)

    def _init(self) -> None:
        if os.geteuid() == 0:
            owner = pwd.getpwnam(OWNER)
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
        subprocess.run(
            self._as_owner(
                INSTALL_DB,
                "--no-defaults",
                f"--datadir={self.data_dir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )

    def _run(self) -> None:
        self._proc = subprocess.Popen(
            self._as_owner(
                SERVER,
                "--no-defaults",
                f"--datadir={self.data_dir}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.socket}",
                f"--pid-file={self.base / 'mariadb.pid'}",
                f"--log-error={self.base / 'error.log'}",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=16M",
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            # A plain socket first: a failed PyMySQL connect leaves its socket to the collector.
            try:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(str(self.socket))
                self.admin().close()
                return
            except (OSError, pymysql.MySQLError):
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    log = self.base / "error.log"
                    tail = log.read_text()[-2000:] if log.exists() else ""
                    raise MariaDbUnavailable(f"mariadbd did not start:\n{tail}") from None
                time.sleep(0.2)

    def admin(self) -> Any:
        return pymysql.connect(
            unix_socket=str(self.socket), user="root", password="", autocommit=True
        )

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(10)
        shutil.rmtree(self.base, ignore_errors=True)
