"""A migrated SQLite file is already in WAL mode, so the connections that open it next, several
at once, never have to switch it (a switch they race for fails one of them at once: "database is
locked", which no busy timeout waits out)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from secretsd.store.database import Database

TRIALS = 10


def _journal_mode(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


def test_migrate_leaves_the_file_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    Database(f"sqlite:///{path}").migrate()
    assert _journal_mode(path) == "wal"


def _first_writes_at_once(url: str, connections: int) -> list[str]:
    databases = [Database(url) for _ in range(connections)]
    barrier = threading.Barrier(connections)
    errors: list[str] = []

    def first_write(db: Database) -> None:
        barrier.wait()
        try:
            with db.transaction(write=True) as tx:
                tx.execute("CREATE TABLE IF NOT EXISTS probe (n INTEGER)")
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=first_write, args=(db,)) for db in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for db in databases:
        db.close()
    return errors


def test_first_writes_of_many_connections_at_once_all_succeed(tmp_path: Path) -> None:
    for trial in range(TRIALS):
        url = f"sqlite:///{tmp_path / f'race{trial}.db'}"
        Database(url).migrate()
        assert _first_writes_at_once(url, 8) == []
