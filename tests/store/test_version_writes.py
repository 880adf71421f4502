"""How a new version is written, at the store level, on SQLite and PostgreSQL: retention's SQL
selects exactly what staging.versions_to_purge (AWS's rule in Python) would on any history;
labels are written as a diff; a batch and a pipelined transaction keep their order and fail as
a whole; PutSecretValue stays within its statements (SQLite) and round trips (PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretsd.clock import FixedClock
from secretsd.crypto import aead
from secretsd.crypto.rootkey import RootKeyring
from secretsd.kms.keyring import Keyring
from secretsd.service import staging
from secretsd.service.authorization import Authorizer, GenerationWatch
from secretsd.service.context import CallContext
from secretsd.service.pagination import TokenCodec
from secretsd.service.secrets import SecretsService
from secretsd.store.database import Database, StoreConflict, known_migrations
from secretsd.store.records import SecretRecord, VersionRecord
from secretsd.store.repository import Repository
from support.contexts import ROOT_CTX
from support.factories import new_database

NOW = 1_800_000_000_000
STAGES_WITHOUT_ROWID = "0015.sqlite-stages-without-rowid"
OLD_INDEX = "version_stages_by_version"
AGE = 86_400_000


@pytest.fixture
def database(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[Database]:
    url = new_database(request, backend, "versions") or f"sqlite:///{tmp_path / 'versions.db'}"
    db = Database(url)
    db.migrate()
    yield db
    db.close()


def _secret(arn: str, seq: int) -> SecretRecord:
    return SecretRecord(
        arn=arn,
        account_id="111122223333",
        region="us-east-1",
        name=arn.rsplit(":", 1)[1],
        description=None,
        kms_key_id=None,
        secret_type=None,
        created_ms=NOW - 10 * AGE,
        last_changed_ms=NOW - 10 * AGE,
        last_accessed_ms=None,
        deleted_ms=None,
        deletion_ms=None,
        tags=None,
        resource_policy=None,
        owning_service=None,
        primary_region=None,
        version_seq=seq,
    )


# A history: each version's seq gap after the previous one (seqs are unique and increasing, with
# holes where versions were deleted) and its age relative to the one-day line, which it straddles
# often (ages within a few ms of the line included); then labels on some of the versions.
HISTORIES = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=3),
        st.one_of(
            st.integers(min_value=-2, max_value=2),
            st.integers(min_value=-3 * AGE, max_value=3 * AGE),
        ),
    ),
    max_size=40,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    history=HISTORIES,
    keep_newest=st.integers(min_value=1, max_value=12),
    labelled=st.lists(st.integers(min_value=0, max_value=39), max_size=6),
)
def test_retention_sql_selects_what_versions_to_purge_does(
    database: Database, history: list[tuple[int, int]], keep_newest: int, labelled: list[int]
) -> None:
    arn = f"arn:aws:secretsmanager:us-east-1:111122223333:secret:h{uuid.uuid4().hex}-AbCdEf"
    versions: list[tuple[str, int, int]] = []  # (version id, seq, created_ms), oldest first
    seq = 0
    for gap, age in history:
        seq += gap
        versions.append((str(uuid.uuid4()), seq, NOW - AGE + age))
    # Labels, on the versions picked (several labels may share one); version ids differ from
    # the order of seq, so nothing can pass by sorting on ids.
    stages = {f"L{i}": versions[i][0] for i in labelled if i < len(versions)}
    with database.transaction(write=True) as tx:
        repo = Repository(tx)
        repo.insert_secret(_secret(arn, seq))
        for version_id, version_seq, created_ms in versions:
            repo.insert_version(
                VersionRecord(arn, version_id, version_seq, created_ms, None, "string", b"x", None)
            )
        repo.replace_stages(arn, {}, stages)
    expected = staging.versions_to_purge(
        [(v, created) for v, _, created in reversed(versions)],
        stages,
        NOW,
        keep_newest=keep_newest,
        keep_younger_than_ms=AGE,
    )
    with database.transaction() as tx:
        selected = Repository(tx).retention_candidates(arn, NOW - AGE, keep_newest)
    assert sorted(selected) == sorted(expected)
    with database.transaction(write=True) as tx:
        Repository(tx).purge_retired(arn, NOW - AGE, keep_newest)
    with database.transaction() as tx:
        left = {v.version_id for v in Repository(tx).versions(arn)}
    assert left == {v for v, _, _ in versions} - set(expected)


def test_replace_stages_writes_only_what_changed(database: Database) -> None:
    """A label that moves is updated in place, one that goes is deleted, a new one inserted,
    in one statement each; the result is exactly the new map."""
    arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:labels-AbCdEf"
    with database.transaction(write=True) as tx:
        repo = Repository(tx)
        repo.insert_secret(_secret(arn, 4))
        for i in range(1, 5):
            repo.insert_version(VersionRecord(arn, f"v{i}", i, NOW, None, "string", b"x", None))
        old = {"AWSCURRENT": "v3", "AWSPREVIOUS": "v2", "AWSPENDING": "v3", "X": "v1", "Y": "v1"}
        repo.replace_stages(arn, {}, old)
        new = {"AWSCURRENT": "v4", "AWSPREVIOUS": "v3", "X": "v1", "Y": "v4", "Z": "v2"}
        repo.replace_stages(arn, old, new)
        assert repo.stages(arn) == new
        repo.replace_stages(arn, new, {})
        assert repo.stages(arn) == {}


def test_sqlite_labels_move_to_a_without_rowid_table_and_keep_their_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'upgrade.db'}"
    db = Database(url)
    db.migrate(only=[m for m in known_migrations() if m != STAGES_WITHOUT_ROWID])
    arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:upgrade-AbCdEf"
    other = "arn:aws:secretsmanager:us-east-1:111122223333:secret:other-AbCdEf"
    stages = {"AWSCURRENT": "v3", "AWSPREVIOUS": "v2", "X": "v1"}
    with db.transaction(write=True) as tx:
        repo = Repository(tx)
        for secret in (arn, other):
            repo.insert_secret(_secret(secret, 3))
            for i in range(1, 4):
                repo.insert_version(
                    VersionRecord(secret, f"v{i}", i, NOW, None, "string", b"x", None)
                )
            repo.replace_stages(secret, {}, stages)
    db.close()
    db.migrate()
    with db.transaction() as tx:
        table = tx.one("SELECT sql FROM sqlite_master WHERE name = 'version_stages'")
        assert table is not None and table["sql"].rstrip().endswith("WITHOUT ROWID")
        assert tx.one("SELECT 1 AS one FROM sqlite_master WHERE name = ?", (OLD_INDEX,)) is None
        assert Repository(tx).stages(arn) == Repository(tx).stages(other) == stages
    # The foreign key still holds both ways: no label may name a missing version, and a
    # deleted secret takes its versions' labels with it.
    with pytest.raises(StoreConflict):
        with db.transaction(write=True) as tx:
            Repository(tx).replace_stages(arn, stages, {**stages, "Y": "v9"})
    with db.transaction(write=True) as tx:
        tx.execute("DELETE FROM secrets WHERE arn = ?", (arn,))
    with db.transaction() as tx:
        assert Repository(tx).stages(arn) == {}
        assert Repository(tx).stages(other) == stages
        assert tx.all("PRAGMA foreign_key_check") == []
    db.close()


def test_postgres_keeps_its_label_index(request: pytest.FixtureRequest) -> None:
    url = new_database(request, "postgres", "stages")
    assert url is not None
    db = Database(url)
    db.migrate()
    with db.transaction() as tx:
        index = tx.one("SELECT 1 AS one FROM pg_indexes WHERE indexname = ?", (OLD_INDEX,))
    db.close()
    assert index is not None


def _root_context() -> CallContext:
    return ROOT_CTX


def _service(db: Database, clock: FixedClock) -> SecretsService:
    root = RootKeyring({1: aead.new_key()}, 1)
    return SecretsService(
        db,
        Keyring(root, clock),
        clock,
        TokenCodec(root),
        Authorizer(db, clock, GenerationWatch(db)),
    )


def test_put_secret_value_statements(tmp_path: Path) -> None:
    """PutSecretValue on SQLite: one read (secret, labels, token, key, cross-account link), the
    version, the labels that move, the secret's counter, the outbox entry if it has replicas;
    nothing else inside the transaction (14 statements from BEGIN to COMMIT before, 7 now)."""
    db = Database(f"sqlite:///{tmp_path / 'put.db'}")
    db.migrate()
    clock = FixedClock(NOW)
    service = _service(db, clock)
    ctx = _root_context()

    def put(value: str) -> None:
        service.put_secret_value(
            ctx,
            secret_id="traced",
            token=str(uuid.uuid4()),
            secret_string=value,
            secret_binary=None,
            version_stages=None,
        )

    service.create_secret(
        ctx,
        name="traced",
        token=str(uuid.uuid4()),
        description=None,
        kms_key_id=None,
        secret_string="v0",
        secret_binary=None,
        tags=None,
    )
    put("v1")
    statements: list[str] = []
    conn = db._sqlite_conn()
    conn.set_trace_callback(statements.append)
    try:
        put("v2")
    finally:
        conn.set_trace_callback(None)
    db.close()
    begin = statements.index("BEGIN IMMEDIATE")
    assert [" ".join(s.split()[:3]) for s in statements[begin:]] == [
        "BEGIN IMMEDIATE",
        "SELECT s.arn, s.account_id,",
        "INSERT INTO secret_versions",
        "UPDATE version_stages SET",
        "UPDATE secrets SET",
        "INSERT INTO replication_outbox",
        "COMMIT",
    ]
    # Before the transaction: only what authorization reads (its caches' checks).
    assert len(statements) <= len(statements[begin:]) + 2


def test_a_batch_runs_in_order_and_fails_whole(database: Database) -> None:
    """Tx.batch (one pipeline on PostgreSQL): results in statement order, rows only for the
    statements that return some; a statement that fails fails the transaction, and nothing of
    the batch (nor of what ran before it in the transaction) is kept."""
    arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:batch-AbCdEf"
    with database.transaction(write=True) as tx:
        Repository(tx).insert_secret(_secret(arn, 0))
        results = tx.batch(
            [
                ("UPDATE secrets SET version_seq = ? WHERE arn = ?", (1, arn)),
                (
                    "UPDATE secrets SET version_seq = version_seq + 1 WHERE arn = ? RETURNING version_seq",
                    (arn,),
                ),
                ("SELECT name FROM secrets WHERE arn = ?", (arn,)),
            ]
        )
    assert [[tuple(dict(r).values()) for r in rows] for rows in results] == [
        [],
        [(2,)],
        [(arn.rsplit(":", 1)[1],)],
    ]
    with database.transaction() as tx:
        # One statement: the same shape, a list of results (the PostgreSQL shortcut once
        # returned the rows alone).
        alone = tx.batch([("SELECT version_seq FROM secrets WHERE arn = ?", (arn,))])
    assert [[tuple(dict(r).values()) for r in rows] for rows in alone] == [[(2,)]]
    with pytest.raises(StoreConflict):
        with database.transaction(write=True) as tx:
            tx.execute("UPDATE secrets SET version_seq = 10 WHERE arn = ?", (arn,))
            tx.batch(
                [
                    ("UPDATE secrets SET version_seq = 11 WHERE arn = ?", (arn,)),
                    # The same version twice: the primary key refuses the second.
                    _insert(arn, "twice"),
                    _insert(arn, "twice"),
                    ("UPDATE secrets SET version_seq = 12 WHERE arn = ?", (arn,)),
                ]
            )
    with database.transaction() as tx:
        repo = Repository(tx)
        assert repo.versions(arn) == []
        secret = repo.secret_by_arn(arn)
        assert secret is not None and secret.version_seq == 2


def _insert(arn: str, version_id: str) -> tuple[str, tuple[object, ...]]:
    return (
        "INSERT INTO secret_versions (secret_arn, version_id, seq, created_ms, value_kind)"
        " VALUES (?, ?, 1, 1, 'none')",
        (arn, version_id),
    )


def test_a_pipelined_transaction_commits_all_or_nothing(database: Database) -> None:
    """Database.transaction(pipelined=True): what was deferred is written at the COMMIT (and
    read back by later statements of the same transaction before that); a deferred statement
    that fails, or an error of the caller's, leaves nothing of the transaction behind, and the
    connection serves the next transaction."""
    arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:piped-AbCdEf"
    with database.transaction(write=True, pipelined=True) as tx:
        Repository(tx).insert_secret(_secret(arn, 0))
        tx.defer([("UPDATE secrets SET version_seq = 5 WHERE arn = ?", (arn,))])
        # A later statement goes out after what was deferred, so it sees it.
        row = tx.one("SELECT version_seq FROM secrets WHERE arn = ?", (arn,))
        assert row is not None and row["version_seq"] == 5
        tx.defer([_insert(arn, "kept")])
    with pytest.raises(StoreConflict):
        with database.transaction(write=True, pipelined=True) as tx:
            tx.execute("UPDATE secrets SET version_seq = 6 WHERE arn = ?", (arn,))
            tx.defer([_insert(arn, "new"), _insert(arn, "kept")])
    with pytest.raises(RuntimeError):
        with database.transaction(write=True, pipelined=True) as tx:
            tx.execute("UPDATE secrets SET version_seq = 7 WHERE arn = ?", (arn,))
            tx.defer([_insert(arn, "never")])
            raise RuntimeError("the caller's own error")
    with database.transaction() as tx:
        repo = Repository(tx)
        assert [v.version_id for v in repo.versions(arn)] == ["kept"]
        secret = repo.secret_by_arn(arn)
        assert secret is not None and secret.version_seq == 5


def test_put_secret_value_round_trips_on_postgres(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """PostgreSQL: BEGIN, the lock and the read in one round trip, the writes and the COMMIT
    in another (14 round trips before); the writes as one statement (psycopg costs tens of
    microseconds of CPU per statement, the writes were four)."""
    url = new_database(request, "postgres", "trips")
    assert url is not None
    db = Database(url)
    db.migrate()
    clock = FixedClock(NOW)
    service = _service(db, clock)
    ctx = _root_context()
    service.create_secret(
        ctx,
        name="trips",
        token=str(uuid.uuid4()),
        description=None,
        kms_key_id=None,
        secret_string="v0",
        secret_binary=None,
        tags=None,
    )

    def put() -> None:
        service.put_secret_value(
            ctx,
            secret_id="trips",
            token=str(uuid.uuid4()),
            secret_string="v",
            secret_binary=None,
            version_stages=None,
        )

    put()
    session = db._pg_session()
    assert session.conn is not None
    trace = tmp_path / "trace"
    with trace.open("w") as out:
        session.conn.pgconn.trace(out.fileno())
        try:
            put()
        finally:
            session.conn.pgconn.untrace()
    db.close()
    sent = [line.split("\t")[3].split()[0] for line in trace.read_text().splitlines()]
    # Every round trip ends with a Sync (extended protocol) or is a simple Query.
    assert sent.count("Sync") == 2
    assert "Query" not in sent
    # BEGIN, the lock, the read, the writes, COMMIT.
    assert sent.count("Execute") == 5
