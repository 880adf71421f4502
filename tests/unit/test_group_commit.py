"""The SQLite group commit: which fsync covers which commit, and what a failed fsync does."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretsd.protocol.asgi import ApiApp, _own_commits_durable, _Seen
from secretsd.store.database import Database, StoreUnavailable
from secretsd.store.group_commit import (
    FsyncFailed,
    GroupCommit,
    unawaited_commits,
    wait_for_own_commits,
)


class ManualFsync:
    """An fsync the test lets finish, one at a time; it records which commits each one covers
    (every commit counted before it started)."""

    def __init__(self) -> None:
        self.group: GroupCommit | None = None
        self.started: list[int] = []  # committed_seq when each fsync started
        self.finished = 0
        self.fail_next: OSError | None = None
        self._release = threading.Semaphore(0)
        self._entered = threading.Semaphore(0)

    def __call__(self, fd: int) -> None:
        assert self.group is not None
        self.started.append(self.group.committed_seq)
        self._entered.release()
        self._release.acquire()
        if self.fail_next is not None:
            raise self.fail_next
        self.finished += 1

    def wait_started(self, timeout: float = 5.0) -> None:
        assert self._entered.acquire(timeout=timeout), "no fsync started"

    def release(self) -> None:
        self._release.release()


def manual_group(tmp_path: Path, idle: float = 30.0) -> tuple[GroupCommit, ManualFsync]:
    wal = tmp_path / "db-wal"
    wal.write_bytes(b"")
    fsync = ManualFsync()
    group = GroupCommit(str(wal), fsync=fsync, idle_sync_seconds=idle)
    fsync.group = group
    return group, fsync


async def until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.001)


def test_commits_before_an_fsync_share_it_and_later_ones_wait_for_the_next(
    tmp_path: Path,
) -> None:
    group, fsync = manual_group(tmp_path)

    async def scenario() -> None:
        first = [group.committed() for _ in range(3)]
        waits = [asyncio.ensure_future(group.wait(seq)) for seq in first]
        await asyncio.to_thread(fsync.wait_started)
        assert fsync.started == [3]
        # Committed while that fsync runs: it must not be acknowledged by it.
        late = group.committed()
        late_wait = asyncio.ensure_future(group.wait(late))
        fsync.release()
        await asyncio.gather(*waits)
        await asyncio.sleep(0.01)
        assert not late_wait.done()
        assert group.synced_seq == 3
        await asyncio.to_thread(fsync.wait_started)
        assert fsync.started == [3, 4]
        fsync.release()
        await late_wait
        assert group.synced_seq == 4
        # Already covered: no new fsync.
        await group.wait(2)
        assert fsync.finished == 2

    try:
        asyncio.run(scenario())
    finally:
        fsync.release()
        group.close()


def test_commits_nobody_waits_for_are_synced_within_the_idle_interval(tmp_path: Path) -> None:
    wal = tmp_path / "db-wal"
    wal.write_bytes(b"")
    calls: list[float] = []
    group = GroupCommit(
        str(wal), fsync=lambda fd: calls.append(time.monotonic()), idle_sync_seconds=0.05
    )
    try:
        started = time.monotonic()
        group.committed()
        deadline = started + 2
        while group.synced_seq < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert group.synced_seq == 1
        assert len(calls) == 1 and calls[0] - started >= 0.04
        time.sleep(0.1)
        assert len(calls) == 1  # idle: nothing more to sync, no fsync
    finally:
        group.close()


def test_a_failed_fsync_acknowledges_nothing_then_or_later(tmp_path: Path) -> None:
    group, fsync = manual_group(tmp_path)

    async def scenario() -> None:
        seq = group.committed()
        waiting = asyncio.ensure_future(group.wait(seq))
        await asyncio.to_thread(fsync.wait_started)
        fsync.fail_next = OSError(5, "Input/output error")
        fsync.release()
        with pytest.raises(StoreUnavailable):
            await waiting
        # Not retried: a later commit is refused too (the pages may be gone from the cache).
        later = group.committed()
        with pytest.raises(FsyncFailed):
            await group.wait(later)
        assert group.synced_seq == 0

    try:
        asyncio.run(scenario())
    finally:
        group.close()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.booleans()), min_size=1, max_size=12))
def test_every_acknowledged_commit_was_committed_before_an_fsync_that_finished(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, bool]]
) -> None:
    """Random bursts of commits (each waited for) while fsyncs start and finish in between: a
    waiter is released only once an fsync that started after its commit has finished."""
    group, fsync = manual_group(tmp_path_factory.mktemp("wal"))
    started_before: dict[int, int] = {}  # seq -> fsyncs started when it was committed

    async def scenario() -> None:
        waits: dict[int, asyncio.Future[None]] = {}
        in_flight = 0
        for commits, finish_one in steps:
            for _ in range(commits):
                seq = group.committed()
                started_before[seq] = len(fsync.started)
                waits[seq] = asyncio.ensure_future(group.wait(seq))
            await asyncio.sleep(0.005)
            if finish_one and len(fsync.started) > fsync.finished:
                finished_before = fsync.finished
                fsync.release()
                await until(lambda before=finished_before: fsync.finished > before)
                await asyncio.sleep(0.005)
            in_flight = len(fsync.started) - fsync.finished
            assert in_flight <= 1
            for seq, waiting in waits.items():
                if waiting.done():
                    # Covered by an fsync that started after the commit and has finished.
                    covering = [
                        i
                        for i, target in enumerate(fsync.started)
                        if i >= started_before[seq] and target >= seq and i < fsync.finished
                    ]
                    assert covering, (seq, fsync.started, fsync.finished)
        # Let everything finish: every commit is acknowledged in the end.
        deadline = time.monotonic() + 10
        while not all(w.done() for w in waits.values()):
            assert time.monotonic() < deadline, "commits never acknowledged"
            if len(fsync.started) > fsync.finished:
                fsync.release()
            await asyncio.sleep(0.002)
        assert group.synced_seq == group.committed_seq

    try:
        asyncio.run(scenario())
    finally:
        for _ in range(20):
            fsync.release()
        group.close()


def group_database(tmp_path: Path) -> tuple[Database, ManualFsync]:
    db = Database(f"sqlite:///{tmp_path}/x.db", group_commit=True)
    group = db.group_commit
    assert group is not None
    fsync = ManualFsync()
    fsync.group = group
    group._fsync = fsync  # the test decides when the fsync ends

    def create() -> None:
        with db.transaction(write=True) as tx:
            tx.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")

    # In a context of its own: the scenario's tasks must not inherit the commit as theirs.
    contextvars.Context().run(create)
    return db, fsync


def test_a_task_waits_for_its_own_commits_only(tmp_path: Path) -> None:
    db, fsync = group_database(tmp_path)

    async def scenario() -> None:
        async def writer() -> None:
            with db.transaction(write=True) as tx:
                tx.execute("INSERT INTO t (v) VALUES ('a')")
            await wait_for_own_commits()

        async def reader() -> None:
            with db.transaction() as tx:
                tx.all("SELECT * FROM t")
            await wait_for_own_commits()

        async def toucher() -> None:
            with unawaited_commits(), db.transaction(write=True) as tx:
                tx.execute("INSERT INTO t (v) VALUES ('touch')")
            await wait_for_own_commits()

        await asyncio.to_thread(fsync.wait_started)  # the CREATE TABLE's fsync, not released
        writing = asyncio.ensure_future(writer())
        # The others are answered while the writer's fsync has not even started.
        await asyncio.wait_for(asyncio.gather(reader(), toucher()), 2)
        await asyncio.sleep(0.02)
        assert not writing.done()
        fsync.release()  # the first fsync, started before the writer's commit
        await asyncio.sleep(0.02)
        assert not writing.done()
        await asyncio.to_thread(fsync.wait_started)
        fsync.release()
        await asyncio.wait_for(writing, 5)

    try:
        asyncio.run(scenario())
    finally:
        for _ in range(5):
            fsync.release()
        db.close()


def mount_app(mounted: Any) -> ApiApp:
    """An ApiApp serving only a mounted app (the console's place): enough to see when it
    answers."""
    return ApiApp(
        service=cast(Any, None),
        handlers={},
        validator=cast(Any, None),
        principals=cast(Any, None),
        max_body_bytes=1024,
        mounts=[("/console/", mounted)],
    )


def test_a_mounted_app_answers_once_its_commits_are_durable_and_never_if_they_cannot_be(
    tmp_path: Path,
) -> None:
    db, fsync = group_database(tmp_path)

    async def console(scope: Any, receive: Any, send: Any) -> None:
        with db.transaction(write=True) as tx:
            tx.execute("INSERT INTO t (v) VALUES ('console')")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = mount_app(console)
    scope = {"type": "http", "method": "POST", "path": "/console/x", "headers": []}

    async def scenario() -> None:
        await asyncio.to_thread(fsync.wait_started)
        fsync.release()  # the CREATE TABLE's
        sent: list[Any] = []

        async def send(message: Any) -> None:
            sent.append(message)

        async def receive() -> Any:
            return {"type": "http.request", "body": b""}

        answering = asyncio.ensure_future(app(scope, receive, send))
        await asyncio.to_thread(fsync.wait_started)
        await asyncio.sleep(0.02)
        assert sent == []  # not before the fsync
        fsync.release()
        await asyncio.wait_for(answering, 5)
        assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]

        sent.clear()
        answering = asyncio.ensure_future(app(scope, receive, send))
        await asyncio.to_thread(fsync.wait_started)
        fsync.fail_next = OSError(5, "Input/output error")
        fsync.release()
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(answering, 5)
        assert sent == []  # nothing acknowledged

    try:
        asyncio.run(scenario())
    finally:
        for _ in range(5):
            fsync.release()
        db.close()


def test_the_api_routes_refuse_a_call_whose_commits_cannot_be_made_durable(
    tmp_path: Path,
) -> None:
    """The JSON, query and REST routes' check: True once the call's commits are fsync'd, False
    (and the call marked failed, so it is audited and answered as a 500) when the fsync fails."""
    db, fsync = group_database(tmp_path)

    async def call(fail: bool) -> tuple[bool, _Seen]:
        seen = _Seen()
        with db.transaction(write=True) as tx:
            tx.execute("INSERT INTO t (v) VALUES ('api')")
        checking = asyncio.ensure_future(
            _own_commits_durable("req-1", "PutSecretValue", seen, "InternalServiceError")
        )
        await asyncio.to_thread(fsync.wait_started)
        await asyncio.sleep(0.01)
        assert not checking.done()  # the answer waits for the fsync
        if fail:
            fsync.fail_next = OSError(28, "No space left on device")
        fsync.release()
        return await asyncio.wait_for(checking, 5), seen

    async def scenario() -> None:
        await asyncio.to_thread(fsync.wait_started)
        fsync.release()  # the CREATE TABLE's
        durable, seen = await call(fail=False)
        assert durable and seen.error_code is None
        durable, seen = await call(fail=True)
        assert not durable
        assert seen.error_code == "InternalServiceError"

    try:
        asyncio.run(scenario())
    finally:
        for _ in range(5):
            fsync.release()
        db.close()
