"""SQLite or PostgreSQL behind the same small interface: on SQLite one connection per worker
process, on PostgreSQL one per thread of the worker (ADR 0007: handlers run in a thread pool).

The SQL in this package is written once, in the common subset of both dialects, with `?`
placeholders; for PostgreSQL they are rewritten to `%s` (cached per statement). This keeps a
single set of queries instead of two hand-maintained dialects, without an ORM on the hot path.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import select
import sqlite3
import threading
import weakref
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row, tuple_row
from yoyo import get_backend, read_migrations

from secretsd.store.errors import StoreConflict as StoreConflict
from secretsd.store.errors import StoreUnavailable as StoreUnavailable
from secretsd.store.group_commit import GroupCommit

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# A host that neither answers nor refuses (a crashed machine) must not hold a request for long;
# the next host of a multi-host URL is tried after this many seconds. The URL may say otherwise.
DEFAULT_CONNECT_TIMEOUT = "3"
# SQLSTATE 01000 is the plain WARNING PostgreSQL sends when a COMMIT stopped waiting for the
# synchronous standby (a cancelled wait): the transaction is committed locally only.
_WARNING_SQLSTATE = "01000"
_WAL_CHECKPOINT_BYTES = 4 * 1024 * 1024
# The checkpointer's passes (Database._checkpoint): at most this many PASSIVE ones, until one
# finds no more than this much written during the one before; then one with the writers held
# off, short because there is little left to copy (its two fsyncs cost most).
_CHECKPOINT_PASSES = 4
_RESTART_AFTER_BYTES = 512 * 1024
# ... and only once the WAL holds this much: each start-over holds the writers off for a few
# milliseconds (measured 0.6-9 ms here, 1.4 ms median, mostly its two fsyncs).
_RESTART_AT_BYTES = 16 * 1024 * 1024
# After a burst, the WAL file is cut back to this size when it starts over.
_WAL_SIZE_LIMIT = 64 * 1024 * 1024

Row = Any  # sqlite3.Row or dict: both support row["column"]
Statement = tuple[str, Sequence[Any]]


class Tx(Protocol):
    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...
    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...
    def rowcount(self, sql: str, params: Sequence[Any] = ()) -> int: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def batch(self, statements: Sequence[Statement]) -> list[list[Row]]: ...
    def positional(self, statements: Sequence[Statement]) -> list[Sequence[Sequence[Any]]]: ...
    def defer(self, statements: Sequence[Statement]) -> None: ...
    def changes_only(self, scope: str) -> None: ...


# How many scopes (secrets) the per-scope change counters follow before they start again from
# one global change (a bound on their memory, whatever the number of secrets written).
_MAX_SCOPES = 4096


@dataclass(frozen=True)
class DatabaseUrl:
    dialect: str  # "sqlite" | "postgres"
    url: str
    sqlite_path: str = ""

    def yoyo_url(self) -> str:
        """The PostgreSQL URL in a form yoyo can parse: every connection parameter (hosts and
        ports included, which a multi-host netloc would hide from urlsplit) in the query string,
        which yoyo hands to psycopg as they are."""
        params = conninfo_to_dict(self.url)
        dbname = str(params.pop("dbname", "") or "")
        query = urlencode({k: str(v) for k, v in params.items()})
        return f"postgresql+psycopg:///{quote(dbname)}?{query}"

    @classmethod
    def parse(cls, url: str) -> DatabaseUrl:
        scheme = urlsplit(url).scheme
        if scheme == "sqlite":
            path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
            if not path:
                raise ValueError("a SQLite URL looks like sqlite:///path/to/file.db")
            return cls("sqlite", url, sqlite_path="/" + path if not path.startswith("/") else path)
        if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
            rest = url.split("://", 1)[1]
            # libpq's own syntax for a cluster: several host:port pairs, and
            # target_session_attrs=read-write to connect only to the current primary.
            return cls("postgres", "postgresql://" + rest)
        raise ValueError(
            f"unsupported database URL scheme {scheme!r}: use sqlite:/// or postgresql://"
        )


class _SqliteTx:
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        # None: nothing declared, the commit counts as a change to anything.
        self.scopes: set[str] | None = None
        # Set by a nested write that declared nothing: whatever is declared, anything changed.
        self.anything = False

    def changes_only(self, scope: str) -> None:
        """The caller vouches that this transaction changes only rows belonging to `scope` (a
        secret's ARN) and to scopes it declares the same way: its commit then leaves cached
        reads of everything else valid (Database.scope_version), where an undeclared write
        transaction invalidates them all. Only for what no cache holds beyond those scopes."""
        if self.scopes is None:
            self.scopes = set()
        self.scopes.add(scope)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(sql, params)

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self._conn.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    def rowcount(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    def batch(self, statements: Sequence[Statement]) -> list[list[Row]]:
        return [self._conn.execute(sql, params).fetchall() for sql, params in statements]

    def positional(self, statements: Sequence[Statement]) -> list[Sequence[Sequence[Any]]]:
        # sqlite3.Row is positional already.
        return [self._conn.execute(sql, params).fetchall() for sql, params in statements]

    def defer(self, statements: Sequence[Statement]) -> None:
        for sql, params in statements:
            self._conn.execute(sql, params)


class _PostgresTx:
    dialect = "postgres"

    def __init__(self, conn: psycopg.Connection[Any], statements: dict[str, str]) -> None:
        self._conn = conn
        self._statements = statements
        # Whether this transaction sent a notification (pg_notify): counted at its commit.
        self.notified = False

    def _sql(self, sql: str) -> str:
        converted = self._statements.get(sql)
        if converted is None:
            converted = sql.replace("%", "%%").replace("?", "%s")
            self._statements[sql] = converted
        return converted

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if sql.startswith("SELECT pg_notify("):
            self.notified = True
        self._conn.execute(self._sql(sql), params, prepare=True)

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self._conn.execute(self._sql(sql), params, prepare=True).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._conn.execute(self._sql(sql), params, prepare=True).fetchall()

    def rowcount(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(self._sql(sql), params, prepare=True).rowcount

    def changes_only(self, scope: str) -> None:
        # Nothing is cached from PostgreSQL (change_token is None there).
        pass

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        # psycopg sends the rows in one pipeline: one round trip, not one per row.
        with self._conn.cursor() as cursor:
            cursor.executemany(self._sql(sql), rows)

    def batch(self, statements: Sequence[Statement]) -> list[list[Row]]:
        # One pipeline: the statements go out together and run in order, one round trip for
        # all of them (a failing one raises here, and the transaction rolls back).
        if len(statements) == 1:
            sql, params = statements[0]
            return [_results(self._conn.execute(self._sql(sql), params, prepare=True))]
        with self._conn.pipeline():
            cursors = [
                self._conn.execute(self._sql(sql), params, prepare=True)
                for sql, params in statements
            ]
        return [_results(c) for c in cursors]

    def positional(self, statements: Sequence[Statement]) -> list[Sequence[Sequence[Any]]]:
        """Like batch, for SELECTs whose rows are read by position (wide joined reads): tuples,
        without the names dict_row decodes for every column of every result (20 us of CPU on a
        35-column read, measured with psycopg 3.3)."""
        if len(statements) == 1:
            return [self._tuples(*statements[0]).fetchall()]
        with self._conn.pipeline():
            cursors = [self._tuples(sql, params) for sql, params in statements]
        return [c.fetchall() for c in cursors]

    def _tuples(self, sql: str, params: Sequence[Any]) -> psycopg.Cursor[tuple[Any, ...]]:
        cursor = self._conn.cursor(row_factory=tuple_row)
        return cursor.execute(self._sql(sql), params, prepare=True)

    def defer(self, statements: Sequence[Statement]) -> None:
        self.batch(statements)


def _results(cursor: psycopg.Cursor[Any]) -> list[Row]:
    # Not cursor.description: it builds a Column object per column (a tenth of a PostgreSQL
    # PutSecretValue's CPU went there); the result's field count says the same.
    result = cursor.pgresult
    return cursor.fetchall() if result is not None and result.nfields else []


class _PipelinedPostgresTx(_PostgresTx):
    """A PostgreSQL transaction whose BEGIN goes out with its first statements, and whose
    deferred statements go out with its COMMIT: a transaction that reads once, then writes, is
    two round trips (Database.transaction(pipelined=True))."""

    def __init__(self, conn: psycopg.Connection[Any], statements: dict[str, str]) -> None:
        super().__init__(conn, statements)
        self.begun = False
        self._deferred: list[Statement] = []

    def _send(
        self, statements: Sequence[Statement], *, tuples: bool = False
    ) -> list[psycopg.Cursor[Any]]:
        """BEGIN (the first time) and what was deferred, then `statements`, in one pipeline;
        the cursors of `statements` (with `tuples`, rows as tuples), their results received."""
        head: list[Statement] = [] if self.begun else [("BEGIN", ())]
        head += self._deferred
        self._deferred = []
        self.begun = True
        if not head and len(statements) == 1:
            sql, params = statements[0]
            if tuples:
                return [self._tuples(sql, params)]
            return [self._conn.execute(self._sql(sql), params, prepare=True)]
        with self._conn.pipeline():
            for sql, params in head:
                self._conn.execute(self._sql(sql), params, prepare=True)
            if tuples:
                return [self._tuples(sql, params) for sql, params in statements]
            return [
                self._conn.execute(self._sql(sql), params, prepare=True)
                for sql, params in statements
            ]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if sql.startswith("SELECT pg_notify("):
            self.notified = True
        self._send([(sql, params)])

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self._send([(sql, params)])[0].fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._send([(sql, params)])[0].fetchall()

    def rowcount(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._send([(sql, params)])[0].rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._send([(sql, row) for row in rows])

    def batch(self, statements: Sequence[Statement]) -> list[list[Row]]:
        return [_results(c) for c in self._send(statements)]

    def positional(self, statements: Sequence[Statement]) -> list[Sequence[Sequence[Any]]]:
        return [c.fetchall() for c in self._send(statements, tuples=True)]

    def defer(self, statements: Sequence[Statement]) -> None:
        # Statements whose results nobody reads: they go out with the next statement that is
        # read, or with the COMMIT. An error in one still fails the transaction (at that point).
        for sql, _ in statements:
            if sql.startswith("SELECT pg_notify("):
                self.notified = True
        self._deferred.extend(statements)

    def commit(self) -> None:
        if self.begun or self._deferred:
            self._send([("COMMIT", ())])

    def rollback(self) -> None:
        """After an error: end the transaction if the server has one open (a broken connection
        is the caller's to replace)."""
        self._deferred = []
        status = self._conn.info.transaction_status
        if status in (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR):
            with suppress(psycopg.Error):
                self._conn.execute("ROLLBACK")


class _PgSession:
    """One thread's PostgreSQL connection, with what is counted per connection."""

    __slots__ = ("__weakref__", "commit_warnings", "conn", "pid")

    def __init__(self) -> None:
        self.conn: psycopg.Connection[Any] | None = None
        self.commit_warnings = 0
        self.pid = os.getpid()

    def on_notice(self, diag: psycopg.errors.Diagnostic) -> None:
        # Called by psycopg in the thread running this connection's statement.
        if diag.severity_nonlocalized == "WARNING" and diag.sqlstate == _WARNING_SQLSTATE:
            self.commit_warnings += 1

    def discard(self) -> None:
        if self.conn is not None:
            with suppress(psycopg.Error):
                self.conn.close()
            self.conn = None

    def __del__(self) -> None:
        # The thread that owned this session has ended (its thread-local went away): its
        # connection goes with it now, not whenever the garbage collector gets round to it.
        # Not in a forked child, though: Python drops the other threads' states there (for a
        # subprocess preexec_fn, say), and closing would send PostgreSQL a Terminate on the
        # socket the parent still uses (psycopg's own finaliser checks the pid the same way).
        # Suppressed broadly: at interpreter exit psycopg's own module may be half torn down.
        if self.pid != os.getpid():
            return
        with suppress(Exception):
            self.discard()


def _notice_handler(session: _PgSession) -> Callable[[psycopg.errors.Diagnostic], None]:
    """The connection's notice callback, holding its session weakly: a strong reference would
    be a cycle (session -> connection -> handler -> session), which only the cyclic collector
    frees, so a finished thread's connection stayed open until it ran."""
    ref = weakref.ref(session)

    def on_notice(diag: psycopg.errors.Diagnostic) -> None:
        owner = ref()
        if owner is not None:
            owner.on_notice(diag)

    return on_notice


class Database:
    """Lazily opened connections. SQLite: one, used by the worker's event loop thread.
    PostgreSQL: one per thread that uses it (the loop's, and each handler thread's), each
    opened, checked and replaced on its own; a nested transaction() stays on its thread's."""

    def __init__(
        self,
        url: str,
        *,
        sync_every_commit: bool = True,
        sqlite_page_size: int | None = None,
        group_commit: bool = False,
    ) -> None:
        """SQLite only, all ignored on PostgreSQL. By default every commit is fsync'd inside
        COMMIT (synchronous=FULL), before the caller goes on: for the command-line tools.

        `group_commit=True` (a server worker's connection): commits are fsync'd by a thread of
        their own, several at once (see group_commit.py); the caller awaits
        `wait_for_own_commits()` before it acknowledges anything.

        `sync_every_commit=False`: commits are fsync'd at WAL checkpoints only, for writes that
        may be lost in a power cut (the audit writer in fail-open mode, which may lose its last
        fraction of a second anyway).

        `sqlite_page_size`: for a SQLite file this connection creates (an existing file keeps
        the page size it was made with)."""
        self.url = DatabaseUrl.parse(url)
        self._page_size = sqlite_page_size
        self._synchronous = "FULL" if sync_every_commit and not group_commit else "NORMAL"
        self._group: GroupCommit | None = None
        if group_commit and self.url.dialect == "sqlite":
            self._group = GroupCommit(self.url.sqlite_path + "-wal", checkpoint=self._checkpoint)
        self._checkpoint_conn: sqlite3.Connection | None = None
        self.dialect = self.url.dialect
        self._sqlite: sqlite3.Connection | None = None
        self._local = threading.local()
        # Every live thread's session, to close them all at close() (weak: a thread that ends
        # takes its session with it).
        self._sessions: weakref.WeakSet[_PgSession] = weakref.WeakSet()
        self._sessions_lock = threading.Lock()
        # Shared by the threads: a dict's get and set are atomic, and a statement converted
        # twice by a race converts to the same text.
        self._statements: dict[str, str] = {}
        self._lock_fd: int | None = None
        self._checkpoint_lock: int | None = None
        self._checkpoint_page_size = 4096
        self._own_writes = 0
        self._notified_writes = 0
        self._writes_lock = threading.Lock()
        self._token_task: object = None
        self._token_version = 0
        # SQLite: the outer transaction open on the connection (joined by nested ones), and the
        # commits of transactions declared to change only some scopes, counted per scope.
        self._open_tx: _SqliteTx | None = None
        self._scope_writes: dict[str, int] = {}

    def migrate(self, only: Collection[str] | None = None) -> None:
        """Bring the schema up to date (idempotent; safe to run from several nodes). With `only`,
        apply just those migrations (a restore rebuilds the schema its snapshot was taken at)."""
        if self.dialect == "sqlite":
            Path(self.url.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
            backend_url = "sqlite:////" + self.url.sqlite_path.lstrip("/")
        else:
            backend_url = self.url.yoyo_url()
        backend = get_backend(backend_url)
        migrations = read_migrations(str(MIGRATIONS_DIR))
        if only is not None:
            migrations = migrations.filter(lambda m: m.id in only)
        with backend.lock():
            backend.apply_migrations(backend.to_apply(migrations))
            if self.dialect == "sqlite":
                _set_wal_mode(self.url.sqlite_path)
        backend.connection.close()

    def _sqlite_conn(self) -> sqlite3.Connection:
        if self._sqlite is None:
            conn = sqlite3.connect(
                self.url.sqlite_path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            conn.row_factory = sqlite3.Row
            if self._page_size is not None:
                conn.execute(f"PRAGMA page_size={int(self._page_size)}")
            conn.execute("PRAGMA journal_mode=WAL")
            # Checkpoint when the WAL reaches about 4 MiB whatever the page size (SQLite counts
            # pages: its default of 1,000 pages would let a 64 KiB-page WAL grow to 64 MiB, and
            # its checkpoint stall the committing loop for that long).
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA wal_autocheckpoint={max(1, _WAL_CHECKPOINT_BYTES // page_size)}")
            # FULL: every commit is fsync'd before the client hears "200". NORMAL with group
            # commit: the flusher's fsync is, before the client hears it.
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            if self._group is not None:
                # Checkpoints run in the checkpointer thread, never in a committing request.
                conn.execute("PRAGMA wal_autocheckpoint=0")
                conn.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=10000")
            self._sqlite = conn
        return self._sqlite

    def _writer_lock_fd(self) -> int:
        if self._lock_fd is None:
            self._lock_fd = self._open_writer_lock()
        return self._lock_fd

    def _open_writer_lock(self) -> int:
        return os.open(self.url.sqlite_path + ".writer-lock", os.O_RDWR | os.O_CREAT, 0o600)

    def _pg_session(self) -> _PgSession:
        session: _PgSession | None = getattr(self._local, "pg", None)
        if session is None:
            session = _PgSession()
            self._local.pg = session
            with self._sessions_lock:
                self._sessions.add(session)
        return session

    def _pg_conn(self, session: _PgSession) -> psycopg.Connection[Any]:
        pg = session.conn
        if pg is None or pg.closed or pg.broken or _dropped(pg):
            # A connection lost (the primary died, or failed over) is replaced here, on the next
            # transaction; with a multi-host URL libpq tries each host and, with
            # target_session_attrs=read-write, settles on the new primary.
            session.discard()
            try:
                # Autocommit: single statements run alone; transaction() wraps the rest.
                conn = psycopg.connect(self._conninfo(), row_factory=dict_row, autocommit=True)
            except psycopg.OperationalError as exc:
                raise StoreUnavailable(_first_line(exc)) from exc
            conn.add_notice_handler(_notice_handler(session))
            session.conn = pg = conn
        return pg

    def _conninfo(self) -> str:
        if "connect_timeout" in conninfo_to_dict(self.url.url):
            return self.url.url
        return make_conninfo(self.url.url, connect_timeout=DEFAULT_CONNECT_TIMEOUT)

    def _count_write(self, notified: bool = False) -> None:
        with self._writes_lock:
            self._own_writes += 1
            if notified:
                self._notified_writes += 1

    def _count_sqlite_write(self, scopes: set[str] | None) -> None:
        if scopes is not None and len(self._scope_writes) + len(scopes) <= _MAX_SCOPES:
            for scope in scopes:
                self._scope_writes[scope] = self._scope_writes.get(scope, 0) + 1
            return
        if scopes is not None:
            # Full: start again from one change to everything.
            self._scope_writes.clear()
        self._count_write()

    def scope_version(self, scope: str) -> int:
        """How many committed write transactions of this connection declared `scope` among the
        only ones they changed (Tx.changes_only): with change_token, what a cached read of that
        scope stays valid under. Other connections' commits all show in change_token."""
        return self._scope_writes.get(scope, 0)

    @contextmanager
    def transaction(
        self, write: bool = False, *, bookkeeping: bool = False, pipelined: bool = False
    ) -> Iterator[Tx]:
        """A transaction (BEGIN IMMEDIATE for `write` on SQLite). `bookkeeping`: it changes
        only rows no cache holds (the leases background work takes), so it leaves this
        process's change_token alone: a lease renewed every few seconds must not empty the
        value and policy caches each time (measured: a fifth of GetSecretValue calls missed).

        `pipelined` (PostgreSQL; the same as without on SQLite): the BEGIN goes with the first
        statement, statements deferred (Tx.defer) with the COMMIT, so a transaction that reads
        once and then writes makes two round trips instead of four or more. For transactions
        that read what they need first and catch no database error half-way."""
        if self.dialect == "sqlite":
            conn = self._sqlite_conn()
            if conn.in_transaction:
                # Called from inside another transaction on this connection (say, a permission
                # check loading policies mid-operation): join it, as PostgreSQL's nested
                # transaction() (a savepoint) does.
                outer = self._open_tx
                joined = _SqliteTx(conn)
                yield joined
                if not write or bookkeeping or outer is None:
                    return
                # A nested write that declared nothing makes the whole commit a change to
                # anything; what it declared joins the outer transaction's scopes.
                if joined.scopes is None:
                    outer.anything = True
                else:
                    for scope in joined.scopes:
                        outer.changes_only(scope)
                return
            if write:
                # Writers from several worker processes queue on a file lock first: the kernel
                # wakes the next one the moment the lock is free, where SQLite's own busy
                # handler would poll with sleeps of up to 100 ms (seen as a 600 ms p99).
                fcntl.flock(self._writer_lock_fd(), fcntl.LOCK_EX)
            changes = conn.total_changes
            sqlite_tx = _SqliteTx(conn)
            try:
                # IMMEDIATE takes the write lock up front, so a writer never fails half-way
                # when upgrading from a read lock.
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                self._open_tx = sqlite_tx
                try:
                    yield sqlite_tx
                except sqlite3.IntegrityError as exc:
                    conn.execute("ROLLBACK")
                    raise StoreConflict(str(exc)) from exc
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                self._open_tx = None
                if write:
                    # Only a write that changed rows changes the token caches follow
                    # (change_token): a background pass that found nothing to do must not
                    # empty the workers' value and policy caches (the replication dispatcher
                    # looked at its outbox this way 20 times a second).
                    if not bookkeeping and (conn.total_changes != changes or conn.in_transaction):
                        self._count_sqlite_write(None if sqlite_tx.anything else sqlite_tx.scopes)
                    fcntl.flock(self._writer_lock_fd(), fcntl.LOCK_UN)
            if self._group is not None and write:
                # Even one that changed no row: total_changes would miss DDL, and the fsync of a
                # WAL with nothing new is cheap.
                self._group.committed()
            return
        session = self._pg_session()
        pg = self._pg_conn(session)
        if pipelined and pg.info.transaction_status == pq.TransactionStatus.IDLE:
            yield from self._pipelined(session, pg, write)
            return
        with _pg_errors(session):
            with pg.transaction():
                tx = _PostgresTx(pg, self._statements)
                yield tx
                warnings_before_commit = session.commit_warnings
            self._pg_committed(session, warnings_before_commit, write, tx.notified)

    def _pipelined(
        self, session: _PgSession, pg: psycopg.Connection[Any], write: bool
    ) -> Iterator[Tx]:
        tx = _PipelinedPostgresTx(pg, self._statements)
        with _pg_errors(session):
            try:
                yield tx
                warnings_before_commit = session.commit_warnings
                tx.commit()
            except BaseException:
                tx.rollback()
                raise
            self._pg_committed(session, warnings_before_commit, write, tx.notified)

    def _pg_committed(
        self, session: _PgSession, warnings_before_commit: int, write: bool, notified: bool
    ) -> None:
        if session.commit_warnings != warnings_before_commit:
            # COMMIT returned, but with a warning: on a synchronous cluster that is the
            # cancelled wait for the standby, so the write is not known to survive the
            # primary. Not acknowledged: the client retries (idempotently, by its token).
            session.discard()
            raise StoreUnavailable("commit not confirmed by a synchronous standby")
        if write or notified:
            self._count_write(notified)

    def executescript(self, script: str) -> None:
        """A SQLite script in one transaction (schema set-up of a side file)."""
        conn = self._sqlite_conn()
        fcntl.flock(self._writer_lock_fd(), fcntl.LOCK_EX)
        try:
            conn.executescript("BEGIN IMMEDIATE;\n" + script + "\nCOMMIT;")
        finally:
            fcntl.flock(self._writer_lock_fd(), fcntl.LOCK_UN)
        if self._group is not None:
            self._group.committed()

    def _checkpoint(self) -> None:
        """Copy what the WAL holds into the database file, then let the next writer start the
        WAL over (run by the checkpointer thread, on a connection of its own).

        PASSIVE checkpoints wait for nobody, and under a steady stream of writes that is not
        enough: SQLite starts the WAL over only when a write transaction begins with every frame
        copied, and with the copying in another thread new frames always arrive meanwhile. The
        WAL then grew without end (800 MiB in 40 s of PutSecretValue, measured), every write
        going to blocks the file never had, which the kernel allocates and zeroes first (12% of
        the worker's CPU, measured with perf). So: PASSIVE passes while they shrink what is left,
        and the last, short one with the writers' file lock held, so that no frame comes in
        between; the next write transaction starts the WAL over."""
        conn = self._checkpoint_connection()
        page_size = self._checkpoint_page_size
        previous = -1
        for _ in range(_CHECKPOINT_PASSES):
            _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if copied < frames or frames * page_size < _RESTART_AT_BYTES:
                # A reader still needs frames the copy would overwrite, or the WAL is still
                # small: start it over another time.
                return
            if previous >= 0 and (frames - previous) * page_size <= _RESTART_AFTER_BYTES:
                break
            previous = frames
        # Writes that outrun the copying get a longer wait here rather than a WAL without end.
        lock_fd = self._checkpoint_lock_fd()
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)

    def _checkpoint_connection(self) -> sqlite3.Connection:
        if self._checkpoint_conn is None:
            self._checkpoint_conn = sqlite3.connect(
                self.url.sqlite_path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            # A checkpoint syncs the WAL before it copies frames and the database file after.
            self._checkpoint_conn.execute("PRAGMA synchronous=FULL")
            self._checkpoint_page_size = self._checkpoint_conn.execute(
                "PRAGMA page_size"
            ).fetchone()[0]
        return self._checkpoint_conn

    def _checkpoint_lock_fd(self) -> int:
        # An open file description of its own: flock excludes descriptions, not threads, so the
        # event loop's descriptor would not keep this thread out.
        if self._checkpoint_lock is None:
            self._checkpoint_lock = self._open_writer_lock()
        return self._checkpoint_lock

    async def wait_durable(self) -> None:
        """Return once every commit made so far on this connection is durable (at once without
        group commit, where each commit was). For work that tells the world about what it read
        (a push to another deployment), so the world never learns of a write a power cut could
        still take back."""
        if self._group is not None:
            await self._group.wait(self._group.committed_seq)

    @property
    def group_commit(self) -> GroupCommit | None:
        """The sequencer and flusher of this SQLite connection, with group commit."""
        return self._group

    def delete_in_batches(
        self,
        find: Callable[[Tx, int], list[str]],
        delete: Callable[[Tx, str], None],
        batch: int = 100,
    ) -> int:
        """Delete what `find` returns, `batch` at a time, one transaction per batch (so a purge of
        many rows never holds the write lock for long); returns how many were deleted."""
        deleted = 0
        while True:
            with self.transaction(write=True) as tx:
                found = find(tx, batch)
                for item in found:
                    delete(tx, item)
            deleted += len(found)
            if len(found) < batch:
                return deleted

    def change_token(self) -> tuple[int, int] | None:
        """A value that changes whenever any committed write could have changed the data.

        SQLite's `data_version` changes when another connection (another worker) commits, and
        this connection's own write transactions are counted here. None on PostgreSQL, where
        other nodes' commits cannot be seen this cheaply: callers must not cache there.
        """
        if self.dialect != "sqlite":
            return None
        # Several layers ask during one request (credentials, policies, the value cache): the
        # PRAGMA is read once per request (asyncio task); this connection's own writes still
        # count at once through _own_writes.
        task = self._current_task()
        if task is None or task is not self._token_task:
            row = self._sqlite_conn().execute("PRAGMA data_version").fetchone()
            self._token_version = row[0]
            self._token_task = task
        return (self._token_version, self._own_writes)

    def _current_task(self) -> object:
        """asyncio.current_task(), without its system call: Python 3.11 checks the process id
        (getpid) on every lookup of the running loop, and this is asked several times per
        request (measured: 6 getpid per GetSecretValue). The loop last seen in this thread is
        remembered; a None from it (that loop stopped, another may run) looks again."""
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is not None:
            task = asyncio.current_task(loop)
            if task is not None:
                return task
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._local.loop = None
            return None
        self._local.loop = loop
        return asyncio.current_task(loop)

    @property
    def own_writes(self) -> int:
        """Write transactions committed through this object, by any of its threads (on either
        backend): counted after the commit, so a reader that sees the count sees the write."""
        return self._own_writes

    @property
    def notified_writes(self) -> int:
        """PostgreSQL: transactions committed through this object that sent a notification
        (an IAM change): what the others learn through LISTEN, this process knows at once."""
        return self._notified_writes

    @contextmanager
    def statement(self) -> Iterator[Tx]:
        """For a single read statement, which is atomic by itself: no BEGIN/COMMIT round trips."""
        if self.dialect == "sqlite":
            yield _SqliteTx(self._sqlite_conn())
            return
        session = self._pg_session()
        try:
            yield _PostgresTx(self._pg_conn(session), self._statements)
        except (psycopg.OperationalError, psycopg.errors.ReadOnlySqlTransaction) as exc:
            session.discard()
            raise StoreUnavailable(_first_line(exc)) from exc

    def analyze(self) -> None:
        """Refresh PostgreSQL's planner statistics, after a bulk load (a restore, a benchmark's
        seeding). Until autovacuum gets to a table loaded in bulk (up to a minute or more), the
        planner has none, and it was measured to read a secret by name through the (account,
        region, last changed) index, filtering all 10,000 secrets of the account: 2 ms a read
        instead of 0.2. SQLite: nothing to do (without statistics its planner takes the unique
        name index)."""
        if self.dialect == "sqlite":
            return
        with self.statement() as tx:
            tx.execute("ANALYZE")

    def close(self) -> None:
        if self._group is not None:
            self._group.close()
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
            self._checkpoint_conn = None
        for fd in (self._lock_fd, self._checkpoint_lock):
            if fd is not None:
                os.close(fd)
        self._lock_fd = self._checkpoint_lock = None
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
        # Every thread's connection: a thread using this object again reconnects.
        with self._sessions_lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.discard()


def _set_wal_mode(path: str) -> None:
    """Put a SQLite file in WAL mode (it stays so), once, from the one migrating process.

    Left to the connections that open it afterwards, several at once (a server's workers, or
    racing threads) each asked for it while the file was still in rollback-journal mode. Each
    held a shared lock and wanted an exclusive one, and SQLite answered one of them "database
    is locked" at once, without waiting: a deadlock its busy timeout cannot wait out."""
    conn = sqlite3.connect(path, timeout=10.0)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def known_migrations() -> list[str]:
    """The ids of every migration this version of secretsd knows, in file order."""
    return [m.id for m in read_migrations(str(MIGRATIONS_DIR))]


@contextmanager
def _pg_errors(session: _PgSession) -> Iterator[None]:
    """PostgreSQL's errors in the store's terms. A lost connection, a server shutting down, or
    (after a failover) a primary turned standby: the session's connection is dropped, so the
    next transaction starts over on a fresh one to whichever host is primary now."""
    try:
        yield
    except psycopg.errors.IntegrityError as exc:
        raise StoreConflict(str(exc)) from exc
    except (psycopg.OperationalError, psycopg.errors.ReadOnlySqlTransaction) as exc:
        session.discard()
        raise StoreUnavailable(_first_line(exc)) from exc


def _dropped(conn: psycopg.Connection[Any]) -> bool:
    """Whether an idle connection has heard from its server since its last statement: this one
    never LISTENs, so that is its PostgreSQL going away (the backend's FATAL "terminating
    connection", as in a failover) or something as rare. Replaced now, before a transaction
    starts on it, the request goes to a fresh connection instead of failing on its first
    statement. It costs one poll of the socket."""
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        return False  # inside a transaction (a nested one is starting): never swap under it
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.OperationalError):
        return True
    return bool(readable)


def _first_line(exc: Exception) -> str:
    # libpq's messages run over several lines (one per host tried); the first says what failed.
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
