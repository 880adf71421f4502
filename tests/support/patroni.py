"""A throw-away highly available PostgreSQL: one etcd member and three Patroni-managed PostgreSQL
servers on loopback ports, with synchronous replication (Patroni's synchronous_mode_strict).

Timings are shortened (loop_wait 1 s, ttl 6 s) so a failover takes seconds rather than the half
minute of Patroni's defaults; docs/deployment.md shows the production configuration.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from support.postgres import PG_USER, find_bindir, free_port

SCOPE = "secretsd-test"
MEMBERS = 3
START_TIMEOUT = 90.0
DATABASE = "secretsd"

# The DCS settings written at bootstrap; docs/deployment.md quotes this.
DCS_SETTINGS: dict[str, Any] = {
    "ttl": 6,
    "loop_wait": 1,
    "retry_timeout": 2,
    "maximum_lag_on_failover": 1048576,
    # Only a synchronous standby may be promoted, and the primary never acknowledges a commit
    # without one (strict: not even when the last standby is gone).
    "synchronous_mode": True,
    "synchronous_mode_strict": True,
    "postgresql": {
        "use_pg_rewind": True,
        "parameters": {
            "synchronous_commit": "on",
            "wal_level": "replica",
            "hot_standby": "on",
            "wal_log_hints": "on",
            "max_wal_senders": 10,
            "max_replication_slots": 10,
            "max_connections": 100,
        },
    },
}


# Patroni's own defaults for the same three settings, for measuring a failover as a deployment
# that keeps them would see it (SECRETSD_FAILOVER_TIMINGS=patroni-defaults; docs/deployment.md).
PATRONI_DEFAULT_TIMINGS: dict[str, Any] = {"ttl": 30, "loop_wait": 10, "retry_timeout": 10}
TIMINGS_ENV = "SECRETSD_FAILOVER_TIMINGS"


def timings_from_env() -> dict[str, Any]:
    """The DCS timings asked for by SECRETSD_FAILOVER_TIMINGS: unset, the short test ones;
    `patroni-defaults`, Patroni's own."""
    asked = os.environ.get(TIMINGS_ENV, "")
    if asked == "":
        return {}
    if asked == "patroni-defaults":
        return dict(PATRONI_DEFAULT_TIMINGS)
    raise ValueError(f"{TIMINGS_ENV} is unset or patroni-defaults, not {asked!r}")


class PatroniUnavailable(RuntimeError):
    """patroni or etcd is not installed."""


def find_tools() -> tuple[str, str]:
    patroni, etcd = shutil.which("patroni"), shutil.which("etcd")
    if patroni is None or etcd is None:
        raise PatroniUnavailable(
            "patroni and etcd are needed (Debian: apt-get install patroni python3-etcd "
            "etcd-server; scripts/test.sh does this)"
        )
    return patroni, etcd


@dataclass
class Member:
    name: str
    base: Path
    pg_port: int
    api_port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def log_path(self) -> Path:
        return self.base / "patroni.log"

    def status(self) -> dict[str, Any] | None:
        """Patroni's REST status of this member, None when it does not answer."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.api_port}/patroni", timeout=2
            ) as response:
                result: dict[str, Any] = json.loads(response.read())
                return result
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        return None

    def kill9(self) -> None:
        """The machine is gone: Patroni and PostgreSQL die at once, nothing is cleaned up."""
        pid = self.postmaster_pid()
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)


class PatroniCluster:
    def __init__(self, base: Path, timings: dict[str, Any] | None = None) -> None:
        self.base = base
        self.dcs = {**DCS_SETTINGS, **(timings or {})}
        self.etcd_port = free_port()
        self.etcd_peer_port = free_port()
        self.members = [
            Member(f"pg{i}", base / f"pg{i}", free_port(), free_port()) for i in range(MEMBERS)
        ]
        self._etcd: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, timings: dict[str, Any] | None = None) -> PatroniCluster:
        """`timings`: DCS settings (ttl, loop_wait, retry_timeout) instead of the short ones."""
        find_tools()
        cluster = cls(Path(tempfile.mkdtemp(prefix="secretsd-patroni-")), timings)
        try:
            cluster._start_etcd()
            for member in cluster.members:
                cluster._start_member(member)
            cluster.wait_until(lambda: cluster.healthy(), "a primary and two streaming standbys")
        except BaseException:
            cluster.stop()
            raise
        return cluster

    # -- processes -------------------------------------------------------------------------------

    def _start_etcd(self) -> None:
        _, etcd = find_tools()
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        with (self.base / "etcd.log").open("ab") as log:
            self._etcd = subprocess.Popen(
                [
                    etcd,
                    "--name=etcd0",
                    f"--data-dir={self.base / 'etcd'}",
                    f"--listen-client-urls={client}",
                    f"--advertise-client-urls={client}",
                    f"--listen-peer-urls={peer}",
                    f"--initial-advertise-peer-urls={peer}",
                    f"--initial-cluster=etcd0={peer}",
                    "--initial-cluster-state=new",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def _config(self, member: Member) -> dict[str, Any]:
        bindir = find_bindir()
        assert bindir is not None, "PostgreSQL server binaries not found"
        return {
            "scope": SCOPE,
            "name": member.name,
            "log": {"level": "INFO"},
            "restapi": {
                "listen": f"127.0.0.1:{member.api_port}",
                "connect_address": f"127.0.0.1:{member.api_port}",
            },
            "etcd3": {"hosts": [f"127.0.0.1:{self.etcd_port}"]},
            "bootstrap": {
                "dcs": self.dcs,
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, {"auth": "trust"}, "no-sync"],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{member.pg_port}",
                "connect_address": f"127.0.0.1:{member.pg_port}",
                "data_dir": str(member.data_dir),
                "bin_dir": str(bindir),
                "pgpass": str(member.base / "pgpass"),
                "authentication": {
                    "superuser": {"username": PG_USER},
                    "replication": {"username": PG_USER},
                    "rewind": {"username": PG_USER},
                },
                "pg_hba": [
                    "local all all trust",
                    "host all all 127.0.0.1/32 trust",
                    "host replication all 127.0.0.1/32 trust",
                ],
                "parameters": {
                    "unix_socket_directories": str(member.base),
                    "fsync": "on",
                    "shared_buffers": "16MB",
                    "log_min_messages": "warning",
                },
            },
        }

    def _start_member(self, member: Member) -> None:
        patroni, _ = find_tools()
        member.base.mkdir(parents=True)
        config = member.base / "patroni.yml"
        # JSON is YAML, and needs no YAML library here.
        config.write_text(json.dumps(self._config(member), indent=2))
        argv = [patroni, str(config)]
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root.
            owner = pwd.getpwnam(PG_USER)
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
            for path in (member.base, config):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            argv = ["runuser", "-u", PG_USER, "--", *argv]
        with member.log_path.open("ab") as log:
            member.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                env={**os.environ, "LC_ALL": "C", "LANG": "C"},
            )

    def stop(self) -> None:
        for member in self.members:
            member.kill9()
        if self._etcd is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._etcd.pid, signal.SIGKILL)
            self._etcd.wait(timeout=30)
        shutil.rmtree(self.base, ignore_errors=True)

    # -- state -----------------------------------------------------------------------------------

    def roles(self) -> dict[str, str]:
        """Each answering member's role and state, e.g. {"pg0": "master/running"}."""
        result = {}
        for member in self.members:
            status = member.status()
            if status is not None:
                result[member.name] = f"{status.get('role')}/{status.get('state')}"
        return result

    def primary(self) -> Member | None:
        for member in self.members:
            status = member.status()
            if status and status.get("role") in ("master", "primary") and _running(status):
                return member
        return None

    def healthy(self, members: int = MEMBERS) -> bool:
        """A primary with `members - 1` standbys streaming from it, one of them synchronous."""
        primary = self.primary()
        if primary is None:
            return False
        try:
            with psycopg.connect(self.member_url(primary), connect_timeout=2) as conn:
                rows = conn.execute(
                    "SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming'"
                ).fetchall()
        except psycopg.Error:
            return False
        states = [row[0] for row in rows]
        return len(states) == members - 1 and "sync" in states

    def wait_until(self, condition: Any, what: str, timeout: float = START_TIMEOUT) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if condition():
                return time.monotonic() - started
            time.sleep(0.2)
        logs = "\n".join(
            f"--- {m.name} ---\n{_tail(m.log_path)}\n{_tail_postgres(m.base)}" for m in self.members
        )
        raise TimeoutError(f"no {what} within {timeout:g} s; roles {self.roles()}\n{logs}")

    # -- URLs ------------------------------------------------------------------------------------

    def member_url(self, member: Member, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{member.pg_port}/{database}"

    def url(self, database: str = DATABASE) -> str:
        """What secretsd is given: every member, and only a primary will do."""
        hosts = ",".join(f"127.0.0.1:{m.pg_port}" for m in self.members)
        return (
            f"postgresql://{PG_USER}@{hosts}/{database}"
            "?target_session_attrs=read-write&connect_timeout=2"
        )

    def create_database(self) -> str:
        """A fresh database on the cluster (each secretsd test initialises its own), its URL."""
        primary = self.primary()
        assert primary is not None
        name = f"{DATABASE}_{secrets.token_hex(4)}"
        with psycopg.connect(self.member_url(primary), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def _running(status: dict[str, Any]) -> bool:
    return status.get("state") == "running"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path.name}: none)"


def _tail_postgres(base: Path) -> str:
    logs = sorted((base / "data" / "log").glob("*")) if (base / "data" / "log").is_dir() else []
    return _tail(logs[-1]) if logs else ""
