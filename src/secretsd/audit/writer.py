"""The audit sink every route hands its calls to, and the worker's writer behind it.

Records are appended to their chain in batches: every request task of the worker puts its call's
facts in the buffer, and the writer task builds and commits whatever has gathered in one
transaction (one lock of each chain head touched). With `fail_closed`, a request waits for the commit of its
batch and is refused if it fails, so every acknowledged call has a durable record; otherwise it
answers at once and the record follows within `flush_seconds` (a crash can lose that much).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Protocol

from secretsd.audit.chain import GENESIS, DigestHead, DigestSigner, record_hash
from secretsd.audit.exporters import Exporter
from secretsd.audit.record import (
    AuditRecord,
    CallFacts,
    RecordCache,
    api_call_record,
    full_line,
    service_event_id,
    service_event_record,
    strip_result,
)
from secretsd.audit.redact import Redactor
from secretsd.clock import Clock
from secretsd.offload import Offloader, off_loop
from secretsd.store.audit_repository import AuditRepository, StoredBlock, StoredDigest
from secretsd.store.database import Database, StoreUnavailable, Tx

log = logging.getLogger("secretsd.audit")

# A service event's transaction may commit this long after the event's time and still be
# published (the publisher re-reads this window, skipping what it already published).
SERVICE_EVENT_LAG_MS = 60_000
_SERVICE_EVENT_BATCH = 1000
# Records kept for retry while the database refuses them (fail-open mode); beyond this the
# oldest are dropped, loudly.
MAX_PENDING = 100_000

_Pending = tuple[CallFacts | AuditRecord, "asyncio.Future[bool] | None"]


async def woken_or_due(wake: asyncio.Event, seconds: float) -> None:
    """Returns once `wake` is set (clearing it) or `seconds` have passed. asyncio.timeout, not
    wait_for: Python 3.11's wait_for loses a cancellation that arrives as the wait ends (with a
    wake set at every batch, often), and a writer would then never stop (seen in
    bench/profile_get.py)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()
    wake.clear()


class AuditSink(Protocol):
    """What a route calls once per call, after it has its answer and before it sends it.
    False: the record could not be made durable and the call must be refused (fail-closed)."""

    async def record(self, facts: CallFacts) -> bool: ...

    def accepting(self) -> bool:
        """False while calls must be refused before they run (fail-closed, and the store failed
        its last write): a call is then never carried out without its record."""
        ...


@dataclass(frozen=True, slots=True)
class AuditOptions:
    fail_closed: bool = False
    flush_seconds: float = 0.05
    digest_seconds: float = 60.0
    service_event_seconds: float = 1.0
    batch_max: int = 500


class AuditWriter:
    """The worker's audit sink. A call hands over its facts (`record`); the writer task builds
    the records of everything gathered in one loop and commits them through a connection of the
    writer's own (`db`, never the request connection, so a batch is never joined to a request's
    transaction). Committing in a thread of the writer's own was tried twice: with the GIL, a
    lone client's requests waited on it for up to the switch interval (5 ms), and a saturated
    worker lost more to the hand-overs than the commit costs on the loop. On SQLite, fail-open,
    the commit returns without an fsync (the file's group commit makes it durable within 50 ms,
    see app.py); on PostgreSQL a commit is a network round trip, so there the task hands each
    batch to the handler threads (`offload`, ADR 0007) and awaits it."""

    def __init__(
        self,
        db: Database,
        events_db: Database,
        clock: Clock,
        signer: Callable[[], DigestSigner | None],
        redactors: Mapping[str, Redactor],
        options: AuditOptions,
        exporters: Sequence[Exporter] = (),
        on_written: Callable[[int, bool], None] | None = None,
        offload: Offloader | None = None,
    ) -> None:
        self._db = db
        # PostgreSQL: the writer task's commits run in the handler threads (ADR 0007).
        self._offload = offload
        self._events_db = events_db
        self._clock = clock
        self._signer = signer
        self._redactors = dict(redactors)
        self._options = options
        self._exporters = tuple(exporters)
        self._on_written = on_written
        # Facts of this worker's calls, or records a worker made (in the writer process).
        self._pending: list[tuple[CallFacts | AuditRecord, asyncio.Future[bool] | None]] = []
        self._wake: asyncio.Event | None = None
        self._next_service_events = 0.0
        self._cache = RecordCache()
        # The last commit of records failed (cleared by the next one that succeeds).
        self._failing = False

    def accepting(self) -> bool:
        # Fail-closed refuses a call whose record could not be committed only after the call
        # ran; once the store is known to fail, calls are refused before they run instead, as
        # Vault refuses requests it cannot log. Each refused call's own record is the probe:
        # the first one committed reopens the gate (an SDK's retry of the 500 then succeeds).
        return not (self._options.fail_closed and self._failing)

    async def record(self, facts: CallFacts) -> bool:
        # The record is built with its batch, not here: building a few hundred in one loop runs
        # with the code and the model's shapes hot in the CPU's caches, where one at a time
        # between requests ran from cold ones (three times the CPU time per record over HTTP
        # than in a tight loop).
        strip_result(facts, self._cache)
        if not self._options.fail_closed:
            self._pending.append((facts, None))
            if len(self._pending) >= self._options.batch_max and self._wake is not None:
                self._wake.set()
            return True
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((facts, future))
        if self._wake is None:
            # No writer task (the app was not started through its lifespan): write now.
            self.flush()
        else:
            # Calls handled before the writer task runs join the same batch (group commit).
            self._wake.set()
        return await future

    def enqueue(self, records: Sequence[AuditRecord]) -> asyncio.Future[bool]:
        """A worker's batch, in the node's writer process (`writer_process.py`): one future
        for the batch, settled when its commit succeeds or fails (fail-open: the records stay
        buffered for the next round, as this worker's own would)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.extend((record, future) for record in records)
        if self._wake is None:
            self.flush()
        else:
            self._wake.set()
        return future

    async def run(self) -> None:
        """The worker's writer task (started at lifespan startup)."""
        self._wake = asyncio.Event()
        while True:
            await woken_or_due(self._wake, self._options.flush_seconds)
            try:
                await self._flush_off_loop()
                now = time.monotonic()
                if now >= self._next_service_events:
                    self._next_service_events = now + self._options.service_event_seconds
                    await off_loop(self._offload, self.publish_service_events)
            except StoreUnavailable as exc:
                # A failover in progress: expected, one line and no traceback; the records
                # stay buffered (fail-open) and the next round retries.
                log.warning("audit writer: database unavailable: %s", exc)
            except Exception:
                log.exception("audit writer failed")

    def stop(self) -> None:
        """At shutdown: commit what is buffered."""
        self.flush()

    def flush(self) -> None:
        """Commit the buffer, here (at shutdown, or without a writer task)."""
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            lines = self._write(batch)
        except Exception as exc:
            self._failed(batch, exc)
            return
        self._written(batch, lines)

    async def _flush_off_loop(self) -> None:
        """Commit the buffer in the offload threads when there are some. The buffer and the
        callers' futures are only touched here, on the loop; calls recorded meanwhile wait
        for the next batch (only this task flushes, so batches stay in order)."""
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            lines = await off_loop(self._offload, self._write, batch)
        except Exception as exc:
            self._failed(batch, exc)
            return
        self._written(batch, lines)

    def _write(self, batch: Sequence[_Pending]) -> list[bytes]:
        cache = self._cache
        redactors = self._redactors
        records = [
            f if isinstance(f, AuditRecord) else api_call_record(f, redactors.get(f.service), cache)
            for f, _ in batch
        ]
        with self._db.transaction(write=True) as tx:
            return self._append(tx, records)

    def _failed(self, batch: Sequence[_Pending], exc: Exception) -> None:
        self._failing = True
        log.error("audit records could not be written (%d): %s", len(batch), exc)
        if self._on_written is not None:
            self._on_written(len(batch), False)
        self._settle(batch, False)
        # Fail-open: every record stays for the next round (a future, a worker's batch in the
        # writer process, has been told). Fail-closed: the calls were refused, so are these.
        retry: list[_Pending] = [] if self._options.fail_closed else [(r, None) for r, _ in batch]
        kept = retry + self._pending
        if len(kept) > MAX_PENDING:
            log.error("audit records dropped (buffer full): %d", len(kept) - MAX_PENDING)
        self._pending = kept[-MAX_PENDING:]

    def _written(
        self,
        batch: Sequence[_Pending],
        lines: list[bytes],
    ) -> None:
        self._failing = False
        self._settle(batch, True)
        if self._on_written is not None:
            self._on_written(len(batch), True)
        self._export(lines)

    @staticmethod
    def _settle(batch: Sequence[_Pending], ok: bool) -> None:
        for _, fut in batch:
            if fut is not None and not fut.done():
                fut.set_result(ok)

    def publish_service_events(self) -> None:
        """Append service events (rotation, replication, deletion) not yet in the trail.

        Read from the main database, appended to the audit database (on SQLite another file)
        under the cursor row's lock, checking again which are already there: two workers that
        read the same events publish each of them once."""
        now = self._clock.now_ms()
        with self._db.transaction() as tx:
            since = AuditRepository(tx).service_event_cursor()
        with self._events_db.transaction() as tx:
            found = AuditRepository(tx).unpublished_service_events(since, _SERVICE_EVENT_BATCH)
        with self._db.transaction(write=True) as tx:
            repo = AuditRepository(tx)
            locked = repo.lock_service_event_cursor()
            present = repo.event_ids_present([service_event_id(e) for e in found])
            fresh = [
                service_event_record(e)
                for e in found
                if e.time_ms >= locked and service_event_id(e) not in present
            ]
            lines = self._append(tx, fresh)
            repo.mark_published([r.event_id for r in fresh])
            position = now - SERVICE_EVENT_LAG_MS
            if len(found) == _SERVICE_EVENT_BATCH:
                position = min(position, found[-1].time_ms)
            if position > locked:
                repo.set_service_event_cursor(position)
        self._export(lines)

    def _append(self, tx: Tx, records: Sequence[AuditRecord]) -> list[bytes]:
        """Chain `records` (in their order within each chain); chain heads are locked in one
        global order so that two workers' batches can never deadlock."""
        repo = AuditRepository(tx)
        now = self._clock.now_ms()
        lines: list[bytes] = []

        def chain_key(r: AuditRecord) -> tuple[str, str]:
            return (r.account_id, r.region)

        for (account, region), group in groupby(sorted(records, key=chain_key), key=chain_key):
            head = repo.lock_head(account, region, GENESIS)
            seq, prev = head.seq, head.head_hash
            bodies: list[bytes] = []
            hashes: list[str] = []
            times: list[int] = []
            for rec in group:
                seq += 1
                body = rec.line
                prev = record_hash(seq, prev, body)
                bodies.append(body)
                hashes.append(prev)
                times.append(rec.time_ms)
            repo.insert_block(
                StoredBlock(
                    account_id=account,
                    region=region,
                    first_seq=head.seq + 1,
                    last_seq=seq,
                    first_ms=min(times),
                    last_ms=max(times),
                    records=b"\n".join(bodies).decode(),
                    hashes=" ".join(hashes),
                    prev_hash=head.head_hash,
                )
            )
            lines += bodies
            repo.set_head(account, region, seq, prev)
            signer = (
                self._signer()
                if now - head.digest_ms >= self._options.digest_seconds * 1000
                else None
            )
            # The writer process learns the key from its workers: none yet, no digest yet.
            if signer is not None:
                digest_head = DigestHead(account, region, seq, prev, now, head.digest_signature)
                repo.insert_digest(
                    StoredDigest(
                        account,
                        region,
                        seq,
                        prev,
                        now,
                        head.digest_signature,
                        signer.key_version,
                        signer.public_key,
                        signer.sign(digest_head),
                    )
                )
        return lines

    def _export(self, lines: Sequence[bytes]) -> None:
        if not self._exporters:
            return
        # Exporters write CloudTrail's records, not the stored compact form.
        lines = [full_line(line) for line in lines]
        for exporter in self._exporters:
            try:
                exporter.export(lines)
            except Exception as exc:
                log.error("audit export failed (%s): %s", type(exporter).__name__, exc)
