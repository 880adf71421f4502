"""Leases in the database: one holder at a time for work that must not run twice.

Taking a lease is one statement (an upsert that only wins over an expired lease or one's own),
so it is atomic on SQLite and PostgreSQL alike, across workers and nodes. A holder that dies
simply stops renewing; once `expires_ms` passes, anyone may take over, and the lease's `fence`
grows so the late holder's stale work can be told apart.
"""

from __future__ import annotations

from typing import NamedTuple

from secretsd.store.database import Tx


class Lease(NamedTuple):
    name: str
    holder: str
    expires_ms: int
    fence: int


class LeaseRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def acquire(self, name: str, holder: str, now_ms: int, ttl_ms: int) -> Lease | None:
        """Take (or renew, when `holder` has it) the lease until now + ttl; None if another
        holder's lease is still live."""
        changed = self.tx.rowcount(
            "INSERT INTO leases (name, holder, expires_ms, fence) VALUES (?, ?, ?, 1)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
            " expires_ms = excluded.expires_ms,"
            " fence = CASE WHEN leases.holder = excluded.holder THEN leases.fence"
            " ELSE leases.fence + 1 END"
            " WHERE leases.expires_ms <= ? OR leases.holder = excluded.holder",
            (name, holder, now_ms + ttl_ms, now_ms),
        )
        if changed == 0:
            return None
        return self.get(name)

    def get(self, name: str) -> Lease | None:
        row = self.tx.one(
            "SELECT name, holder, expires_ms, fence FROM leases WHERE name = ?", (name,)
        )
        if row is None:
            return None
        return Lease(row["name"], row["holder"], row["expires_ms"], row["fence"])

    def holds(self, name: str, holder: str, fence: int, now_ms: int) -> bool:
        """Whether `holder` still has the lease it took with `fence` (checked inside the
        transaction that commits its work)."""
        lease = self.get(name)
        return (
            lease is not None
            and lease.holder == holder
            and lease.fence == fence
            and lease.expires_ms > now_ms
        )

    def release(self, name: str, holder: str) -> None:
        """Give the lease up early (it stays in the table, expired, keeping its fence)."""
        self.tx.execute(
            "UPDATE leases SET expires_ms = 0 WHERE name = ? AND holder = ?", (name, holder)
        )
