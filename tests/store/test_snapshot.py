"""Snapshots at the store level, on both backends: a snapshot of an older schema is rebuilt at
that schema, loaded, then migrated forward (the data migrations see the restored rows); a
snapshot of a newer schema is refused; a load that fails leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from secretsd.store import snapshot
from secretsd.store.database import Database, known_migrations
from secretsd.store.snapshot import Manifest, SnapshotError
from secretsd.store.snapshot_format import SnapshotReader, encode
from support.factories import new_database


def _url(request: pytest.FixtureRequest, backend: str, path: Path) -> str:
    return new_database(request, backend, "snapshot") or f"sqlite:///{path}"


def _text(url: str) -> bytes:
    with snapshot.take(url) as snap:
        return b"".join(encode(snap, 0, lambda n: None))


def test_an_older_schema_is_rebuilt_loaded_and_migrated_forward(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    newest = known_migrations()[-1]
    older = [m for m in known_migrations() if m != newest]
    source = _url(request, backend, tmp_path / "source.db")
    db = Database(source)
    db.migrate(only=set(older))
    with db.transaction(write=True) as tx:
        tx.execute("INSERT INTO accounts (account_id, created_ms) VALUES (?, ?)", ("1" * 12, 7))
        tx.execute("INSERT INTO meta (name, value) VALUES (?, ?)", ("blob", bytes(range(256))))
    db.close()
    reader = SnapshotReader([_text(source)])
    assert newest not in reader.manifest.migrations

    target = _url(request, backend, tmp_path / "target.db")
    assert snapshot.target_is_empty(target)
    snapshot.prepare_target(target, reader.manifest.migrations)
    loader = snapshot.Loader(target, reader.manifest)
    try:
        for table, batch in reader.batches():
            loader.insert(table, batch)
        loader.commit()
    finally:
        loader.close()
    snapshot.migrate_target(target)

    restored = SnapshotReader([_text(target)])
    assert newest in restored.manifest.migrations
    rows = {t.name: b for t, b in restored.batches()}
    assert rows["accounts"] == [("1" * 12, 7)]
    assert ("blob", bytes(range(256))) in rows["meta"]
    assert not snapshot.target_is_empty(target)
    snapshot.clear_target(target)
    assert snapshot.target_is_empty(target)


def test_a_newer_schema_is_refused_and_a_failed_load_rolls_back(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    with pytest.raises(SnapshotError, match="newer secretsd"):
        snapshot.check_migrations([*known_migrations(), "9999.future"])

    source = _url(request, backend, tmp_path / "source.db")
    Database(source).migrate()
    manifest = SnapshotReader([_text(source)]).manifest
    target = _url(request, backend, tmp_path / "target.db")
    snapshot.prepare_target(target, manifest.migrations)
    accounts = next(t for t in manifest.tables if t.name == "accounts")
    # The manifest promises a row the load never gets: the count check refuses to commit.
    short = Manifest(
        manifest.dialect,
        manifest.migrations,
        tuple(t if t is not accounts else type(t)(t.name, t.columns, 1) for t in manifest.tables),
    )
    loader = snapshot.Loader(target, short)
    with pytest.raises(SnapshotError, match="row count"):
        loader.commit()
    loader.close()
    with snapshot.take(target) as snap:
        # Only the rows the migrations themselves insert (the loader replaces them).
        seeded = ("change_counters", "audit_cursor")
        assert all(t.rows == 0 or t.name in seeded for t in snap.manifest.tables)
