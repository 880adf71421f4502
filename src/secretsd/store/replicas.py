"""Replicas of primary secrets and the replication outbox (migration 0009), and the outbox
of regions other deployments serve (migration 0011)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from secretsd.store.database import Row, Statement, Tx
from secretsd.store.events import new_event_id

IN_PROGRESS = "InProgress"
IN_SYNC = "InSync"
FAILED = "Failed"


# Whether the secret (both `?`: its ARN) has replicas its writes must reach: Region replicas, or
# cross-account ones still linked to it.
_REPLICATED = (
    "(EXISTS (SELECT 1 FROM replicas WHERE primary_arn = ?)"
    " OR EXISTS (SELECT 1 FROM cross_account_replicas WHERE primary_arn = ?"
    " AND linked = 1 AND promoted = 0))"
)


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
            "SELECT primary_arn FROM replicas WHERE status = ?"
            " UNION SELECT primary_arn FROM cross_account_replicas WHERE status = ?"
            " AND linked = 1 AND promoted = 0"
            " ORDER BY primary_arn LIMIT ?",
            (FAILED, FAILED, limit),
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
        self.tx.execute(*self.enqueue_if_replicated_statement(primary_arn, now_ms))

    @staticmethod
    def enqueue_if_replicated_statement(primary_arn: str, now_ms: int) -> Statement:
        return (
            "INSERT INTO replication_outbox (entry_id, primary_arn, created_ms)"
            f" SELECT ?, ?, ? WHERE {_REPLICATED}",
            (new_event_id(now_ms), primary_arn, now_ms, primary_arn, primary_arn),
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

    # -- regions other deployments serve ------------------------------------------------------
    def mark_for_peer(self, primary_arn: str, region: str, now_ms: int) -> None:
        """The primary changed: its state is owed to the deployment serving `region` (again)."""
        row = self.tx.one(
            "SELECT generation FROM peer_outbox WHERE primary_arn = ? AND region = ?",
            (primary_arn, region),
        )
        if row is None:
            self.tx.execute(
                "INSERT INTO peer_outbox (primary_arn, region, generation, attempts,"
                " next_attempt_ms) VALUES (?, ?, 1, 0, ?)",
                (primary_arn, region, now_ms),
            )
        else:
            self.tx.execute(
                "UPDATE peer_outbox SET generation = generation + 1, attempts = 0,"
                " next_attempt_ms = ? WHERE primary_arn = ? AND region = ?",
                (now_ms, primary_arn, region),
            )

    def peer_due(self, now_ms: int, limit: int) -> list[tuple[str, str, int, int]]:
        """(primary ARN, region, generation, attempts) whose next attempt is due."""
        rows = self.tx.all(
            "SELECT primary_arn, region, generation, attempts FROM peer_outbox"
            " WHERE next_attempt_ms <= ? ORDER BY next_attempt_ms LIMIT ?",
            (now_ms, limit),
        )
        return [(r["primary_arn"], r["region"], r["generation"], r["attempts"]) for r in rows]

    def peer_delivered(self, primary_arn: str, region: str, generation: int) -> bool:
        """Acknowledged by the peer: done (True), unless the primary changed again meanwhile."""
        return (
            self.tx.rowcount(
                "DELETE FROM peer_outbox WHERE primary_arn = ? AND region = ? AND generation = ?",
                (primary_arn, region, generation),
            )
            > 0
        )

    def peer_back(self, region: str, now_ms: int) -> None:
        """The peer answered again: whatever waits for it is due now, not at its backoff."""
        self.tx.execute(
            "UPDATE peer_outbox SET attempts = 0, next_attempt_ms = ?"
            " WHERE region = ? AND next_attempt_ms > ?",
            (now_ms, region, now_ms),
        )

    def peer_retry(self, primary_arn: str, region: str, attempts: int, next_ms: int) -> None:
        self.tx.execute(
            "UPDATE peer_outbox SET attempts = ?, next_attempt_ms = ?"
            " WHERE primary_arn = ? AND region = ?",
            (attempts, next_ms, primary_arn, region),
        )

    def peer_forget(self, primary_arn: str, region: str) -> None:
        self.tx.execute(
            "DELETE FROM peer_outbox WHERE primary_arn = ? AND region = ?", (primary_arn, region)
        )

    # -- notices to the deployment serving a primary -----------------------------------------
    def add_notice(self, replica_arn: str, primary_region: str, now_ms: int) -> None:
        self.tx.execute("DELETE FROM peer_notices WHERE replica_arn = ?", (replica_arn,))
        self.tx.execute(
            "INSERT INTO peer_notices (replica_arn, primary_region, attempts, next_attempt_ms)"
            " VALUES (?, ?, 0, ?)",
            (replica_arn, primary_region, now_ms),
        )

    def notices_due(self, now_ms: int, limit: int) -> list[tuple[str, str, int]]:
        rows = self.tx.all(
            "SELECT replica_arn, primary_region, attempts FROM peer_notices"
            " WHERE next_attempt_ms <= ? ORDER BY next_attempt_ms LIMIT ?",
            (now_ms, limit),
        )
        return [(r["replica_arn"], r["primary_region"], r["attempts"]) for r in rows]

    def notice_done(self, replica_arn: str) -> None:
        self.tx.execute("DELETE FROM peer_notices WHERE replica_arn = ?", (replica_arn,))

    def notice_retry(self, replica_arn: str, attempts: int, next_ms: int) -> None:
        self.tx.execute(
            "UPDATE peer_notices SET attempts = ?, next_attempt_ms = ? WHERE replica_arn = ?",
            (attempts, next_ms, replica_arn),
        )
