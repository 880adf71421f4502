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
        # The leases this process took, as it last took them (for `keep`).
        self._held: dict[str, Lease] = {}

    def acquire(self, name: str, ttl_seconds: float) -> Lease | None:
        """The lease (taken or renewed) until now + ttl, or None while another holds it."""
        with self._db.transaction(write=True, bookkeeping=True) as tx:
            return LeaseRepository(tx).acquire(
                name, self.holder, self._clock.now_ms(), int(ttl_seconds * 1000)
            )

    def keep(self, name: str, ttl_seconds: float) -> bool:
        """Whether this process holds `name` for at least another ttl/2, writing only when it
        must: a lease held with more than half its ttl left is not renewed, and a lease another
        holder keeps alive is only read. An idle loop that calls this every tick then costs one
        read per tick and a write per ttl/2, where `acquire` writes (and fsyncs) every tick."""
        now = self._clock.now_ms()
        ttl_ms = int(ttl_seconds * 1000)
        held = self._held.get(name)
        if held is not None and held.expires_ms - now > ttl_ms // 2:
            return True
        if held is None:
            with self._db.statement() as tx:
                current = LeaseRepository(tx).get(name)
            if current is not None and current.holder != self.holder and current.expires_ms > now:
                return False
        lease = self.acquire(name, ttl_seconds)
        if lease is None:
            self._held.pop(name, None)
            return False
        self._held[name] = lease
        return True

    def release(self, name: str) -> None:
        self._held.pop(name, None)
        with self._db.transaction(write=True, bookkeeping=True) as tx:
            LeaseRepository(tx).release(name, self.holder)
