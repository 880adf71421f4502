"""Snapshots at the store level, on both backends: a snapshot of an older schema is rebuilt at
that schema, loaded, then migrated forward (the data migrations see the restored rows); a
snapshot of a newer schema is refused; a load that fails leaves nothing behind; a SQLite audit
file is a part of its own, restored where the target keeps its trail, and version 1 snapshots
(before that part) still restore."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from secretsd.store import snapshot
from secretsd.store.audit_repository import open_audit_database
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
    loader = snapshot.Restore(target, target, reader.manifest)
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
    loader = snapshot.Restore(target, target, short)
    with pytest.raises(SnapshotError, match="row count"):
        loader.commit()
    loader.close()
    with snapshot.take(target) as snap:
        # Only the rows the migrations themselves insert (the loader replaces them).
        seeded = ("change_counters", "audit_cursor")
        assert all(t.rows == 0 or t.name in seeded for t in snap.manifest.tables)


def _audit_row(db: Database, seq: int) -> None:
    with db.transaction(write=True) as tx:
        tx.execute(
            "INSERT INTO audit_blocks (account_id, region, first_seq, last_seq, first_ms, last_ms,"
            " records, hashes, prev_hash) VALUES (?, ?, ?, ?, 1, 2, ?, 'h', 'p')",
            ("1" * 12, "us-east-1", seq, seq, f'{{"seq": {seq}}}'),
        )


def _restore(target: str, audit_target: str, text: bytes) -> snapshot.Manifest:
    reader = SnapshotReader([text])
    snapshot.prepare_target(target, reader.manifest.migrations, audit_target)
    restore = snapshot.Restore(target, audit_target, reader.manifest)
    try:
        for table, batch in reader.batches():
            restore.insert(table, batch)
        restore.commit()
    finally:
        restore.close()
    return reader.manifest


def _blocks(url: str) -> list[int]:
    db = Database(url)
    try:
        with db.transaction() as tx:
            return [int(r["first_seq"]) for r in tx.all("SELECT first_seq FROM audit_blocks")]
    finally:
        db.close()


def _as_version_1(text: bytes) -> bytes:
    """What a secretsd before the audit part wrote: no "part", the main tables only."""
    lines = text.split(b"\n")
    head = orjson.loads(lines[0])
    kept, rows, at = [], [], 1
    for table in head["tables"]:
        if table.pop("part") == "main":
            kept.append(table)
            rows += lines[at : at + table["rows"]]
        at += table["rows"]
    head.update(version=1, tables=kept)
    end = orjson.dumps({"end": sum(t["rows"] for t in kept)})
    return b"\n".join([orjson.dumps(head), *rows, end]) + b"\n"


def test_the_sqlite_audit_file_is_a_part_restored_where_the_target_keeps_its_trail(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    """A SQLite source's audit file is the snapshot's AUDIT part; restored into SQLite it goes
    to the target's audit file (not the main file's unused tables), into PostgreSQL to the one
    database; a version 1 snapshot (no parts) still restores, its audit tables the main's."""
    main_url = f"sqlite:///{tmp_path / 'source.db'}"
    audit_url = f"sqlite:///{tmp_path / 'source-audit.db'}"
    main_db = Database(main_url)
    main_db.migrate()
    _audit_row(main_db, 99)  # the main file's copy, unused on SQLite: superseded
    main_db.close()
    audit_db = open_audit_database(audit_url, main_url)
    for seq in (1, 2, 3):
        _audit_row(audit_db, seq)
    audit_db.close()
    with snapshot.take(main_url, audit_url) as snap:
        audit = snap.manifest.part(snapshot.AUDIT)
        text = b"".join(encode(snap, 0, lambda n: None))
    assert {t.name for t in audit} == snapshot.audit_table_names()
    assert next(t for t in audit if t.name == "audit_blocks").rows == 3

    for n, (version, source_text, expected) in enumerate(
        [(2, text, [1, 2, 3]), (1, _as_version_1(text), [99])]
    ):
        target = new_database(request, backend, f"snapshot{n}")
        if target is None:
            target = f"sqlite:///{tmp_path / f'target{n}.db'}"
            target_audit = f"sqlite:///{tmp_path / f'target{n}-audit.db'}"
        else:
            target_audit = target
        assert snapshot.target_is_empty(target, target_audit)
        manifest = _restore(target, target_audit, source_text)
        assert SnapshotReader([source_text]).manifest == manifest
        assert bool(manifest.part(snapshot.AUDIT)) == (version == 2)
        assert sorted(_blocks(target_audit)) == expected, version
        if target_audit != target:
            assert _blocks(target) == []  # the main file's audit tables stay unused
        assert not snapshot.target_is_empty(target, target_audit)
        snapshot.clear_target(target, target_audit)
        assert snapshot.target_is_empty(target, target_audit)


def test_unknown_versions_and_parts_are_refused() -> None:
    for head, words in [
        ({"version": 3, "tables": []}, "unsupported snapshot version 3"),
        ({"version": 2, "tables": [{"part": "other"}]}, "unknown part"),
        ({"version": 2, "tables": [{"part": "main"}, {"part": "main"}]}, "a table twice"),
    ]:
        tables = [{"name": "t", "columns": [["c", "int"]], "rows": 0, **t} for t in head["tables"]]
        line = orjson.dumps(
            {
                "format": "secretsd-snapshot",
                "created_ms": 0,
                "dialect": "sqlite",
                "migrations": ["0001.initial"],
                **head,
                "tables": tables,
            }
        )
        with pytest.raises(SnapshotError, match=words):
            SnapshotReader([line + b"\n"])
