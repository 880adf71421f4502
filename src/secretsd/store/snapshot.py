"""Consistent snapshots of a whole database, and loading one into an empty database.

A snapshot is every table's rows (yoyo's own bookkeeping aside) read in ONE read transaction, so
it is a cut of the data as it was at one moment, while servers keep reading and writing:

- SQLite (WAL): a deferred transaction sees the database as of its first read until it ends;
  writers carry on meanwhile (a reader never blocks them in WAL mode).
- PostgreSQL: SERIALIZABLE READ ONLY DEFERRABLE, as `pg_dump --serializable-deferrable` uses: it
  waits for a snapshot no concurrent transaction can make anomalous, then never blocks or fails.

Values are typed by their column (text, int, bytes, float, bool) rather than by dialect, so a
snapshot of either backend loads into the other. The yoyo migration ids applied at the time are
part of it: a restore rebuilds exactly that schema, loads the rows, then migrates forward.

On SQLite the audit trail has a file of its own (Settings.audit_database_url, ADR 0005): its
tables are the snapshot's "audit" part, read in a second read transaction begun right after the
main one's first read (two cuts, the audit one a moment later). A restore puts the trail's tables
where the target keeps its trail, whichever backend the snapshot came from (`place`).
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from secretsd.store.audit_repository import AUDIT_MIGRATION, open_audit_database
from secretsd.store.database import (
    DEFAULT_CONNECT_TIMEOUT,
    Database,
    DatabaseUrl,
    known_migrations,
)

KINDS = ("text", "int", "bytes", "float", "bool")
MAIN = "main"
AUDIT = "audit"  # the audit trail's own SQLite file
PARTS = (MAIN, AUDIT)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MIGRATIONS_TABLE = "_yoyo_migration"
_SQLITE_FILES = ("", "-wal", "-shm", "-journal")


class SnapshotError(Exception):
    """The snapshot cannot be taken or loaded (the message says why)."""


@dataclass(frozen=True)
class TableShape:
    name: str
    columns: tuple[tuple[str, str], ...]  # (column, kind), in table order
    rows: int
    part: str = MAIN  # which database it was read from (MAIN or AUDIT)

    @property
    def key(self) -> tuple[str, str]:
        return (self.part, self.name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


@dataclass(frozen=True)
class Manifest:
    dialect: str
    migrations: tuple[str, ...]
    tables: tuple[TableShape, ...]  # per part, parents before the tables referring to them

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def part(self, name: str) -> tuple[TableShape, ...]:
        return tuple(t for t in self.tables if t.part == name)


def _internal(table: str) -> bool:
    return table.startswith(("_yoyo", "yoyo_", "sqlite_"))


def _checked(name: str) -> str:
    if not _NAME.match(name):
        raise SnapshotError(f"unexpected table or column name {name!r}")
    return name


def _sqlite_kind(declared: str) -> str:
    # SQLite's own affinity rules, plus the names our migrations use (BYTEA, BOOLEAN).
    upper = declared.upper()
    if "INT" in upper:
        return "int"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if "BLOB" in upper or "BYTEA" in upper:
        return "bytes"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "float"
    if "BOOL" in upper:
        return "bool"
    raise SnapshotError(f"column type {declared!r} has no portable form")


_PG_KINDS = {
    "bigint": "int",
    "integer": "int",
    "smallint": "int",
    "text": "text",
    "character varying": "text",
    "character": "text",
    "bytea": "bytes",
    "double precision": "float",
    "real": "float",
    "boolean": "bool",
}


def _pg_kind(declared: str) -> str:
    kind = _PG_KINDS.get(declared)
    if kind is None:
        raise SnapshotError(f"column type {declared!r} has no portable form")
    return kind


def check_value(kind: str, value: Any, where: str) -> Any:
    """`value` as the Python type of its kind (None stays None), or SnapshotError."""
    if value is None:
        return None
    if kind == "bytes" and isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if kind == "text" and isinstance(value, str):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        # JSON lines have no infinity or NaN (they would come back as null): refused, not lost.
        if not math.isfinite(value):
            raise SnapshotError(f"{where}: a non-finite value in a float column")
        return float(value)
    if kind == "bool" and isinstance(value, bool | int) and value in (0, 1):
        return bool(value)
    raise SnapshotError(f"{where}: a {type(value).__name__} value in a {kind} column")


def _dependency_order(tables: Iterable[str], refs: dict[str, set[str]]) -> list[str]:
    """Tables with every table they reference (by foreign key) before them."""
    pending = {t: {r for r in refs.get(t, set()) if r != t} for t in tables}
    order: list[str] = []
    while pending:
        ready = sorted(t for t, needs in pending.items() if not needs & pending.keys())
        if not ready:
            raise SnapshotError(f"foreign keys form a cycle among {sorted(pending)}")
        order += ready
        for t in ready:
            del pending[t]
    return order


class _Source(Protocol):
    def tables(self) -> list[str]: ...
    def columns(self, table: str) -> list[tuple[str, str]]: ...
    def references(self) -> dict[str, set[str]]: ...
    def migrations(self) -> list[str]: ...
    def count(self, table: str) -> int: ...
    def rows(self, table: str, columns: Sequence[str]) -> Iterator[Sequence[Any]]: ...


class _SqliteSource:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def tables(self) -> list[str]:
        rows = self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return [r[0] for r in rows]

    def columns(self, table: str) -> list[tuple[str, str]]:
        info = self._conn.execute(f'PRAGMA table_info("{_checked(table)}")').fetchall()
        return [(_checked(r[1]), _sqlite_kind(r[2])) for r in info]

    def references(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for table in self.tables():
            fks = self._conn.execute(f'PRAGMA foreign_key_list("{_checked(table)}")')
            out[table] = {r[2] for r in fks}
        return out

    def migrations(self) -> list[str]:
        try:
            rows = self._conn.execute(f"SELECT migration_id FROM {_MIGRATIONS_TABLE}").fetchall()
        except sqlite3.OperationalError:
            return []
        return sorted(r[0] for r in rows)

    def count(self, table: str) -> int:
        row = self._conn.execute(f'SELECT COUNT(*) FROM "{_checked(table)}"').fetchone()
        return int(row[0])

    def rows(self, table: str, columns: Sequence[str]) -> Iterator[Sequence[Any]]:
        listed = ", ".join(f'"{_checked(c)}"' for c in columns)
        yield from self._conn.execute(f'SELECT {listed} FROM "{_checked(table)}"')


class _PostgresSource:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._cursors = 0

    def tables(self) -> list[str]:
        rows = self._conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def columns(self, table: str) -> list[tuple[str, str]]:
        rows = self._conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s"
            " ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        return [(_checked(str(r[0])), _pg_kind(str(r[1]))) for r in rows]

    def references(self) -> dict[str, set[str]]:
        rows = self._conn.execute(
            "SELECT src.relname, dst.relname FROM pg_constraint c"
            " JOIN pg_class src ON src.oid = c.conrelid"
            " JOIN pg_class dst ON dst.oid = c.confrelid"
            " WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace"
        ).fetchall()
        out: dict[str, set[str]] = {}
        for src, dst in rows:
            out.setdefault(str(src), set()).add(str(dst))
        return out

    def migrations(self) -> list[str]:
        if _MIGRATIONS_TABLE not in self.tables():
            return []
        rows = self._conn.execute(f"SELECT migration_id FROM {_MIGRATIONS_TABLE}").fetchall()
        return sorted(str(r[0]) for r in rows)

    def count(self, table: str) -> int:
        query = sql.SQL("SELECT COUNT(*) FROM {}").format(sql.Identifier(table))
        row = self._conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])

    def rows(self, table: str, columns: Sequence[str]) -> Iterator[Sequence[Any]]:
        self._cursors += 1
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in columns), sql.Identifier(table)
        )
        # A server-side cursor: rows stream in batches instead of the table in memory at once.
        with self._conn.cursor(name=f"snapshot_{self._cursors}") as cursor:
            cursor.itersize = 64  # rows can be large (Lambda code)
            cursor.execute(query)
            yield from cursor


def _pg_conninfo(url: DatabaseUrl) -> str:
    if "connect_timeout" in conninfo_to_dict(url.url):
        return url.url
    return make_conninfo(url.url, connect_timeout=DEFAULT_CONNECT_TIMEOUT)


class Snapshot:
    """What `take` yields: the manifest (counted inside the read transactions) and the rows."""

    def __init__(self, sources: dict[str, _Source], manifest: Manifest) -> None:
        self._sources = sources
        self.manifest = manifest

    def rows(self, table: TableShape) -> Iterator[tuple[Any, ...]]:
        kinds = [kind for _, kind in table.columns]
        where = f"table {table.name}"
        for row in self._sources[table.part].rows(table.name, table.column_names):
            yield tuple(check_value(k, v, where) for k, v in zip(kinds, row, strict=True))


def _shapes(source: _Source, part: str) -> tuple[TableShape, ...]:
    tables = [t for t in source.tables() if not _internal(t)]
    order = _dependency_order(tables, source.references())
    return tuple(
        TableShape(name, tuple(source.columns(name)), source.count(name), part) for name in order
    )


@contextmanager
def _reading(url: DatabaseUrl) -> Iterator[_Source]:
    """One read transaction over the database; its snapshot is fixed by the first read."""
    if url.dialect == "sqlite":
        if not Path(url.sqlite_path).is_file():
            raise SnapshotError(f"no database at {url.sqlite_path}")
        conn = sqlite3.connect(url.sqlite_path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute("BEGIN")
            yield _SqliteSource(conn)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    pg = _pg_connect(url, autocommit=False)
    try:
        pg.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
        pg.read_only = True
        pg.deferrable = True
        yield _PostgresSource(pg)
        pg.rollback()
    finally:
        pg.close()


@contextmanager
def take(database_url: str, audit_url: str | None = None) -> Iterator[Snapshot]:
    """A consistent snapshot of the database, readable until the context ends; with the audit
    trail's own database (`audit_url`, when it is not the main one and exists) as the AUDIT
    part, read in a transaction begun once the main one has its snapshot."""
    with ExitStack() as stack:
        main = stack.enter_context(_reading(DatabaseUrl.parse(database_url)))
        migrations = main.migrations()  # the main transaction's first read: its cut
        if not migrations:
            raise SnapshotError("the database has no secretsd schema (was it initialised?)")
        dialect = DatabaseUrl.parse(database_url).dialect
        sources: dict[str, _Source] = {MAIN: main}
        shapes = _shapes(main, MAIN)
        if audit_url is not None and audit_url != database_url:
            parsed = DatabaseUrl.parse(audit_url)
            if parsed.dialect != "sqlite" or Path(parsed.sqlite_path).is_file():
                sources[AUDIT] = stack.enter_context(_reading(parsed))
                shapes += _shapes(sources[AUDIT], AUDIT)
        yield Snapshot(sources, Manifest(dialect, tuple(migrations), shapes))


# -- loading ---------------------------------------------------------------------------------


def _target_tables(url: DatabaseUrl) -> list[str]:
    if url.dialect == "sqlite":
        if not Path(url.sqlite_path).exists():
            return []
        conn = sqlite3.connect(url.sqlite_path)
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
            return [r[0] for r in rows if not r[0].startswith("sqlite_")]
        finally:
            conn.close()
    with _pg_connect(url, autocommit=True) as pg:
        return _PostgresSource(pg).tables()


def _pg_connect(url: DatabaseUrl, autocommit: bool) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(_pg_conninfo(url), autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise SnapshotError(f"cannot connect to the database: {exc}") from exc


def _distinct(database_url: str, audit_url: str | None) -> list[str]:
    return [database_url] if audit_url in (None, database_url) else [database_url, str(audit_url)]


def target_is_empty(database_url: str, audit_url: str | None = None) -> bool:
    """No table in the target's database, nor in its audit trail's own (when it has one)."""
    return not any(_target_tables(DatabaseUrl.parse(u)) for u in _distinct(database_url, audit_url))


def clear_target(database_url: str, audit_url: str | None = None) -> None:
    """Remove every table of the target (SQLite files themselves): its data is lost."""
    for each in _distinct(database_url, audit_url):
        url = DatabaseUrl.parse(each)
        if url.dialect == "sqlite":
            for suffix in _SQLITE_FILES:
                with suppress(FileNotFoundError):
                    Path(url.sqlite_path + suffix).unlink()
            continue
        with _pg_connect(url, autocommit=False) as pg:
            for table in _PostgresSource(pg).tables():
                pg.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(table)))
            pg.commit()


def check_migrations(migrations: Sequence[str]) -> None:
    """Refuse a snapshot of a schema this version cannot rebuild (taken by a newer secretsd)."""
    unknown = sorted(set(migrations) - set(known_migrations()))
    if unknown:
        raise SnapshotError(
            "the backup was taken with a newer secretsd (schema migrations unknown here:"
            f" {', '.join(unknown)}): restore it with that version or a later one"
        )


def prepare_target(
    database_url: str, migrations: Sequence[str], audit_url: str | None = None
) -> None:
    """Build exactly the schema of a snapshot taken at `migrations` in an empty target, and the
    audit trail's own file (SQLite) as servers create it."""
    check_migrations(migrations)
    db = Database(database_url)
    try:
        db.migrate(only=set(migrations))
    finally:
        db.close()
    if audit_url is not None and audit_url != database_url:
        open_audit_database(audit_url, database_url).close()


def migrate_target(database_url: str) -> None:
    """Bring a restored database's schema up to date, and give PostgreSQL's planner statistics
    of what was just loaded (Database.analyze): the first reads after a restore are then as
    fast as any."""
    db = Database(database_url)
    try:
        db.migrate()
        db.analyze()
    finally:
        db.close()


def audit_table_names() -> frozenset[str]:
    """The audit trail's tables: those its migration creates (all a separate audit file holds)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(AUDIT_MIGRATION.read_text())
        return frozenset(_SqliteSource(conn).tables())
    finally:
        conn.close()


@dataclass(frozen=True)
class Placement:
    """Which of a snapshot's tables a restore loads as the main database's and which as the
    audit trail's, wherever the target keeps its trail."""

    main: tuple[TableShape, ...]
    audit: tuple[TableShape, ...]


def place(manifest: Manifest) -> Placement:
    """The trail is the AUDIT part when there is one (a SQLite source's own audit file; the main
    file's copies of those tables are unused there), else the main part's audit tables (a
    PostgreSQL source's, or an older backup's)."""
    audit = manifest.part(AUDIT)
    names = {t.name for t in audit} if audit else audit_table_names()
    if not audit:
        audit = tuple(t for t in manifest.part(MAIN) if t.name in names)
    return Placement(tuple(t for t in manifest.part(MAIN) if t.name not in names), audit)


class Restore:
    """Loads a snapshot into a prepared target: the main database in ONE transaction (all of
    it, or none), the audit trail in that same one where the target keeps it in the main
    database (PostgreSQL), else in one of its own file's, committed right after."""

    def __init__(self, database_url: str, audit_url: str, manifest: Manifest) -> None:
        placement = place(manifest)
        shared = audit_url == database_url
        main_load = placement.main + (placement.audit if shared else ())
        self._loaders = [Loader(database_url, manifest.part(MAIN), main_load)]
        try:
            if not shared and placement.audit:
                self._loaders.append(Loader(audit_url, placement.audit, placement.audit))
        except BaseException:
            self.close()
            raise
        self._by_table = {t.key: loader for loader in self._loaders for t in loader.loads}

    def insert(self, table: TableShape, rows: Sequence[Sequence[Any]]) -> None:
        loader = self._by_table.get(table.key)
        if loader is not None:  # else superseded: a SQLite source's unused audit tables
            loader.insert(table, rows)

    def commit(self) -> None:
        for loader in self._loaders:
            loader.commit()

    def close(self) -> None:
        for loader in self._loaders:
            loader.close()


class Loader:
    """Loads rows into tables of a prepared target in ONE transaction: all of them, or none.
    `schema`: every table the target must have (the snapshot's); `load`: those to fill (the
    others keep what the migrations put there)."""

    def __init__(
        self, database_url: str, schema: Sequence[TableShape], load: Sequence[TableShape]
    ) -> None:
        self._url = DatabaseUrl.parse(database_url)
        self._schema = tuple(schema)
        self.loads = tuple(load)
        self._sqlite: sqlite3.Connection | None = None
        self._pg: psycopg.Connection[Any] | None = None
        self._source: _Source
        if self._url.dialect == "sqlite":
            self._sqlite = sqlite3.connect(self._url.sqlite_path, isolation_level=None)
            self._sqlite.execute("PRAGMA journal_mode=WAL")
            self._sqlite.execute("PRAGMA synchronous=FULL")
            self._sqlite.execute("PRAGMA foreign_keys=ON")
            self._sqlite.execute("BEGIN IMMEDIATE")
            self._source = _SqliteSource(self._sqlite)
        else:
            self._pg = _pg_connect(self._url, autocommit=False)
            self._source = _PostgresSource(self._pg)
        self._statements: dict[str, Any] = {}
        try:
            self._check_shapes()
        except BaseException:
            self.close()
            raise

    def _check_shapes(self) -> None:
        present = {t for t in self._source.tables() if not _internal(t)}
        wanted = {t.name for t in self._schema}
        if present != wanted:
            raise SnapshotError(
                "the rebuilt schema does not match the backup's tables"
                f" (missing: {sorted(wanted - present)}, extra: {sorted(present - wanted)})"
            )
        for table in (*self._schema, *self.loads):
            if table.name not in present:
                raise SnapshotError(f"table {table.name}: not in the rebuilt schema")
            columns = dict(self._source.columns(table.name))
            if set(columns) != set(table.column_names):
                raise SnapshotError(f"table {table.name}: columns differ from the backup's")
        # Rows some migrations insert (counters and the like) are in the snapshot too.
        for table in reversed(self.loads):
            self._execute(f'DELETE FROM "{_checked(table.name)}"')

    def _execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        if self._sqlite is not None:
            self._sqlite.execute(statement, params)
        else:
            assert self._pg is not None
            self._pg.execute(statement.replace("?", "%s"), params)

    def insert(self, table: TableShape, rows: Sequence[Sequence[Any]]) -> None:
        statement = self._statements.get(table.name)
        if statement is None:
            columns = ", ".join(f'"{_checked(c)}"' for c in table.column_names)
            marks = ", ".join("?" for _ in table.columns)
            statement = f'INSERT INTO "{_checked(table.name)}" ({columns}) VALUES ({marks})'
            self._statements[table.name] = statement
        if self._sqlite is not None:
            self._sqlite.executemany(statement, rows)
        else:
            assert self._pg is not None
            with self._pg.cursor() as cursor:
                cursor.executemany(statement.replace("?", "%s"), rows)

    def commit(self) -> None:
        for table in self.loads:
            if self._source.count(table.name) != table.rows:
                raise SnapshotError(f"table {table.name}: row count differs from the backup's")
        if self._sqlite is not None:
            self._sqlite.execute("COMMIT")
        else:
            assert self._pg is not None
            self._pg.commit()

    def close(self) -> None:
        if self._sqlite is not None:
            if self._sqlite.in_transaction:
                self._sqlite.execute("ROLLBACK")
            self._sqlite.close()
            self._sqlite = None
        if self._pg is not None:
            self._pg.close()
            self._pg = None
