"""The audit trail's tables: chain heads, records, signed digests, the service-event cursor."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from secretsd.store.database import MIGRATIONS_DIR, Database, Row, Tx
from secretsd.store.events import ServiceEvent

AUDIT_MIGRATION = MIGRATIONS_DIR / "0013.audit.sql"
AUDIT_PAGE_SIZE = 65536


def open_audit_database(
    url: str, main_url: str, *, sync_every_commit: bool = True, group_commit: bool = False
) -> Database:
    """The audit trail's database. The main database's migrations create its tables; a separate
    SQLite file (see Settings.audit_database_url) gets them here, from the same migration.

    A new SQLite file gets 64 KiB pages: a batch of records is one row of a few hundred
    kilobytes, which then takes a few pages instead of a chain of a hundred overflow pages
    (measured: half the CPU time per record appended). `group_commit`: see Database."""
    db = Database(
        url,
        sync_every_commit=sync_every_commit,
        sqlite_page_size=AUDIT_PAGE_SIZE,
        group_commit=group_commit,
    )
    if url != main_url and db.dialect == "sqlite":
        db.executescript(AUDIT_MIGRATION.read_text())
    return db


def open_trail_database(
    url: str, main_url: str, main_db: Database, *, fail_closed: bool
) -> Database:
    """The connection an audit writer commits through: the main database's where the trail
    lives in it (PostgreSQL), else one to the trail's own SQLite file. Fail-open, that file's
    commits return at once and a thread of its own fsyncs them (within 50 ms) and runs its
    checkpoints, which had stalled the loop (a lone client's p99 reached seconds on a slow
    disk): a crash may lose the last flush interval's records anyway. Fail-closed keeps an
    fsync per batch, which its callers wait for."""
    if url == main_url:
        return main_db
    return open_audit_database(
        url, main_url, sync_every_commit=fail_closed, group_commit=not fail_closed
    )


class ChainHead(NamedTuple):
    seq: int
    head_hash: str
    digest_seq: int
    digest_ms: int
    digest_signature: str


@dataclass(frozen=True, slots=True)
class StoredBlock:
    """One writer batch of one chain: records first_seq..last_seq, one per line."""

    account_id: str
    region: str
    first_seq: int
    last_seq: int
    first_ms: int
    last_ms: int
    records: str
    hashes: str
    prev_hash: str

    def lines(self) -> list[str]:
        return self.records.split("\n")

    def hash_list(self) -> list[str]:
        return self.hashes.split(" ")


class StoredDigest(NamedTuple):
    account_id: str
    region: str
    seq: int
    head_hash: str
    created_ms: int
    previous_signature: str
    key_version: int
    public_key: str
    signature: str


_BLOCK_COLUMNS = (
    "account_id, region, first_seq, last_seq, first_ms, last_ms, records, hashes, prev_hash"
)


class AuditRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    # -- appending -------------------------------------------------------------------------------
    def lock_head(self, account_id: str, region: str, genesis: str) -> ChainHead:
        """The chain's head, locked until the transaction ends (created when new)."""
        self.tx.execute(
            "INSERT INTO audit_chains (account_id, region, seq, head_hash, digest_seq,"
            " digest_ms, digest_signature) VALUES (?, ?, 0, ?, 0, 0, '')"
            " ON CONFLICT (account_id, region) DO NOTHING",
            (account_id, region, genesis),
        )
        lock = " FOR UPDATE" if self.tx.dialect == "postgres" else ""
        row = self.tx.one(
            "SELECT seq, head_hash, digest_seq, digest_ms, digest_signature FROM audit_chains"
            " WHERE account_id = ? AND region = ?" + lock,
            (account_id, region),
        )
        assert row is not None
        return ChainHead(
            int(row["seq"]),
            row["head_hash"],
            int(row["digest_seq"]),
            int(row["digest_ms"]),
            row["digest_signature"],
        )

    def insert_block(self, block: StoredBlock) -> None:
        self.tx.execute(
            f"INSERT INTO audit_blocks ({_BLOCK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                block.account_id,
                block.region,
                block.first_seq,
                block.last_seq,
                block.first_ms,
                block.last_ms,
                block.records,
                block.hashes,
                block.prev_hash,
            ),
        )

    def set_head(self, account_id: str, region: str, seq: int, head_hash: str) -> None:
        self.tx.execute(
            "UPDATE audit_chains SET seq = ?, head_hash = ? WHERE account_id = ? AND region = ?",
            (seq, head_hash, account_id, region),
        )

    def insert_digest(self, digest: StoredDigest) -> None:
        self.tx.execute(
            "INSERT INTO audit_digests (account_id, region, seq, head_hash, created_ms,"
            " previous_signature, key_version, public_key, signature)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            digest,
        )
        self.tx.execute(
            "UPDATE audit_chains SET digest_seq = ?, digest_ms = ?, digest_signature = ?"
            " WHERE account_id = ? AND region = ?",
            (digest.seq, digest.created_ms, digest.signature, digest.account_id, digest.region),
        )

    # -- service events --------------------------------------------------------------------------
    def lock_service_event_cursor(self) -> int:
        """The publishers' low-water mark, locked (publishers take turns)."""
        self.tx.execute(
            "UPDATE audit_cursor SET position_ms = position_ms WHERE name = 'service_events'"
        )
        row = self.tx.one("SELECT position_ms FROM audit_cursor WHERE name = 'service_events'")
        return int(row["position_ms"]) if row is not None else 0

    def service_event_cursor(self) -> int:
        row = self.tx.one("SELECT position_ms FROM audit_cursor WHERE name = 'service_events'")
        return int(row["position_ms"]) if row is not None else 0

    def set_service_event_cursor(self, position_ms: int) -> None:
        self.tx.execute(
            "UPDATE audit_cursor SET position_ms = ? WHERE name = 'service_events'",
            (position_ms,),
        )

    def unpublished_service_events(self, since_ms: int, limit: int) -> list[ServiceEvent]:
        rows = self.tx.all(
            "SELECT event_id, time_ms, account_id, region, event_source, event_name,"
            " resource_arn, details_json FROM service_events WHERE time_ms >= ?"
            " ORDER BY time_ms, event_id LIMIT ?",
            (since_ms, limit),
        )
        return [
            ServiceEvent(
                r["event_id"],
                int(r["time_ms"]),
                r["account_id"],
                r["region"],
                r["event_source"],
                r["event_name"],
                r["resource_arn"],
                json.loads(r["details_json"]),
            )
            for r in rows
        ]

    def event_ids_present(self, event_ids: Sequence[str]) -> set[str]:
        if not event_ids:
            return set()
        marks = ", ".join("?" for _ in event_ids)
        rows = self.tx.all(
            f"SELECT event_id FROM audit_published WHERE event_id IN ({marks})", tuple(event_ids)
        )
        return {r["event_id"] for r in rows}

    def mark_published(self, event_ids: Sequence[str]) -> None:
        for event_id in event_ids:
            self.tx.execute("INSERT INTO audit_published (event_id) VALUES (?)", (event_id,))

    # -- reading ---------------------------------------------------------------------------------
    def blocks_newest_first(
        self,
        account_id: str,
        region: str,
        *,
        start_ms: int,
        end_ms: int,
        at_or_before_seq: int | None,
        limit: int,
    ) -> list[StoredBlock]:
        """Blocks that may hold events between start_ms and end_ms, newest first."""
        sql = (
            f"SELECT {_BLOCK_COLUMNS} FROM audit_blocks WHERE account_id = ? AND region = ?"
            " AND last_ms >= ? AND first_ms <= ?"
        )
        params: list[Any] = [account_id, region, start_ms, end_ms]
        if at_or_before_seq is not None:
            sql += " AND first_seq <= ?"
            params.append(at_or_before_seq)
        sql += " ORDER BY first_seq DESC LIMIT ?"
        params.append(limit)
        return [_block(r) for r in self.tx.all(sql, params)]

    def chains(self) -> list[tuple[str, str]]:
        rows = self.tx.all(
            "SELECT account_id, region FROM audit_chains ORDER BY account_id, region"
        )
        return [(r["account_id"], r["region"]) for r in rows]

    def head(self, account_id: str, region: str) -> ChainHead | None:
        row = self.tx.one(
            "SELECT seq, head_hash, digest_seq, digest_ms, digest_signature FROM audit_chains"
            " WHERE account_id = ? AND region = ?",
            (account_id, region),
        )
        if row is None:
            return None
        return ChainHead(
            int(row["seq"]),
            row["head_hash"],
            int(row["digest_seq"]),
            int(row["digest_ms"]),
            row["digest_signature"],
        )

    def blocks_page(
        self, account_id: str, region: str, after_first_seq: int, limit: int
    ) -> list[StoredBlock]:
        rows = self.tx.all(
            f"SELECT {_BLOCK_COLUMNS} FROM audit_blocks WHERE account_id = ? AND region = ?"
            " AND first_seq > ? ORDER BY first_seq LIMIT ?",
            (account_id, region, after_first_seq, limit),
        )
        return [_block(r) for r in rows]

    def digests(self, account_id: str, region: str) -> list[StoredDigest]:
        rows = self.tx.all(
            "SELECT account_id, region, seq, head_hash, created_ms, previous_signature,"
            " key_version, public_key, signature FROM audit_digests"
            " WHERE account_id = ? AND region = ? ORDER BY seq",
            (account_id, region),
        )
        return [
            StoredDigest(
                r["account_id"],
                r["region"],
                int(r["seq"]),
                r["head_hash"],
                int(r["created_ms"]),
                r["previous_signature"],
                int(r["key_version"]),
                r["public_key"],
                r["signature"],
            )
            for r in rows
        ]


def _block(r: Row) -> StoredBlock:
    return StoredBlock(
        account_id=r["account_id"],
        region=r["region"],
        first_seq=int(r["first_seq"]),
        last_seq=int(r["last_seq"]),
        first_ms=int(r["first_ms"]),
        last_ms=int(r["last_ms"]),
        records=r["records"],
        hashes=r["hashes"],
        prev_hash=r["prev_hash"],
    )
