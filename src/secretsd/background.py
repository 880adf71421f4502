"""What every background loop (purges, replication, rotation schedules) does when a pass fails."""

from __future__ import annotations

import logging

from secretsd.store.database import StoreUnavailable


def log_failed_pass(log: logging.Logger, what: str, exc: BaseException) -> None:
    """A failed pass is retried on the next tick. An unreachable or read-only database (a
    failover, a restart) is expected in a cluster: one warning line, as requests log it. Anything
    else is a bug and keeps its traceback."""
    if isinstance(exc, StoreUnavailable):
        log.warning("%s failed, database unavailable: %s; will retry", what, exc)
    else:
        log.error("%s failed; will retry", what, exc_info=exc)
