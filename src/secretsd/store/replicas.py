"""Replicas of primary secrets and the replication outbox (migration 0009)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from secretsd.store.database import Row, Tx
from secretsd.store.events import new_event_id

IN_PROGRESS = "InProgress"
IN_SYNC = "InSync"
FAILED = "Failed"


class ReplicaRecord(NamedTuple):
    primary_arn: str
    region: str
    kms_key_id: str | None
    force_overwrite: bool
    status: str
    status_message: str | None
    created_ms: int
    synced_ms: int | None


_COLUMNS = (
    "primary_arn, region, kms_key_id, force_overwrite, status, status_message, created_ms,"
    " synced_ms"
)


def _replica(r: Row) -> ReplicaRecord:
    return ReplicaRecord(
        r["primary_arn"],
        r["region"],
        r["kms_key_id"],
        bool(r["force_overwrite"]),
        r["status"],
        r["status_message"],
        r["created_ms"],
        r["synced_ms"],
    )


class ReplicaRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def for_primary(self, primary_arn: str) -> list[ReplicaRecord]:
        rows = self.tx.all(
            f"SELECT {_COLUMNS} FROM replicas WHERE primary_arn = ? ORDER BY region",
            (primary_arn,),
        )
        return [_replica(r) for r in rows]

    def for_primaries(self, primary_arns: Sequence[str]) -> dict[str, list[ReplicaRecord]]:
        out: dict[str, list[ReplicaRecord]] = {arn: [] for arn in primary_arns}
        if not primary_arns:
            return out
        marks = ", ".join("?" for _ in primary_arns)
        rows = self.tx.all(
            f"SELECT {_COLUMNS} FROM replicas WHERE primary_arn IN ({marks}) ORDER BY region",
            tuple(primary_arns),
        )
        for r in rows:
            replica = _replica(r)
            out[replica.primary_arn].append(replica)
        return out

    def add(
        self,
        primary_arn: str,
        region: str,
        kms_key_id: str | None,
        force_overwrite: bool,
        now_ms: int,
    ) -> None:
        self.tx.execute(
            f"INSERT INTO replicas ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL, ?, NULL)",
            (primary_arn, region, kms_key_id, int(force_overwrite), IN_PROGRESS, now_ms),
        )

    def set_status(
        self, primary_arn: str, region: str, status: str, message: str | None, now_ms: int
    ) -> None:
        self.tx.execute(
            "UPDATE replicas SET status = ?, status_message = ?,"
            " synced_ms = CASE WHEN ? = 'InSync' THEN ? ELSE synced_ms END"
            " WHERE primary_arn = ? AND region = ?",
            (status, message, status, now_ms, primary_arn, region),
        )

    def remove(self, primary_arn: str, region: str) -> None:
        self.tx.execute(
            "DELETE FROM replicas WHERE primary_arn = ? AND region = ?", (primary_arn, region)
        )

    def remove_all(self, primary_arn: str) -> None:
        self.tx.execute("DELETE FROM replicas WHERE primary_arn = ?", (primary_arn,))

    def failed_primaries(self, limit: int) -> list[str]:
        rows = self.tx.all(
            "SELECT DISTINCT primary_arn FROM replicas WHERE status = ? ORDER BY primary_arn"
            " LIMIT ?",
            (FAILED, limit),
        )
        return [r["primary_arn"] for r in rows]

    # -- the outbox -------------------------------------------------------------------------
    def enqueue(self, primary_arn: str, now_ms: int) -> None:
        self.tx.execute(
            "INSERT INTO replication_outbox (entry_id, primary_arn, created_ms) VALUES (?, ?, ?)",
            (new_event_id(now_ms), primary_arn, now_ms),
        )

    def enqueue_if_replicated(self, primary_arn: str, now_ms: int) -> None:
        """One statement on every write of a secret: an outbox entry only when it has replicas."""
        self.tx.execute(
            "INSERT INTO replication_outbox (entry_id, primary_arn, created_ms)"
            " SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM replicas WHERE primary_arn = ?)",
            (new_event_id(now_ms), primary_arn, now_ms, primary_arn),
        )

    def pending(self, limit: int) -> list[tuple[str, str, int]]:
        """(entry id, primary ARN, created ms), oldest first."""
        rows = self.tx.all(
            "SELECT entry_id, primary_arn, created_ms FROM replication_outbox"
            " ORDER BY entry_id LIMIT ?",
            (limit,),
        )
        return [(r["entry_id"], r["primary_arn"], r["created_ms"]) for r in rows]

    def done(self, entry_ids: Sequence[str]) -> None:
        for entry_id in entry_ids:
            self.tx.execute("DELETE FROM replication_outbox WHERE entry_id = ?", (entry_id,))
