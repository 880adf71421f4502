"""`Database` on PostgreSQL used from several threads at once (ADR 0007): a connection per
thread, each replaced on its own, nested transactions on their thread's connection, and the
IAM change counter read right from any thread."""

from __future__ import annotations

import gc
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import psycopg
import pytest

from secretsd.service.authorization import GenerationWatch
from secretsd.store.database import Database, StoreUnavailable
from secretsd.store.iam_repository import IamRepository
from support.postgres import PostgresServer

T = TypeVar("T")


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    url = pg_server.create_database("threads")
    Database(url).migrate()
    return url


@pytest.fixture
def db(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url)
    yield database
    database.close()


def _backend_pid(db: Database) -> int:
    with db.statement() as tx:
        row = tx.one("SELECT pg_backend_pid() AS pid")
    assert row is not None
    return int(row["pid"])


def _in_thread(fn: Callable[[], T]) -> T:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result(timeout=30)


def test_each_thread_has_its_own_connection_and_nested_transactions_keep_theirs(
    db: Database,
) -> None:
    barrier = threading.Barrier(4)

    def work() -> tuple[int, int, int]:
        with db.transaction() as tx:
            row = tx.one("SELECT pg_backend_pid() AS pid")
            # All four inside a transaction at once: none can be sharing a connection.
            barrier.wait(timeout=10)
            with db.transaction() as inner:
                nested = inner.one("SELECT pg_backend_pid() AS pid")
        assert row is not None and nested is not None
        return int(row["pid"]), int(nested["pid"]), _backend_pid(db)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: work(), range(4)))
    assert len({outer for outer, _, _ in results}) == 4
    for outer, nested, later in results:
        assert outer == nested == later


def test_a_lost_connection_is_replaced_in_its_thread_only(db: Database, pg_url: str) -> None:
    with ThreadPoolExecutor(1) as other:
        mine = _backend_pid(db)
        theirs = other.submit(_backend_pid, db).result(timeout=30)
        assert mine != theirs
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (theirs,))
            # pg_terminate_backend only signals: wait until the backend has gone (its goodbye
            # is then on the socket), as a failover's dead primary has before anyone notices.
            deadline = time.monotonic() + 10
            while admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (theirs,)
            ).fetchone():
                assert time.monotonic() < deadline, "the backend did not exit"
                time.sleep(0.01)
        # The other thread notices before its next statement and reconnects ...
        replaced = other.submit(_backend_pid, db).result(timeout=30)
        assert replaced not in (mine, theirs)
        assert other.submit(_backend_pid, db).result(timeout=30) == replaced
        # ... this thread's connection was not touched.
        assert _backend_pid(db) == mine


def test_a_connection_killed_mid_transaction_fails_that_transaction_only(
    db: Database, pg_url: str
) -> None:
    entered, killed = threading.Event(), threading.Event()
    victim_pid: list[int] = []

    def victim() -> StoreUnavailable | None:
        try:
            with db.transaction() as tx:
                row = tx.one("SELECT pg_backend_pid() AS pid")
                assert row is not None
                victim_pid.append(int(row["pid"]))
                entered.set()
                killed.wait(timeout=10)
                tx.one("SELECT 1 AS one")
        except StoreUnavailable as exc:
            return exc
        return None

    mine = _backend_pid(db)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(victim)
        assert entered.wait(timeout=10)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (victim_pid[0],))
        killed.set()
        assert isinstance(future.result(timeout=30), StoreUnavailable)
        # The same thread's next transaction reconnects.
        assert pool.submit(_backend_pid, db).result(timeout=30) not in (victim_pid[0], mine)
    with db.transaction() as tx:
        assert tx.one("SELECT 1 AS one") == {"one": 1}
    assert _backend_pid(db) == mine


def test_close_closes_every_threads_connection(db: Database, pg_url: str) -> None:
    pids = {_backend_pid(db), _in_thread(lambda: _backend_pid(db))}
    db.close()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),)
        ).fetchall()
    assert rows == []
    # Usable again afterwards: a thread that asks reconnects.
    assert _backend_pid(db) not in pids


def test_a_finished_threads_connection_closes_when_the_thread_ends(
    db: Database, pg_url: str
) -> None:
    # With the collector off, a connection kept alive by a reference cycle stays open (and
    # would later be reported as "deleted while still open"): only reference counting may
    # close it, at the moment the thread's locals go away.
    gc.disable()
    try:
        finished = threading.Thread(target=lambda: finished_pid.append(_backend_pid(db)))
        finished_pid: list[int] = []
        finished.start()
        finished.join(timeout=30)
        assert finished_pid
        with psycopg.connect(pg_url, autocommit=True) as admin:
            deadline = time.monotonic() + 10
            while admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (finished_pid[0],)
            ).fetchone():
                assert time.monotonic() < deadline, "the finished thread's connection is open"
                time.sleep(0.01)
    finally:
        gc.enable()
    # This thread's own connection is still there and working.
    assert _backend_pid(db) != finished_pid[0]


def test_a_fork_with_python_in_the_child_leaves_the_parents_connections_alone(
    db: Database,
) -> None:
    # subprocess runs a preexec_fn (as the Lambda runtime's sandbox does) in a forked child,
    # after Python has discarded the other threads' states there, their thread-locals with
    # them. A session closing its connection in the child would send PostgreSQL a Terminate
    # on the socket the parent shares: the parent's next statement then found "server closed
    # the connection unexpectedly" (a CI failure of a rotation test).
    ready, forked = threading.Event(), threading.Event()
    seen: list[int] = []

    def holder() -> None:
        seen.append(_backend_pid(db))
        ready.set()
        forked.wait(timeout=30)
        seen.append(_backend_pid(db))

    thread = threading.Thread(target=holder)
    thread.start()
    assert ready.wait(timeout=30)
    subprocess.run(["true"], preexec_fn=lambda: None, check=True)
    forked.set()
    thread.join(timeout=30)
    assert len(seen) == 2 and seen[0] == seen[1]


def test_a_warning_at_commit_leaves_the_write_unacknowledged(db: Database, pg_url: str) -> None:
    # What a synchronous primary says when its wait for the standby is cancelled: the COMMIT
    # returns with a WARNING. A deferred trigger makes COMMIT itself warn the same way.
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("CREATE TABLE warned (n int)")
        admin.execute(
            "CREATE FUNCTION warn_late() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE WARNING 'late'; RETURN NULL; END $$"
        )
        admin.execute(
            "CREATE CONSTRAINT TRIGGER warn_at_commit AFTER INSERT ON warned"
            " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION warn_late()"
        )
    mine = _backend_pid(db)
    with pytest.raises(StoreUnavailable, match="not confirmed"):
        with db.transaction(write=True) as tx:
            tx.execute("INSERT INTO warned VALUES (1)")
    # The connection that saw it is dropped; the next transaction gets a fresh one.
    assert _backend_pid(db) != mine
    # A warning inside the transaction, before COMMIT, is not the standby's and passes.
    with db.transaction(write=True) as tx:
        tx.execute("DO $$ BEGIN RAISE WARNING 'early'; END $$")


def _bump(db: Database) -> None:
    with db.transaction(write=True) as tx:
        IamRepository(tx).bump_generation()


def test_iam_change_in_one_thread_is_seen_at_once_by_the_others(db: Database) -> None:
    # No listener and no polling: only this process's own notifying writes tell the watch.
    watch = GenerationWatch(db, poll_seconds=3600.0)
    before = _in_thread(watch.current)
    _in_thread(lambda: _bump(db))
    assert watch.current() == before + 1
    assert _in_thread(watch.current) == before + 1


def test_writes_that_change_no_iam_state_do_not_force_a_reread(db: Database, pg_url: str) -> None:
    watch = GenerationWatch(db, poll_seconds=3600.0)
    first = watch.current()
    # Changed behind its back (no notification, as if the listener had missed it) ...
    with psycopg.connect(pg_url, autocommit=True) as other:
        other.execute("UPDATE change_counters SET value = value + 1 WHERE name = 'iam'")
    # ... a lease-like write of this process does not make it look again ...
    with db.transaction(write=True) as tx:
        tx.execute("UPDATE change_counters SET value = value WHERE name = 'iam'")
    assert watch.current() == first
    # ... an IAM change of its own does.
    _bump(db)
    assert watch.current() == first + 2


def test_many_threads_reading_and_changing_iam_state_never_go_backwards(db: Database) -> None:
    watch = GenerationWatch(db, poll_seconds=3600.0)
    start = watch.current()
    stop = threading.Event()
    seen: list[tuple[int, int]] = []

    def reader() -> None:
        last = start
        while not stop.is_set():
            now = watch.current()
            if now < last:
                seen.append((last, now))
            last = now

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for thread in readers:
        thread.start()
    try:
        for _ in range(30):
            _bump(db)
            # Right after this thread's commit, every thread sees at least this generation.
            committed = watch.current()
            assert _in_thread(watch.current) >= committed
    finally:
        stop.set()
        for thread in readers:
            thread.join(timeout=10)
    assert seen == []
    assert watch.current() == start + 30
