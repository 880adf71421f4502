"""SQLite's WAL under group commit: it must start over while writes keep coming.

The checkpointer copies the WAL into the database in a thread of its own. SQLite starts the WAL
over only when a write transaction begins with every frame copied, which a copy running beside
the writes never gave it: the WAL grew without end (1.2 GB after 35,000 PutSecretValue calls in
the benchmark). These run many writers at once on a real file and look at the WAL's size."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from secretsd.store import database
from secretsd.store.database import Database
from secretsd.store.group_commit import wait_for_own_commits

WRITERS = 16
WRITES_EACH = 150
ROW_BYTES = 6_000  # two overflow pages and a leaf: about three WAL frames a commit
# Never started over, the WAL would hold every commit of one _write(): about 3 x 4 KiB each.
NEVER_RESTARTED_BYTES = WRITERS * WRITES_EACH * 3 * 4096


def _database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    # Start over at 800 KB instead of 16 MiB, so that a test run is a second of writes.
    monkeypatch.setattr(database, "_RESTART_AT_BYTES", 200 * 4096)
    db = Database(f"sqlite:///{tmp_path / 'wal.db'}", group_commit=True)
    db.executescript("CREATE TABLE rows (id INTEGER PRIMARY KEY, writer INTEGER, body BLOB);")
    return db


async def _write(db: Database, writers: int = WRITERS, each: int = WRITES_EACH) -> None:
    async def writer(number: int) -> None:
        for _ in range(each):
            with db.transaction(write=True) as tx:
                tx.execute(
                    "INSERT INTO rows (writer, body) VALUES (?, ?)", (number, os.urandom(ROW_BYTES))
                )
            await wait_for_own_commits()

    await asyncio.gather(*(writer(n) for n in range(writers)))


def _wal_bytes(tmp_path: Path) -> int:
    return (tmp_path / "wal.db-wal").stat().st_size


def test_the_wal_starts_over_while_writes_keep_coming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _database(tmp_path, monkeypatch)
    try:
        asyncio.run(_write(db))
        written = WRITERS * WRITES_EACH
        assert _wal_bytes(tmp_path) < NEVER_RESTARTED_BYTES / 4
        with db.statement() as tx:
            row = tx.one("SELECT count(*) AS n FROM rows")
            assert row is not None and row["n"] == written
            check = tx.one("PRAGMA integrity_check")
            assert check is not None and check[0] == "ok"
    finally:
        db.close()


def test_a_reader_holding_old_frames_only_delays_the_start_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _database(tmp_path, monkeypatch)
    reader = sqlite3.connect(tmp_path / "wal.db", isolation_level=None)
    try:
        asyncio.run(_write(db, writers=4, each=10))  # 40 rows
        # A long read (a backup, another worker's listing) keeps the snapshot it began with:
        # the frames after it cannot be copied, so the WAL cannot start over under it.
        reader.execute("BEGIN")
        seen = reader.execute("SELECT count(*) FROM rows").fetchone()[0]
        asyncio.run(_write(db))
        held = _wal_bytes(tmp_path)
        assert held > NEVER_RESTARTED_BYTES * 0.8
        assert reader.execute("SELECT count(*) FROM rows").fetchone()[0] == seen
        reader.execute("COMMIT")
        asyncio.run(_write(db))
        # The WAL started over since: it holds fewer frames than these last writes made.
        frames = reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        assert frames < WRITERS * WRITES_EACH * 3 / 2
        with db.statement() as tx:
            row = tx.one("SELECT count(*) AS n FROM rows")
            assert row is not None and row["n"] == 40 + 2 * WRITERS * WRITES_EACH
    finally:
        reader.close()
        db.close()
