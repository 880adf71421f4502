"""Leases on both backends: one holder at a time, takeover only after expiry, fences grow."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from secretsd.clock import FixedClock
from secretsd.scheduler.leases import LeaseKeeper
from secretsd.store.database import Database
from secretsd.store.events import EventRepository
from secretsd.store.leases import LeaseRepository
from support.factories import new_database

START_MS = 1_800_000_000_000


@pytest.fixture
def database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    url = new_database(request, backend, "leases") or f"sqlite:///{tmp_path / 'leases.db'}"
    db = Database(url)
    db.migrate()
    db.close()
    return url


@pytest.fixture
def connect(database_url: str) -> Iterator[Callable[[], Database]]:
    """Open databases (one per simulated worker), all closed after the test."""
    opened: list[Database] = []

    def open_one() -> Database:
        db = Database(database_url)
        opened.append(db)
        return db

    yield open_one
    for db in opened:
        db.close()


def test_one_holder_until_expiry(connect: Callable[[], Database]) -> None:
    clock = FixedClock(START_MS)
    a = LeaseKeeper(connect(), clock, "a")
    b = LeaseKeeper(connect(), clock, "b")
    first = a.acquire("rotation:x", 30)
    assert first is not None and first.holder == "a" and first.fence == 1
    assert b.acquire("rotation:x", 30) is None
    # Renewal by the holder keeps the fence.
    clock.advance(10)
    renewed = a.acquire("rotation:x", 30)
    assert renewed is not None and renewed.fence == 1
    assert renewed.expires_ms == clock.now_ms() + 30_000
    clock.advance(29)
    assert b.acquire("rotation:x", 30) is None
    clock.advance(1)
    taken = b.acquire("rotation:x", 30)
    assert taken is not None and taken.holder == "b" and taken.fence == 2
    with connect().transaction() as tx:
        repo = LeaseRepository(tx)
        assert not repo.holds("rotation:x", "a", 1, clock.now_ms())
        assert repo.holds("rotation:x", "b", 2, clock.now_ms())


def test_release_lets_another_take_it_at_once(connect: Callable[[], Database]) -> None:
    clock = FixedClock(START_MS)
    a = LeaseKeeper(connect(), clock, "a")
    b = LeaseKeeper(connect(), clock, "b")
    assert a.acquire("purge", 60) is not None
    a.release("purge")
    taken = b.acquire("purge", 60)
    assert taken is not None and taken.fence == 2


def test_racing_holders_never_share_a_lease(connect: Callable[[], Database]) -> None:
    clock = FixedClock(START_MS)
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def race(name: str) -> None:
        keeper = LeaseKeeper(databases[name], clock, name)
        barrier.wait()
        if keeper.acquire("contended", 60) is not None:
            winners.append(name)

    databases = {f"h{i}": connect() for i in range(8)}
    threads = [threading.Thread(target=race, args=(name,)) for name in databases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(winners) == 1


def test_service_events_are_kept_in_order(connect: Callable[[], Database]) -> None:
    db = connect()
    with db.transaction(write=True) as tx:
        repo = EventRepository(tx)
        for i in range(3):
            repo.record(
                time_ms=START_MS + i,
                account_id="111122223333",
                region="us-east-1",
                event_source="secretsmanager.amazonaws.com",
                event_name="RotationStarted",
                resource_arn="arn:aws:secretsmanager:us-east-1:111122223333:secret:x-AbCdEf",
                details={"n": i},
            )
    with db.transaction() as tx:
        repo = EventRepository(tx)
        listed = repo.since("111122223333", "us-east-1", "", 10)
        assert [e.details["n"] for e in listed] == [0, 1, 2]
        assert repo.since("111122223333", "us-east-1", listed[0].event_id, 10) == listed[1:]
        newest = repo.for_resource(listed[0].resource_arn or "", 2)
        assert [e.details["n"] for e in newest] == [2, 1]
        arn = listed[0].resource_arn or ""
        latest = repo.latest_for_resource(arn, ("RotationStarted", "RotationFailed"))
        assert latest is not None and latest.details["n"] == 2
        assert repo.latest_for_resource(arn, ("RotationFailed",)) is None
        assert repo.latest_for_resource(arn + "x", ("RotationStarted",)) is None
