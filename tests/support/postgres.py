"""A throw-away PostgreSQL server for the test session.

Either the server named by ``SECRETSD_TEST_DATABASE_URL`` (databases are created in it and dropped
again at the end), or a private cluster started from the installed binaries on a free 127.0.0.1
port and deleted at the end.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

DATABASE_URL_ENV = "SECRETSD_TEST_DATABASE_URL"
# Set by scripts/test.sh so that CI fails, instead of skipping, when PostgreSQL is missing.
REQUIRE_ENV = "SECRETSD_TEST_REQUIRE_POSTGRES"
PG_USER = "postgres"
_START_ATTEMPTS = 3

# fsync/synchronous_commit on: durability tests kill secretsd mid-flight and expect every
# acknowledged write to be there. The rest keeps a test cluster small and quiet.
_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "shared_buffers": "16MB",
    "max_connections": "200",
    "max_wal_size": "256MB",
    "log_min_messages": "warning",
    "log_connections": "off",
    "log_disconnections": "off",
    "timezone": "'UTC'",
}


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries and no ``SECRETSD_TEST_DATABASE_URL``."""


def postgres_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false", "no")


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, newest major version first."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            )
            candidates.append(Path(out.stdout.strip()))
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    candidates.extend(Path(p) for p in sorted(versioned, key=_major_version, reverse=True))
    initdb = shutil.which("initdb")
    if initdb is not None:
        candidates.append(Path(initdb).resolve().parent)
    for directory in candidates:
        if all((directory / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def _major_version(bindir: str) -> int:
    try:
        return int(Path(bindir).parent.name)
    except ValueError:
        return -1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """Hands out fresh databases on one PostgreSQL server; ``close()`` cleans everything up."""

    def __init__(self, admin_url: str, cluster: LocalCluster | None = None) -> None:
        self.admin_url = admin_url
        self._cluster = cluster
        self._created: list[str] = []
        self._closed = False

    @classmethod
    def from_environment(cls) -> PostgresServer:
        """The server in ``SECRETSD_TEST_DATABASE_URL``, else a private cluster started now."""
        url = os.environ.get(DATABASE_URL_ENV, "").strip()
        if url:
            return cls(url)
        cluster = LocalCluster.start()
        return cls(cluster.admin_url, cluster)

    @property
    def data_dir(self) -> Path | None:
        """The private cluster's data directory (None for a server given by URL)."""
        return None if self._cluster is None else self._cluster.data_dir

    def create_database(self, hint: str = "db") -> str:
        """Create an empty database with a unique name and return a URL for it."""
        safe_hint = "".join(c if c.isalnum() else "_" for c in hint.lower())[:30]
        name = f"secretsd_test_{safe_hint}_{secrets.token_hex(4)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._created.append(name)
        return url_for_database(self.admin_url, name)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._cluster is not None:
            # The whole cluster goes away; no need to drop databases one by one.
            self._cluster.stop()
            return
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for name in self._created:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def url_for_database(url: str, dbname: str) -> str:
    """``url`` with its database replaced by ``dbname`` (path or ``dbname=`` query parameter)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "dbname"]
    return urlunsplit(parts._replace(path="/" + dbname, query=urlencode(query)))


class LocalCluster:
    """A private PostgreSQL cluster in a temporary directory, owned by the ``postgres`` user when
    we run as root (initdb refuses to run as root)."""

    def __init__(self, bindir: Path, base: Path, port: int) -> None:
        self.bindir = bindir
        self.base = base
        self.port = port
        self.data_dir = base / "data"
        self.socket_dir = base / "sock"
        self.log_file = base / "postgres.log"
        self._stopped = False

    @property
    def admin_url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls, bindir: Path | None = None) -> LocalCluster:
        found = bindir or find_bindir()
        if found is None:
            raise PostgresUnavailable(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found via pg_config, "
                "/usr/lib/postgresql/*/bin or PATH. Install them (Debian: apt-get install "
                f"postgresql; scripts/test.sh does this) or set {DATABASE_URL_ENV}."
            )
        base = Path(tempfile.mkdtemp(prefix="secretsd-pg-"))
        try:
            cluster = cls(found, base, free_port())
            cluster._init()
            cluster._start_with_retries()
        except BaseException:
            shutil.rmtree(base, ignore_errors=True)
            raise
        return cluster

    def _as_owner(self, *argv: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", PG_USER, "--", *argv]
        return list(argv)

    def _run(self, *argv: str, timeout: float = 120) -> None:
        result = subprocess.run(
            self._as_owner(*argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} failed with exit code {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{self._log_tail()}"
            )

    def _init(self) -> None:
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            owner = pwd.getpwnam(PG_USER)
            for path in (self.base, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        # --no-sync only affects initdb's own final flush; the running server keeps fsync=on.
        self._run(
            str(self.bindir / "initdb"),
            "--pgdata",
            str(self.data_dir),
            "--username",
            PG_USER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
            "--no-instructions",
        )

    def _write_settings(self) -> None:
        settings = {
            **_SERVER_SETTINGS,
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
        }
        # postgresql.auto.conf is read last, so rewriting it on a port retry overrides cleanly.
        lines = [f"{key} = {value}\n" for key, value in settings.items()]
        (self.data_dir / "postgresql.auto.conf").write_text("".join(lines))

    def _start_with_retries(self) -> None:
        # Another process may grab the free port between choosing and binding it.
        for attempt in range(_START_ATTEMPTS):
            self._write_settings()
            try:
                self._run(
                    str(self.bindir / "pg_ctl"),
                    "--pgdata",
                    str(self.data_dir),
                    "--log",
                    str(self.log_file),
                    "--wait",
                    "--timeout",
                    "60",
                    "start",
                )
                return
            except RuntimeError:
                if attempt == _START_ATTEMPTS - 1:
                    raise
                self.port = free_port()

    def _log_tail(self) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no postgres log)"
        return "postgres log (tail):\n" + "\n".join(text.splitlines()[-40:])

    def stop(self) -> None:
        """Stop immediately (nothing in it is worth a clean shutdown) and delete the cluster."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._run(
                str(self.bindir / "pg_ctl"),
                "--pgdata",
                str(self.data_dir),
                "--mode",
                "immediate",
                "--wait",
                "--timeout",
                "30",
                "stop",
                timeout=60,
            )
        except (RuntimeError, subprocess.TimeoutExpired):
            self._kill_postmaster()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        # Backends exit on their own once the postmaster is gone.
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                time.sleep(0.1)
