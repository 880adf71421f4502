"""The SQLite value cache and what empties it: a write declared to change one secret only
(PutSecretValue, the day's first access) invalidates that secret's cached reads and no other's,
lease renewals invalidate nothing, any other write (or another worker's) invalidates everything;
and whatever was invalidated, a read never answers an older value than the last write."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from secretsd.clock import FixedClock
from secretsd.crypto import aead
from secretsd.crypto.rootkey import RootKeyring
from secretsd.kms.keyring import Keyring
from secretsd.scheduler.leases import LeaseKeeper
from secretsd.service.authorization import Authorizer, GenerationWatch
from secretsd.service.pagination import TokenCodec
from secretsd.service.secrets import SecretsService
from secretsd.store.database import Database
from support.contexts import ROOT_CTX

CTX = ROOT_CTX
START_MS = 1_800_000_000_000


class Worker:
    """One worker's service, with a value cache, counting the reads that missed it."""

    def __init__(self, url: str, root_key: RootKeyring, clock: FixedClock) -> None:
        self.db = Database(url)
        self.clock = clock
        authorizer = Authorizer(self.db, clock, GenerationWatch(self.db))
        self.service = SecretsService(
            self.db,
            Keyring(root_key, clock),
            clock,
            TokenCodec(root_key),
            authorizer,
            value_cache_seconds=3600,
        )
        self.misses = 0
        read = self.service._read

        def counting_read(*args: Any, **kwargs: Any) -> Any:
            self.misses += 1
            return read(*args, **kwargs)

        self.service._read = counting_read  # type: ignore[method-assign]

    def get(self, name: str) -> str | None:
        return self.service.get_secret_value(
            CTX, secret_id=name, version_id=None, version_stage=None
        ).string

    def put(self, name: str, value: str) -> None:
        self.service.put_secret_value(
            CTX,
            secret_id=name,
            token=str(uuid.uuid4()),
            secret_string=value,
            secret_binary=None,
            version_stages=None,
        )

    def create(self, name: str, value: str) -> None:
        self.service.create_secret(
            CTX,
            name=name,
            token=str(uuid.uuid4()),
            description=None,
            kms_key_id=None,
            secret_string=value,
            secret_binary=None,
            tags=None,
        )


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cache.db'}"
    Database(url).migrate()
    return url


@pytest.fixture
def workers(url: str) -> Iterator[tuple[Worker, Worker]]:
    root_key = RootKeyring({1: aead.new_key()}, 1)
    clock = FixedClock(START_MS)
    a, b = Worker(url, root_key, clock), Worker(url, root_key, clock)
    yield a, b
    a.db.close()
    b.db.close()


def _warm(worker: Worker, *names: str) -> None:
    for name in names:
        worker.get(name)  # the day's first access writes LastAccessedDate: its own scope
        worker.get(name)
    worker.misses = 0


def test_a_put_invalidates_only_its_own_secret(workers: tuple[Worker, Worker]) -> None:
    a, _ = workers
    for name in ("x", "y"):
        a.create(name, f"{name}0")
    _warm(a, "x", "y")
    assert (a.get("x"), a.get("y")) == ("x0", "y0")
    assert a.misses == 0
    a.put("x", "x1")
    assert a.get("x") == "x1"
    assert a.misses == 1
    assert a.get("y") == "y0"
    assert a.misses == 1  # still cached


def test_label_moves_and_updates_invalidate_only_their_own_secret(
    workers: tuple[Worker, Worker],
) -> None:
    a, _ = workers
    for name in ("x", "y"):
        a.create(name, f"{name}0")
    a.put("x", "x1")
    _warm(a, "x", "y")
    versions = a.service.list_secret_version_ids(
        CTX, secret_id="x", max_results=None, next_token=None, include_deprecated=False
    )[1].items
    previous = next(v.version.version_id for v in versions if "AWSPREVIOUS" in v.stages)
    current = next(v.version.version_id for v in versions if "AWSCURRENT" in v.stages)
    a.service.update_secret_version_stage(
        CTX, secret_id="x", version_stage="AWSCURRENT", move_to=previous, remove_from=current
    )
    assert a.get("x") == "x0"  # AWSCURRENT moved back
    assert a.get("y") == "y0"
    assert a.misses == 1
    a.service.update_secret(
        CTX,
        secret_id="x",
        token=str(uuid.uuid4()),
        description="changed",
        kms_key_id=None,
        secret_string="x2",
        secret_binary=None,
    )
    assert a.get("x") == "x2"
    assert a.get("y") == "y0"
    assert a.misses == 2


def test_lease_renewals_invalidate_nothing(workers: tuple[Worker, Worker]) -> None:
    a, _ = workers
    a.create("x", "x0")
    _warm(a, "x")
    leases = LeaseKeeper(a.db, a.clock)
    for _ in range(3):
        assert leases.acquire("replication", ttl_seconds=10) is not None
    leases.release("replication")
    assert a.get("x") == "x0"
    assert a.misses == 0


def test_an_undeclared_write_invalidates_everything(workers: tuple[Worker, Worker]) -> None:
    a, _ = workers
    a.create("x", "x0")
    _warm(a, "x")
    a.create("z", "z0")  # CreateSecret declares nothing
    assert a.get("x") == "x0"
    assert a.misses == 1


def test_another_workers_write_invalidates_everything(workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    for name in ("x", "y"):
        a.create(name, f"{name}0")
    _warm(a, "x", "y")
    b.put("y", "y1")
    assert a.get("y") == "y1"
    assert a.get("x") == "x0"
    assert a.misses == 2


def test_a_nested_undeclared_write_makes_the_commit_global(url: str) -> None:
    db = Database(url)
    try:
        before = (db.change_token(), db.scope_version("s"))
        with db.transaction(write=True) as tx:
            tx.changes_only("s")
            tx.execute("INSERT INTO meta (name, value) VALUES ('a', x'00')")
            with db.transaction(write=True) as inner:
                inner.execute("INSERT INTO meta (name, value) VALUES ('b', x'00')")
        assert db.change_token() != before[0]
        assert db.scope_version("s") == before[1]

        with db.transaction(write=True) as tx:
            tx.execute("INSERT INTO meta (name, value) VALUES ('c', x'00')")
            with db.transaction(write=True) as inner:
                inner.changes_only("t")
                inner.execute("INSERT INTO meta (name, value) VALUES ('d', x'00')")
            tx.changes_only("s")
        token = db.change_token()
        assert (db.scope_version("s"), db.scope_version("t")) == (1, 1)

        with db.transaction(write=True) as tx:
            tx.changes_only("s")
            with db.transaction(write=True) as inner:
                inner.changes_only("t")
                inner.execute("INSERT INTO meta (name, value) VALUES ('e', x'00')")
        assert db.change_token() == token
        assert (db.scope_version("s"), db.scope_version("t")) == (2, 2)
    finally:
        db.close()


def test_too_many_scopes_fall_back_to_one_global_change(url: str) -> None:
    from secretsd.store import database

    db = Database(url)
    try:
        token = db.change_token()
        for i in range(database._MAX_SCOPES):
            with db.transaction(write=True) as tx:
                tx.changes_only(f"s{i}")
                tx.execute("INSERT INTO meta (name, value) VALUES (?, x'00')", (f"k{i}",))
        assert db.change_token() == token
        assert db.scope_version("s0") == 1
        with db.transaction(write=True) as tx:
            tx.changes_only("one-too-many")
            tx.execute("INSERT INTO meta (name, value) VALUES ('last', x'00')")
        assert db.change_token() != token
        assert db.scope_version("s0") == 0
    finally:
        db.close()


def test_a_full_cache_drops_its_least_recently_read_entry(
    workers: tuple[Worker, Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full cache makes room by dropping the entry read least recently, not by emptying
    itself (which sent a seventh of the realistic benchmark's reads to the database, in bursts
    after each emptying)."""
    monkeypatch.setattr("secretsd.service.secrets.VALUE_CACHE_MAX", 3)
    a, _ = workers
    for name in ("w", "x", "y", "z"):
        a.create(name, f"{name}0")
    _warm(a, "z")  # its day's first access recorded, so that reading it again is read-only
    _warm(a, "w", "x", "y")  # full: w, x, y (z went first)
    assert (a.get("w"), a.get("x"), a.get("y")) == ("w0", "x0", "y0")
    assert a.misses == 0
    a.get("w")  # w is now the most recently read; x the least
    a.get("z")  # a fourth entry: x goes
    assert a.misses == 1
    for name in ("w", "y", "z"):
        a.get(name)
    assert a.misses == 1  # all three still cached
    assert a.get("x") == "x0"  # dropped, read again (and w, now least recent, goes)
    assert a.misses == 2
    a.get("y")
    a.get("z")
    assert a.misses == 2
    a.get("w")
    assert a.misses == 3
    assert len(a.service._value_cache) == 3
