"""Deletes secrets whose recovery window has ended, rotates KMS keys that are due and forgets
long-expired STS sessions, on the server's real clock.

Every worker (and node) runs this loop; the purge is an idempotent DELETE of expired rows, so
running it in several places at once only costs a little duplicate work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from secretsd.background import log_failed_pass
from secretsd.kms.service import KmsService
from secretsd.offload import Offloader, off_loop
from secretsd.service.secrets import SecretsService
from secretsd.service.sts import StsService

log = logging.getLogger("secretsd.purge")


def purge_loop(
    service: SecretsService,
    interval_seconds: float,
    kms: KmsService | None = None,
    sts: StsService | None = None,
    offload: Offloader | None = None,
) -> Callable[[], Coroutine[Any, Any, None]]:
    def purge() -> None:
        purged = service.purge_expired()
        if purged:
            log.info("purged %d secret(s) whose recovery window ended", purged)
        if kms is not None and (keys := kms.purge_expired()):
            log.info("deleted %d KMS key(s) whose waiting period ended", keys)
        if kms is not None and (rotated := kms.rotate_due()):
            log.info("rotated %d KMS key(s) whose rotation date came", rotated)
        if sts is not None and (sessions := sts.purge_expired()):
            log.info("forgot %d STS session(s) expired over a day ago", sessions)

    async def run() -> None:
        while True:
            try:
                # In the handler threads on PostgreSQL, off the loop (ADR 0007).
                await off_loop(offload, purge)
            except Exception as exc:
                log_failed_pass(log, "purge", exc)
            await asyncio.sleep(interval_seconds)

    return run
