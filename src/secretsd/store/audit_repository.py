"""The audit trail's tables: chain heads, records, signed digests, the service-event cursor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from secretsd.store.database import MIGRATIONS_DIR, Database, Row, Tx
from secretsd.store.events import ServiceEvent, _event

AUDIT_MIGRATION = MIGRATIONS_DIR / "0013.audit.sql"


def open_audit_database(url: str, main_url: str, *, sync_every_commit: bool = True) -> Database:
    """The audit trail's database. The main database's migrations create its tables; a separate
    SQLite file (see Settings.audit_database_url) gets them here, from the same migration."""
    db = Database(url, sync_every_commit=sync_every_commit)
    if url != main_url and db.dialect == "sqlite":
        db.executescript(AUDIT_MIGRATION.read_text())
    return db


class ChainHead(NamedTuple):
    seq: int
    head_hash: str
    digest_seq: int
    digest_ms: int
    digest_signature: str


@dataclass(frozen=True, slots=True)
class StoredEvent:
    account_id: str
    region: str
    seq: int
    event_id: str
    time_ms: int
    event_name: str
    event_source: str
    read_only: bool
    username: str | None
    access_key_id: str | None
    resource_type: str | None
    resource_name: str | None
    record: str
    prev_hash: str
    hash: str


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


_EVENT_COLUMNS = (
    "account_id, region, seq, event_id, event_time_ms, event_name, event_source, read_only,"
    " username, access_key_id, resource_type, resource_name, record, prev_hash, hash"
)
# LookupEvents attribute -> column.
LOOKUP_COLUMNS = {
    "EventId": "event_id",
    "EventName": "event_name",
    "ReadOnly": "read_only",
    "Username": "username",
    "ResourceType": "resource_type",
    "ResourceName": "resource_name",
    "EventSource": "event_source",
    "AccessKeyId": "access_key_id",
}


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

    def insert_events(self, events: Sequence[StoredEvent]) -> None:
        self.tx.executemany(
            f"INSERT INTO audit_events ({_EVENT_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    e.account_id,
                    e.region,
                    e.seq,
                    e.event_id,
                    e.time_ms,
                    e.event_name,
                    e.event_source,
                    1 if e.read_only else 0,
                    e.username,
                    e.access_key_id,
                    e.resource_type,
                    e.resource_name,
                    e.record,
                    e.prev_hash,
                    e.hash,
                )
                for e in events
            ],
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
        return [_event(r) for r in rows]

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
    def lookup(
        self,
        account_id: str,
        region: str,
        *,
        start_ms: int,
        end_ms: int,
        attribute: tuple[str, str] | None,
        before: tuple[int, int] | None,
        limit: int,
    ) -> list[StoredEvent]:
        """Newest first: (time, seq) strictly before `before` when paginating."""
        sql = (
            f"SELECT {_EVENT_COLUMNS} FROM audit_events WHERE account_id = ? AND region = ?"
            " AND event_time_ms >= ? AND event_time_ms <= ?"
        )
        params: list[Any] = [account_id, region, start_ms, end_ms]
        if attribute is not None:
            column = LOOKUP_COLUMNS[attribute[0]]
            sql += f" AND {column} = ?"
            if column == "read_only":
                params.append(1 if attribute[1] == "true" else 0)
            else:
                params.append(attribute[1])
        if before is not None:
            sql += " AND (event_time_ms < ? OR (event_time_ms = ? AND seq < ?))"
            params += [before[0], before[0], before[1]]
        sql += " ORDER BY event_time_ms DESC, seq DESC LIMIT ?"
        params.append(limit)
        return [_stored(r) for r in self.tx.all(sql, params)]

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

    def events_page(
        self, account_id: str, region: str, after_seq: int, limit: int
    ) -> list[StoredEvent]:
        rows = self.tx.all(
            f"SELECT {_EVENT_COLUMNS} FROM audit_events WHERE account_id = ? AND region = ?"
            " AND seq > ? ORDER BY seq LIMIT ?",
            (account_id, region, after_seq, limit),
        )
        return [_stored(r) for r in rows]

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


def _stored(r: Row) -> StoredEvent:
    return StoredEvent(
        account_id=r["account_id"],
        region=r["region"],
        seq=int(r["seq"]),
        event_id=r["event_id"],
        time_ms=int(r["event_time_ms"]),
        event_name=r["event_name"],
        event_source=r["event_source"],
        read_only=bool(r["read_only"]),
        username=r["username"],
        access_key_id=r["access_key_id"],
        resource_type=r["resource_type"],
        resource_name=r["resource_name"],
        record=r["record"],
        prev_hash=r["prev_hash"],
        hash=r["hash"],
    )
