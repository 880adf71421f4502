"""SQLite's change token, read from the WAL-index header in memory (store/wal_header.py): it
changes at once when another connection commits (another worker, a tool, a change made behind
secretsd's back), and a connection's own commits leave it alone except through its own write
count, as `PRAGMA data_version` did."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretsd.store.database import Database
from secretsd.store.wal_header import HEADER_SIZE, WalHeader


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    url = f"sqlite:///{tmp_path / 'token.db'}"
    mine, other = Database(url), Database(url)
    mine.migrate()
    yield mine, other
    mine.close()
    other.close()


def commit_elsewhere(other: Database) -> None:
    with other.transaction(write=True) as tx:
        tx.execute("UPDATE change_counters SET value = value + 1 WHERE name = 'iam'")


def test_the_header_is_read_from_memory(databases: tuple[Database, Database]) -> None:
    mine, _ = databases
    token = mine.change_token()
    assert token is not None and isinstance(token[0], bytes)
    assert len(token[0]) == HEADER_SIZE


def test_another_connections_commit_changes_it(databases: tuple[Database, Database]) -> None:
    mine, other = databases
    before = mine.change_token()
    assert mine.change_token() == before  # nothing committed: the same
    commit_elsewhere(other)
    assert mine.change_token() != before


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
    commit_elsewhere(mine)
    after = mine.change_token()
    assert after != before
    assert after is not None and before is not None and after[1] == before[1] + 1


def test_a_commit_elsewhere_between_own_commits_is_not_hidden(
    databases: tuple[Database, Database],
) -> None:
    mine, other = databases
    with mine.transaction(write=True, bookkeeping=True) as tx:
        tx.execute("UPDATE change_counters SET value = value + 1 WHERE name = 'iam'")
    before = mine.change_token()
    commit_elsewhere(other)
    # Our next commit starts from the header the other one left, so it cannot stand for ours.
    with mine.transaction(write=True, bookkeeping=True) as tx:
        tx.execute("UPDATE change_counters SET value = value + 1 WHERE name = 'iam'")
    assert mine.change_token() != before


def test_a_torn_header_is_never_a_token_seen_again(
    databases: tuple[Database, Database], tmp_path: Path
) -> None:
    """While the two copies differ (a commit writing them), each call gets a token of its own,
    so a value read then is never answered from a cache later."""
    mine, _ = databases
    mine.change_token()

    class Torn(WalHeader):
        def read(self) -> bytes | None:
            return None

    real = mine._wal_header
    assert real is not None
    mine._wal_header = Torn(real._map)
    try:
        assert mine.change_token() != mine.change_token()
    finally:
        mine._wal_header = real


def test_without_a_shared_memory_file_it_asks_sqlite(tmp_path: Path) -> None:
    assert WalHeader.open(str(tmp_path / "absent.db")) is None
    (tmp_path / "odd.db-shm").write_bytes(b"\0" * 200)
    assert WalHeader.open(str(tmp_path / "odd.db")) is None  # not the version SQLite writes


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
                commit_elsewhere(other)
            elif step == "own-plain":
                commit_elsewhere(mine)
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
