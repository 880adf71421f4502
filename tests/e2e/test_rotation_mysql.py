"""The built-in MySQL rotators against a real throw-away MariaDB server (password logins over
TCP), through boto3: single user, and alternating users with a master secret."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from support.mariadb import MariaDb
from support.names import NameFactory
from support.rotation import wait_rotated


@pytest.fixture(scope="module")
def mariadb() -> Iterator[MariaDb]:
    server = MariaDb.start()
    try:
        yield server
    finally:
        server.stop()


def builtin(secret_arn: str, strategy: str) -> str:
    region, account = secret_arn.split(":")[3:5]
    return f"arn:aws:lambda:{region}:{account}:function:secretsd-builtin-mysql-{strategy}"


def create_user(db: MariaDb, user: str, password: str, grant: str, option: str = "") -> None:
    conn = db.admin()
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
            cur.execute(f"GRANT {grant} TO %s@'%%' {option}", (user,))
    finally:
        conn.close()


def logs_in(db: MariaDb, user: str, password: str, query: str = "SELECT 1") -> bool:
    try:
        conn = pymysql.connect(
            host="127.0.0.1", port=db.port, user=user, password=password, connect_timeout=5
        )
    except pymysql.MySQLError:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute(query)
        return True
    except pymysql.MySQLError:
        return False
    finally:
        conn.close()


def creds(db: MariaDb, user: str, password: str, **extra: Any) -> str:
    return json.dumps(
        {
            "engine": "mysql",
            "host": "127.0.0.1",
            "port": db.port,
            "username": user,
            "password": password,
            **extra,
        }
    )


def value(sm: Any, secret_id: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        sm.get_secret_value(SecretId=secret_id, VersionStage=stage)["SecretString"]
    )
    return document


def test_single_user(sm: Any, mariadb: MariaDb, unique_name: NameFactory) -> None:
    user = "m" + uuid.uuid4().hex[:10]
    create_user(mariadb, user, "first", "USAGE ON *.*")
    name = unique_name()
    arn = sm.create_secret(Name=name, SecretString=creds(mariadb, user, "first"))["ARN"]
    started = sm.rotate_secret(
        SecretId=name,
        RotationLambdaARN=builtin(arn, "single-user"),
        RotationRules={"AutomaticallyAfterDays": 30},
    )
    wait_rotated(sm, name, started["VersionId"])
    new = value(sm, name)
    assert new["password"] != "first"
    assert logs_in(mariadb, user, new["password"])
    assert not logs_in(mariadb, user, "first")
    assert value(sm, name, "AWSPREVIOUS")["password"] == "first"
    assert sorted(sm.describe_secret(SecretId=name)["VersionIdsToStages"].values()) == [
        ["AWSCURRENT"],
        ["AWSPREVIOUS"],
    ]


def test_alternating_users(sm: Any, mariadb: MariaDb, unique_name: NameFactory) -> None:
    admin, user = "a" + uuid.uuid4().hex[:10], "m" + uuid.uuid4().hex[:10]
    create_user(mariadb, admin, "admin-pw", "ALL PRIVILEGES ON *.*", "WITH GRANT OPTION")
    create_user(mariadb, user, "app-pw", "SELECT ON mysql.*")
    master = sm.create_secret(
        Name=unique_name("master"), SecretString=creds(mariadb, admin, "admin-pw")
    )
    name = unique_name("app")
    sm.create_secret(
        Name=name, SecretString=creds(mariadb, user, "app-pw", masterarn=master["ARN"])
    )
    started = sm.rotate_secret(
        SecretId=name,
        RotationLambdaARN=builtin(master["ARN"], "multi-user"),
        RotationRules={"AutomaticallyAfterDays": 30},
    )
    wait_rotated(sm, name, started["VersionId"])
    first = value(sm, name)
    assert first["username"] == user + "_clone"
    # The clone has the original's privileges; the original still logs in.
    assert logs_in(mariadb, first["username"], first["password"], "SELECT COUNT(*) FROM mysql.db")
    assert logs_in(mariadb, user, "app-pw")

    wait_rotated(sm, name, sm.rotate_secret(SecretId=name)["VersionId"])
    second = value(sm, name)
    assert second["username"] == user and second["password"] != "app-pw"
    assert logs_in(mariadb, user, second["password"], "SELECT COUNT(*) FROM mysql.db")
    assert not logs_in(mariadb, user, "app-pw")
    assert logs_in(mariadb, first["username"], first["password"])
