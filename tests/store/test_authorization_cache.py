"""The Authorizer's caches on SQLite and PostgreSQL: decisions stay right when policies change
(through another connection, as another worker or node would change them) and are not reused
across requests whose condition keys differ."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsd.auth.identity import Identity
from secretsd.clock import FixedClock
from secretsd.service.authorization import Authorizer, GenerationWatch
from secretsd.service.context import CallContext
from secretsd.store.database import Database
from secretsd.store.iam_repository import IamRepository, UserRecord
from secretsd.store.notifications import IAM_CHANNEL, ChangeListener
from secretsd.store.repository import Repository
from support.factories import new_database

ACCOUNT = "111122223333"
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/ana"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:app-AbCdEf"
READ = "secretsmanager:GetSecretValue"


@pytest.fixture
def database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    return new_database(request, backend, "authz") or f"sqlite:///{tmp_path / 'authz.db'}"


@pytest.fixture
def databases(database_url: str) -> Iterator[tuple[Database, Database]]:
    """The authorizer's connection, and another one standing for another worker."""
    mine, other = Database(database_url), Database(database_url)
    mine.migrate()
    with other.transaction(write=True) as tx:
        Repository(tx).insert_account(ACCOUNT, 0)
        IamRepository(tx).insert_user(
            UserRecord(ACCOUNT, "ana", "AIDAEXAMPLEANA000000", "/", (), 0)
        )
    yield mine, other
    mine.close()
    other.close()


def ctx(source_ip: str = "127.0.0.1") -> CallContext:
    identity = Identity(
        account_id=ACCOUNT,
        arn=USER_ARN,
        principal_arn=USER_ARN,
        principal_type="User",
        userid="AIDAEXAMPLEANA000000",
        owner_kind="user",
        owner_name="ana",
        access_key_id="AKIAEXAMPLE000000000",
    )
    return CallContext(identity, "us-east-1", source_ip=source_ip)


def put_policy(db: Database, *statements: dict[str, object]) -> None:
    document = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    with db.transaction(write=True) as tx:
        IamRepository(tx).put_inline_policy(ACCOUNT, "user", "ana", "p", document)


def test_changes_by_another_connection_apply_at_once(databases: tuple[Database, Database]) -> None:
    mine, other = databases
    authorizer = Authorizer(mine, FixedClock(0), GenerationWatch(mine))
    assert not authorizer.check(ctx(), READ, SECRET).allowed
    put_policy(other, {"Effect": "Allow", "Action": READ, "Resource": "*"})
    assert authorizer.check(ctx(), READ, SECRET).allowed
    assert authorizer.check(ctx(), READ, SECRET).allowed  # from the decision cache
    put_policy(other, {"Effect": "Deny", "Action": READ, "Resource": SECRET})
    assert not authorizer.check(ctx(), READ, SECRET).allowed
    with other.transaction(write=True) as tx:
        IamRepository(tx).delete_inline_policy(ACCOUNT, "user", "ana", "p")
    assert not authorizer.check(ctx(), READ, SECRET).allowed


def test_condition_dependent_decisions_are_not_reused(databases: tuple[Database, Database]) -> None:
    mine, other = databases
    authorizer = Authorizer(mine, FixedClock(0), GenerationWatch(mine))
    put_policy(
        other,
        {
            "Effect": "Allow",
            "Action": READ,
            "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        },
    )
    for _ in range(3):
        assert authorizer.check(ctx("10.1.2.3"), READ, SECRET).allowed
        assert not authorizer.check(ctx("192.0.2.1"), READ, SECRET).allowed


def test_resource_policy_text_is_part_of_the_decision(databases: tuple[Database, Database]) -> None:
    mine, _ = databases
    authorizer = Authorizer(mine, FixedClock(0), GenerationWatch(mine))
    grant = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": USER_ARN}, "Action": READ, "Resource": "*"}
            ],
        }
    )
    assert not authorizer.check(ctx(), READ, SECRET).allowed
    assert authorizer.check(ctx(), READ, SECRET, resource_policy=grant).allowed
    assert not authorizer.check(ctx(), READ, SECRET).allowed


def test_postgres_listener_carries_changes_between_connections(
    request: pytest.FixtureRequest,
) -> None:
    """On PostgreSQL, with a listener the counter is read only after a notification (or this
    connection's own write); another connection's IAM change still reaches the cache."""
    url = new_database(request, "postgres", "listen")
    assert url is not None
    mine, other = Database(url), Database(url)
    mine.migrate()
    with other.transaction(write=True) as tx:
        Repository(tx).insert_account(ACCOUNT, 0)
        IamRepository(tx).insert_user(
            UserRecord(ACCOUNT, "ana", "AIDAEXAMPLEANA000000", "/", (), 0)
        )
    # Listening starts after the set-up committed: its notification, delivered late, would
    # otherwise raise the flag after the first check and the counter would be re-read.
    listener = ChangeListener(url, IAM_CHANNEL)
    assert listener.wait_connected(10.0)
    try:
        watch = GenerationWatch(mine, listener=listener)
        authorizer = Authorizer(mine, FixedClock(0), watch)
        first = watch.current()
        assert not authorizer.check(ctx(), READ, SECRET).allowed
        # Nothing changed: no notification, so no read (the counter stays as cached).
        with other.statement() as tx:
            tx.execute("UPDATE change_counters SET value = value + 1000 WHERE name = 'iam'")
        assert watch.current() == first
        # A real IAM write notifies; the next check sees it (bounded wait for the delivery).
        put_policy(other, {"Effect": "Allow", "Action": READ, "Resource": "*"})
        deadline = time.monotonic() + 5.0
        while not authorizer.check(ctx(), READ, SECRET).allowed:
            assert time.monotonic() < deadline, "the notification never arrived"
            time.sleep(0.01)
        assert watch.current() > first + 1000
    finally:
        listener.close()
        mine.close()
        other.close()
