"""The service and store in-process, on SQLite and PostgreSQL alike, with a hand-driven clock:
version retention, the deletion purge, ordering of LastChangedDate, and concurrent writers
(several workers or nodes) that must never lose or duplicate a staging label."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsd.clock import DAY_MS, FixedClock
from secretsd.crypto import aead
from secretsd.crypto.rootkey import RootKeyring
from secretsd.errors import ServiceError
from secretsd.kms.keyring import Keyring
from secretsd.service.authorization import Authorizer, GenerationWatch
from secretsd.service.pagination import TokenCodec
from secretsd.service.secrets import SecretsService
from secretsd.store.database import Database
from support.contexts import ROOT_CTX
from support.factories import new_database

CTX = ROOT_CTX
START_MS = 1_800_000_000_000


@pytest.fixture
def database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    return new_database(request, backend, "store") or f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def root_key() -> RootKeyring:
    return RootKeyring({1: aead.new_key()}, 1)


class Node:
    """One worker's worth of components on a shared database."""

    def __init__(self, url: str, root_key: RootKeyring, clock: FixedClock) -> None:
        self.db = Database(url)
        authorizer = Authorizer(self.db, clock, GenerationWatch(self.db))
        self.service = SecretsService(
            self.db, Keyring(root_key, clock), clock, TokenCodec(root_key), authorizer
        )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START_MS)


@pytest.fixture
def node(database_url: str, root_key: RootKeyring, clock: FixedClock) -> Iterator[Node]:
    Database(database_url).migrate()
    n = Node(database_url, root_key, clock)
    yield n
    n.db.close()


def put(node: Node, secret_id: str, value: str, stages: list[str] | None = None) -> str:
    token = str(uuid.uuid4())
    node.service.put_secret_value(
        CTX,
        secret_id=secret_id,
        token=token,
        secret_string=value,
        secret_binary=None,
        version_stages=stages,
    )
    return token


def create(node: Node, name: str, value: str | None = "v") -> str:
    return node.service.create_secret(
        CTX,
        name=name,
        token=str(uuid.uuid4()),
        description=None,
        kms_key_id=None,
        secret_string=value,
        secret_binary=None,
        tags=None,
    ).arn


def test_retention_keeps_newest_hundred_and_last_day(node: Node, clock: FixedClock) -> None:
    create(node, "busy")
    for i in range(130):
        clock.advance(3600)  # one version an hour
        put(node, "busy", str(i))
    _, page = node.service.list_secret_version_ids(
        CTX, secret_id="busy", max_results=100, next_token=None, include_deprecated=True
    )
    versions = list(page.items)
    token = page.next_token
    while token:
        _, page = node.service.list_secret_version_ids(
            CTX, secret_id="busy", max_results=100, next_token=token, include_deprecated=True
        )
        versions += page.items
        token = page.next_token
    # 131 versions exist; all but the newest 100 are older than a day and unlabelled
    assert len(versions) == 100
    newest = versions[0]
    assert newest.stages == ["AWSCURRENT"]
    assert (
        node.service.get_secret_value(
            CTX, secret_id="busy", version_id=None, version_stage=None
        ).string
        == "129"
    )


def test_retention_keeps_every_version_younger_than_a_day(node: Node) -> None:
    create(node, "burst")
    for i in range(120):
        put(node, "burst", str(i))
    _, page = node.service.list_secret_version_ids(
        CTX, secret_id="burst", max_results=None, next_token=None, include_deprecated=True
    )
    assert page.next_token is not None  # 121 versions, first page of 100


def test_purge_after_recovery_window(node: Node, clock: FixedClock) -> None:
    create(node, "short")
    create(node, "long")
    create(node, "kept")
    node.service.delete_secret(CTX, secret_id="short", recovery_window_days=7, force=None)
    node.service.delete_secret(CTX, secret_id="long", recovery_window_days=None, force=None)
    clock.advance(7 * 86400 - 1)
    assert node.service.purge_expired() == 0
    clock.advance(1)
    assert node.service.purge_expired() == 1
    with pytest.raises(ServiceError) as err:
        node.service.describe_secret(CTX, secret_id="short")
    assert err.value.code == "ResourceNotFoundException"
    assert (
        node.service.describe_secret(CTX, secret_id="long").secret.deletion_ms
        == START_MS + 30 * DAY_MS
    )
    clock.advance(23 * 86400)
    assert node.service.purge_expired() == 1
    assert node.service.describe_secret(CTX, secret_id="kept").secret.deletion_ms is None


def test_last_changed_strictly_increases_within_one_millisecond(node: Node) -> None:
    create(node, "fast")
    seen = []
    for i in range(5):
        node.service.update_secret(
            CTX,
            secret_id="fast",
            token=None,
            description=f"d{i}",
            kms_key_id=None,
            secret_string=None,
            secret_binary=None,
        )
        seen.append(node.service.describe_secret(CTX, secret_id="fast").secret.last_changed_ms)
    assert seen == sorted(set(seen)) and len(seen) == 5


def test_concurrent_writers_never_lose_a_label(
    database_url: str, root_key: RootKeyring, clock: FixedClock, node: Node
) -> None:
    create(node, "contended")
    nodes = [Node(database_url, root_key, clock) for _ in range(4)]
    acknowledged: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def writer(n: Node) -> None:
        try:
            for i in range(15):
                token = put(n, "contended", f"value-{i}")
                with lock:
                    acknowledged.append(token)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for n in nodes:
        n.db.close()
    assert not errors, errors
    view = node.service.describe_secret(CTX, secret_id="contended")
    # exactly one AWSCURRENT and one AWSPREVIOUS, on acknowledged versions
    assert view.stages["AWSCURRENT"] in acknowledged
    assert view.stages["AWSPREVIOUS"] in acknowledged
    assert view.stages["AWSCURRENT"] != view.stages["AWSPREVIOUS"]
    assert set(view.stages) == {"AWSCURRENT", "AWSPREVIOUS"}
    _, page = node.service.list_secret_version_ids(
        CTX, secret_id="contended", max_results=100, next_token=None, include_deprecated=True
    )
    assert {v.version.version_id for v in page.items} >= set(acknowledged)
    assert view.secret.version_seq == 1 + len(acknowledged)


def test_concurrent_creates_of_one_name(
    database_url: str, root_key: RootKeyring, clock: FixedClock, node: Node
) -> None:
    nodes = [Node(database_url, root_key, clock) for _ in range(4)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(nodes))

    def creator(n: Node) -> None:
        barrier.wait()
        try:
            create(n, "race")
            outcomes.append("created")
        except ServiceError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=creator, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for n in nodes:
        n.db.close()
    assert sorted(outcomes) == ["ResourceExistsException"] * 3 + ["created"]


def test_a_list_page_carries_each_secrets_own_stages(node: Node, clock: FixedClock) -> None:
    """ListSecrets' SecretVersionsToStages, read for a whole page in one statement (an array
    parameter on PostgreSQL, an IN list on SQLite): every secret gets its own labels only."""
    arns = [create(node, f"page/{i}") for i in range(5)]
    clock.advance(1)
    second = put(node, "page/2", "two")
    pending = put(node, "page/4", "four", stages=["AWSPENDING"])
    listed = node.service.list_secrets(
        CTX,
        filters=None,
        max_results=None,
        next_token=None,
        include_planned_deletion=False,
        sort_by=None,
        sort_order=None,
    ).items
    stages = {view.secret.arn: view.stages for view in listed}
    assert set(stages) == set(arns)
    assert stages[arns[2]]["AWSCURRENT"] == second
    assert stages[arns[2]]["AWSPREVIOUS"] != second
    assert stages[arns[4]]["AWSPENDING"] == pending
    assert "AWSPENDING" not in stages[arns[0]]
    assert all(
        set(s) == {"AWSCURRENT"} for arn, s in stages.items() if arn in (arns[0], arns[1], arns[3])
    )
