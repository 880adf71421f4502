"""Cross-account replicas (migration 0011): the link between a replica secret and the primary
secret of another account it replicates from."""

from __future__ import annotations

from typing import NamedTuple

from secretsd.store.database import Row, Tx

PENDING = "Pending"
DETACHED = "Detached"


class CrossAccountLink(NamedTuple):
    replica_arn: str
    primary_arn: str
    linked: bool
    promoted: bool
    status: str
    status_message: str | None
    replication_role_arn: str | None
    replica_restriction: str | None
    created_ms: int
    synced_ms: int | None


_COLUMNS = (
    "replica_arn, primary_arn, linked, promoted, status, status_message, replication_role_arn,"
    " replica_restriction, created_ms, synced_ms"
)


def _link(r: Row) -> CrossAccountLink:
    return CrossAccountLink(
        r["replica_arn"],
        r["primary_arn"],
        bool(r["linked"]),
        bool(r["promoted"]),
        r["status"],
        r["status_message"],
        r["replication_role_arn"],
        r["replica_restriction"],
        r["created_ms"],
        r["synced_ms"],
    )


class CrossAccountRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def of_replica(self, replica_arn: str) -> CrossAccountLink | None:
        row = self.tx.one(
            f"SELECT {_COLUMNS} FROM cross_account_replicas WHERE replica_arn = ?", (replica_arn,)
        )
        return None if row is None else _link(row)

    def linked_to(self, primary_arn: str) -> list[CrossAccountLink]:
        """The replicas the primary lists (CrossAccountReplicas), promoted ones included."""
        rows = self.tx.all(
            f"SELECT {_COLUMNS} FROM cross_account_replicas WHERE primary_arn = ? AND linked = 1"
            " ORDER BY replica_arn",
            (primary_arn,),
        )
        return [_link(r) for r in rows]

    def add(self, replica_arn: str, primary_arn: str, now_ms: int) -> None:
        self.tx.execute(
            f"INSERT INTO cross_account_replicas ({_COLUMNS})"
            " VALUES (?, ?, 0, 0, ?, NULL, NULL, NULL, ?, NULL)",
            (replica_arn, primary_arn, PENDING, now_ms),
        )

    def update(self, replica_arn: str, **columns: object) -> None:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        self.tx.execute(
            f"UPDATE cross_account_replicas SET {assignments} WHERE replica_arn = ?",
            (*columns.values(), replica_arn),
        )

    def remove(self, replica_arn: str) -> None:
        self.tx.execute("DELETE FROM cross_account_replicas WHERE replica_arn = ?", (replica_arn,))

    def remove_for_primary(self, primary_arn: str) -> None:
        self.tx.execute(
            "UPDATE cross_account_replicas SET linked = 0, status = ? WHERE primary_arn = ?",
            (DETACHED, primary_arn),
        )
        self.tx.execute(
            "DELETE FROM cross_account_replicas WHERE primary_arn = ? AND promoted = 1",
            (primary_arn,),
        )
