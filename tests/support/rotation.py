"""A PostgreSQL server to rotate passwords of, and waiting for rotations: RotateSecret answers before its rotation has run (as AWS's does), so
tests poll what a client can see, with a deadline."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from support.postgres import LocalCluster
from support.server import ServerProcess

T = TypeVar("T")
ROTATION_TIMEOUT = 20.0


def wait_until(
    check: Callable[[], T], what: str = "the rotation", timeout: float = ROTATION_TIMEOUT
) -> T:
    """`check()` once it is truthy; fails the test with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}: {result!r}"
        time.sleep(0.1)


def wait_rotated(
    sm: Any, secret_id: str, version_id: str, timeout: float = ROTATION_TIMEOUT
) -> dict[str, Any]:
    """DescribeSecret once `version_id` is AWSCURRENT and no version holds AWSPENDING (AWS's
    state after a successful rotation)."""

    def done() -> dict[str, Any] | None:
        described: dict[str, Any] = sm.describe_secret(SecretId=secret_id)
        stages = described["VersionIdsToStages"]
        pending = any("AWSPENDING" in labels for labels in stages.values())
        if "AWSCURRENT" in stages.get(version_id, []) and not pending:
            return described
        return None

    return wait_until(done, f"{version_id} to become AWSCURRENT", timeout)


def value(sm: Any, secret_id: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
    """A credential secret's JSON at `stage`."""
    document: dict[str, Any] = json.loads(
        sm.get_secret_value(SecretId=secret_id, VersionStage=stage)["SecretString"]
    )
    return document


def alternate_twice(
    sm: Any, target: Target, name: str, user: str, first_token: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The alternating-users strategy as AWS's template does it, whoever rotates: the first
    rotation (already started as `first_token`) switches to `<user>_clone` with `user` still
    logging in; a second one switches back with a new password. Both values, in order."""
    wait_rotated(sm, name, first_token)
    first = value(sm, name)
    assert first["username"] == user + "_clone"
    assert target.logs_in(first["username"], first["password"])
    assert target.logs_in(user, "app-password")  # the previous user still works
    assert value(sm, name, "AWSPREVIOUS")["username"] == user

    wait_rotated(sm, name, sm.rotate_secret(SecretId=name)["VersionId"])
    second = value(sm, name)
    assert second["username"] == user and second["password"] != "app-password"
    assert target.logs_in(user, second["password"])
    return first, second


def events(server: ServerProcess, arn: str = "%") -> list[str]:
    """Rotation service events recorded in the server's database (of one secret), oldest
    first."""
    query = (
        "SELECT event_name FROM service_events WHERE event_name LIKE {0}"
        " AND resource_arn LIKE {0} ORDER BY event_id"
    )
    if server.database_url is not None:
        with psycopg.connect(server.database_url) as conn:
            return [row[0] for row in conn.execute(query.format("%s"), ("%Rotation%", arn))]
    db = sqlite3.connect(f"file:{server.data_dir / 'secretsd.db'}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute(query.format("?"), ("%Rotation%", arn))]
    finally:
        db.close()


def wait_for_events(
    server: ServerProcess, arn: str, last: str, count: int = 1, timeout: float = ROTATION_TIMEOUT
) -> list[str]:
    """The secret's events once `last` was recorded `count` times (the end of a rotation:
    RotationSucceeded, RotationFailed, TestRotationSucceeded, ...)."""

    def done() -> list[str] | None:
        found = events(server, arn)
        return found if found.count(last) >= count else None

    return wait_until(done, f"{count} {last} event(s) of {arn}", timeout)


class Target:
    """A PostgreSQL server whose non-superuser logins need their password."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.port = cluster.port

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.cluster.admin_url, autocommit=True)

    def create_user(self, name: str, password: str, *, superuser: bool = False) -> None:
        with self.admin() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} WITH LOGIN {} PASSWORD {}").format(
                    sql.Identifier(name),
                    sql.SQL("SUPERUSER" if superuser else "NOSUPERUSER"),
                    sql.Literal(password),
                )
            )

    def set_password(self, name: str, password: str) -> None:
        with self.admin() as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(name), sql.Literal(password)
                )
            )

    def logs_in(self, user: str, password: str, port: int | None = None) -> bool:
        try:
            with psycopg.connect(
                host="127.0.0.1",
                port=port or self.port,
                dbname="postgres",
                user=user,
                password=password,
                connect_timeout=5,
            ) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def creds(self, user: str, password: str, port: int | None = None, **extra: Any) -> str:
        return json.dumps(
            {
                "engine": "postgres",
                "host": "127.0.0.1",
                "port": port or self.port,
                "username": user,
                "password": password,
                "dbname": "postgres",
                **extra,
            }
        )


@contextlib.contextmanager
def password_cluster() -> Iterator[Target]:
    """A throw-away PostgreSQL cluster where logins over TCP need their password (the
    superuser `postgres` excepted)."""
    cluster = LocalCluster.start()
    try:
        (cluster.data_dir / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
        yield Target(cluster)
    finally:
        cluster.stop()
