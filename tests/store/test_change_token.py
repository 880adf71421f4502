"""SQLite's change token: read once per request (asyncio task), not per call, and never
carried over to another task, another event loop, or code outside any loop. The running task
is found without asyncio's per-call process id check (a system call), so these cases hold the
shortcut to what `asyncio.current_task()` would say. And whatever the implementation: across any
interleaving of commits, the token changes exactly when `data_version` or this connection's own
(unscoped, non-bookkeeping) write count does."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretsd.store.database import Database


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    url = f"sqlite:///{tmp_path / 'token.db'}"
    mine, other = Database(url), Database(url)
    mine.migrate()
    yield mine, other
    mine.close()
    other.close()


def commit_elsewhere(other: Database) -> None:
    with other.statement() as tx:
        tx.execute("UPDATE change_counters SET value = value + 1 WHERE name = 'iam'")


def test_outside_any_loop_every_call_looks(databases: tuple[Database, Database]) -> None:
    mine, other = databases
    before = mine.change_token()
    commit_elsewhere(other)
    assert mine.change_token() != before


def test_one_task_reads_once_and_the_next_task_sees_the_commit(
    databases: tuple[Database, Database],
) -> None:
    mine, other = databases

    async def request() -> tuple[object, object]:
        first = mine.change_token()
        commit_elsewhere(other)
        return first, mine.change_token()

    async def next_request() -> object:
        return mine.change_token()

    async def main() -> tuple[object, object, object]:
        first, same_task = await asyncio.create_task(request())
        later = await asyncio.create_task(next_request())
        return first, same_task, later

    first, same_task, later = asyncio.run(main())
    assert same_task == first  # the same request: the token was read once
    assert later != first  # a new request reads it again


def test_a_new_loop_in_the_same_thread_sees_the_commit(
    databases: tuple[Database, Database],
) -> None:
    mine, other = databases

    async def token() -> object:
        return mine.change_token()

    first = asyncio.run(token())
    commit_elsewhere(other)
    assert asyncio.run(token()) != first
    commit_elsewhere(other)
    # And outside a loop again, after the loops are gone.
    assert mine.change_token() != first


def test_callbacks_outside_tasks_look_every_time(databases: tuple[Database, Database]) -> None:
    mine, other = databases
    seen: list[object] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        seen.append(mine.change_token())  # remembers this loop
        done = loop.create_future()

        def callback() -> None:
            a = mine.change_token()
            commit_elsewhere(other)
            seen.extend((a, mine.change_token()))
            done.set_result(None)

        loop.call_soon(callback)
        await done

    asyncio.run(main())
    assert seen[2] != seen[1]


def write_through(db: Database) -> None:
    """A plain write transaction (counted, unlike a single autocommitted statement)."""
    with db.transaction(write=True) as tx:
        tx.execute("UPDATE change_counters SET value = value + 1 WHERE name = 'iam'")


def test_a_change_behind_secretsds_back_changes_it(
    databases: tuple[Database, Database], tmp_path: Path
) -> None:
    mine, _ = databases
    before = mine.change_token()
    raw = sqlite3.connect(tmp_path / "token.db", isolation_level=None)
    try:
        raw.execute("UPDATE change_counters SET value = value + 1 WHERE name = 'iam'")
    finally:
        raw.close()
    assert mine.change_token() != before


def test_own_bookkeeping_and_scoped_commits_leave_it_alone(
    databases: tuple[Database, Database],
) -> None:
    mine, _ = databases
    before = mine.change_token()
    with mine.transaction(write=True, bookkeeping=True) as tx:
        tx.execute("UPDATE change_counters SET value = value + 1 WHERE name = 'iam'")
    assert mine.change_token() == before
    with mine.transaction(write=True) as tx:
        tx.changes_only("arn:one")
        tx.execute("UPDATE change_counters SET value = value + 1 WHERE name = 'iam'")
    assert mine.change_token() == before
    assert mine.scope_version("arn:one") == 1


def test_own_plain_commit_changes_it_through_the_write_count(
    databases: tuple[Database, Database],
) -> None:
    mine, _ = databases
    before = mine.change_token()
    write_through(mine)
    after = mine.change_token()
    assert after != before
    assert after is not None and before is not None and after[1] == before[1] + 1


# One step of an interleaving: who commits, and how.
_STEPS = st.lists(
    st.sampled_from(["other", "own-plain", "own-bookkeeping", "own-scoped", "look"]),
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(steps=_STEPS)
def test_the_token_changes_exactly_when_data_version_would(steps: list[str]) -> None:
    """Against SQLite's own answer: across any interleaving, the token changes between two looks
    iff another connection committed (data_version changed) or this one made a plain write."""
    with tempfile.TemporaryDirectory() as tmp:
        _check_interleaving(f"sqlite:///{tmp}/prop.db", steps)


def _check_interleaving(url: str, steps: list[str]) -> None:
    mine, other = Database(url), Database(url)
    mine.migrate()
    try:
        token = mine.change_token()
        version = mine._sqlite_conn().execute("PRAGMA data_version").fetchone()[0]
        writes = mine.own_writes
        for step in [*steps, "look"]:
            if step == "other":
                write_through(other)
            elif step == "own-plain":
                write_through(mine)
            elif step in ("own-bookkeeping", "own-scoped"):
                with mine.transaction(write=True, bookkeeping=step == "own-bookkeeping") as tx:
                    tx.changes_only("arn:x")
                    tx.execute("UPDATE change_counters SET value = value + 1 WHERE name = 'iam'")
            else:
                now = mine.change_token()
                now_version = mine._sqlite_conn().execute("PRAGMA data_version").fetchone()[0]
                changed = now_version != version or mine.own_writes != writes
                assert (now != token) == changed
                token, version, writes = now, now_version, mine.own_writes
    finally:
        mine.close()
        other.close()
