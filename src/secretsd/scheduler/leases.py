"""A worker's own name as a lease holder, and the calls it makes on leases."""

from __future__ import annotations

import os
import secrets
import socket

from secretsd.clock import Clock
from secretsd.store.database import Database
from secretsd.store.leases import Lease, LeaseRepository


def holder_name() -> str:
    """Unique per process start: host and pid say where it runs (for operators), the random
    part keeps a restarted process with a reused pid from inheriting its predecessor's leases."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class LeaseKeeper:
    """Leases taken by this process. Each call is its own short transaction."""

    def __init__(self, db: Database, clock: Clock, holder: str | None = None) -> None:
        self._db = db
        self._clock = clock
        self.holder = holder or holder_name()

    def acquire(self, name: str, ttl_seconds: float) -> Lease | None:
        """The lease (taken or renewed) until now + ttl, or None while another holds it."""
        with self._db.transaction(write=True) as tx:
            return LeaseRepository(tx).acquire(
                name, self.holder, self._clock.now_ms(), int(ttl_seconds * 1000)
            )

    def release(self, name: str) -> None:
        with self._db.transaction(write=True) as tx:
            LeaseRepository(tx).release(name, self.holder)
