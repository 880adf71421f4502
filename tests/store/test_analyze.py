"""Database.analyze: PostgreSQL's planner gets statistics of a bulk load at once (a restore, a
benchmark's seeding) instead of when autovacuum gets to it; SQLite is left as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from secretsd.store.database import Database
from support.factories import new_database


def test_postgres_tables_have_statistics_after_analyze(request: pytest.FixtureRequest) -> None:
    url = new_database(request, "postgres", "analyze")
    assert url is not None
    db = Database(url)
    try:
        db.migrate()

        def tuples() -> float:
            with db.statement() as tx:
                row = tx.one("SELECT reltuples FROM pg_class WHERE relname = 'secrets'")
            assert row is not None
            return float(row["reltuples"])

        assert tuples() == -1  # never analyzed (nor vacuumed): the planner knows nothing
        db.analyze()
        assert tuples() >= 0
    finally:
        db.close()


def test_sqlite_is_left_without_statistics(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        db.migrate()
        db.analyze()
        with db.statement() as tx:
            found = tx.one("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'")
        assert found is None
    finally:
        db.close()
