"""SQLite's change token: read once per request (asyncio task), not per call, and never
carried over to another task, another event loop, or code outside any loop. The running task
is found without asyncio's per-call process id check (a system call), so these cases hold the
shortcut to what `asyncio.current_task()` would say."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

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
