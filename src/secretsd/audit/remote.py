"""A worker's audit sink when its node runs an audit writer process (`secretsd serve`'s default).

The worker keeps what must happen where the call was handled and what is cheap: the parameters
are redacted and the record made in its stored form (`compact_line`) here, so no secret value
leaves the worker, in one loop per batch as the in-process writer does. The hash chain, the
commit, the digests and the exporters happen in the writer process (`writer_process.py`), on
another core.

Delivery: fail-open, a batch is sent once; one that was on the wire when the connection broke
is counted failed and logged, not resent (at most once, as a worker's crash loses its last
flush interval); batches gathered while the writer cannot be reached wait for it (up to
MAX_PENDING). Fail-closed, each call waits for the ack of its batch's commit, and is refused if
the commit fails or the writer cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping

from secretsd.audit.chain import DigestSigner
from secretsd.audit.record import (
    CallFacts,
    RecordCache,
    strip_result,
    summarize,
    summary_record,
)
from secretsd.audit.redact import Redactor
from secretsd.audit.wire import WireError, decode_ack, encode_batch, frame, read_frame
from secretsd.audit.writer import MAX_PENDING, AuditOptions, woken_or_due

log = logging.getLogger("secretsd.audit")

# How long a worker's shutdown waits for the acks of its last batches.
CLOSE_SECONDS = 10.0
# Fail-closed: how long a call waits for its batch's commit before it is refused.
ACK_SECONDS = 10.0
# Between two attempts to reach a writer that did not answer.
RECONNECT_SECONDS = 0.5


class RemoteAuditSink:
    def __init__(
        self,
        socket_path: str,
        redactors: Mapping[str, Redactor],
        options: AuditOptions,
        signer: Callable[[], DigestSigner],
        on_written: Callable[[int, bool], None] | None = None,
    ) -> None:
        self._path = socket_path
        self._redactors = dict(redactors)
        self._options = options
        self._signer = signer
        self._on_written = on_written
        self._cache = RecordCache()
        self._pending: list[tuple[CallFacts, asyncio.Future[bool] | None]] = []
        # Sent and not yet acknowledged: batch id -> (records, the callers waiting on it).
        self._inflight: dict[int, tuple[int, list[asyncio.Future[bool]]]] = {}
        self._next_id = 0
        self._conn: asyncio.StreamWriter | None = None
        self._acks: asyncio.Task[None] | None = None
        self._sent_key: int | None = None
        self._next_attempt = 0.0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._drained: asyncio.Event | None = None
        self._failing = False

    def accepting(self) -> bool:
        return not (self._options.fail_closed and self._failing)

    async def record(self, facts: CallFacts) -> bool:
        strip_result(facts, self._cache)
        if not self._options.fail_closed:
            pending = self._pending
            pending.append((facts, None))
            if len(pending) >= self._options.batch_max and self._wake is not None:
                self._wake.set()
                if len(pending) > MAX_PENDING:
                    # The writer does not keep up (or is away): fail-open keeps the newest.
                    self._dropped(len(pending) - MAX_PENDING)
            return True
        if self._wake is None:
            # No sender task (the app was not started through its lifespan): nothing would
            # ever carry the record, so the call is refused.
            return False
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((facts, future))
        self._wake.set()
        try:
            # A writer that stopped answering (stopped, not dead) must not hold calls forever:
            # the call is refused (its record may still be committed later, without knowing
            # that the caller saw a refusal).
            async with asyncio.timeout(ACK_SECONDS):
                return await asyncio.shield(future)
        except TimeoutError:
            self._failing = True
            log.error("audit writer did not acknowledge within %ss: call refused", ACK_SECONDS)
            return False

    async def run(self) -> None:
        """The worker's sender task (started at lifespan startup)."""
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._task = asyncio.current_task()
        # Connected from the start, not at the first batch: a writer told to stop (a SIGTERM
        # to the whole process group) waits for connected workers' last batches only.
        await self._connect()
        while True:
            await woken_or_due(self._wake, self._options.flush_seconds)
            try:
                await self._send()
            except Exception:
                log.exception("audit sender failed")

    async def close(self) -> None:
        """At shutdown: send what is buffered and wait (bounded) for its acks."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        try:
            await self._send()
            deadline = time.monotonic() + CLOSE_SECONDS
            while self._inflight and self._conn is not None and time.monotonic() < deadline:
                assert self._drained is not None
                self._drained.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(deadline - time.monotonic()):
                        await self._drained.wait()
        finally:
            if self._pending or self._inflight:
                log.error(
                    "audit records not delivered at shutdown: %d",
                    len(self._pending) + sum(n for n, _ in self._inflight.values()),
                )
            self._disconnect()

    async def _send(self) -> None:
        if not self._pending:
            return
        if self._conn is None and not await self._connect():
            self._unreachable()
            return
        conn = self._conn
        assert conn is not None
        batch, self._pending = self._pending, []
        redactors, cache = self._redactors, self._cache
        records = [
            summary_record(summarize(f, redactors.get(f.service), cache), cache) for f, _ in batch
        ]
        signer = self._signer()
        key = None
        if signer.key_version != self._sent_key:
            key = (signer.key_version, signer.seed())
        self._next_id += 1
        batch_id = self._next_id
        self._inflight[batch_id] = (len(batch), [f for _, f in batch if f is not None])
        try:
            conn.write(frame(encode_batch(batch_id, records, key)))
            self._sent_key = signer.key_version
            await conn.drain()
        except (OSError, WireError) as exc:
            self._lost(f"sending: {exc}")

    async def _connect(self) -> bool:
        now = time.monotonic()
        if now < self._next_attempt:
            return False
        try:
            reader, writer = await asyncio.open_unix_connection(self._path)
        except OSError as exc:
            self._next_attempt = now + RECONNECT_SECONDS
            if not self._failing:
                log.error("audit writer unreachable at %s: %s", self._path, exc)
            return False
        self._conn = writer
        self._sent_key = None
        self._acks = asyncio.get_running_loop().create_task(self._read_acks(reader, writer))
        return True

    async def _read_acks(self, reader: asyncio.StreamReader, conn: asyncio.StreamWriter) -> None:
        try:
            while True:
                ack = decode_ack(await read_frame(reader))
                _, futures = self._inflight.pop(ack.batch_id, (0, []))
                for future in futures:
                    if not future.done():
                        future.set_result(ack.ok)
                self._failing = not ack.ok
                if self._on_written is not None:
                    if ack.written:
                        self._on_written(ack.written, True)
                    if ack.failed:
                        self._on_written(ack.failed, False)
                if not self._inflight and self._drained is not None:
                    self._drained.set()
        except (OSError, asyncio.IncompleteReadError, WireError) as exc:
            if self._conn is conn:
                self._lost(f"reading acks: {exc or 'connection closed'}")

    def _unreachable(self) -> None:
        self._failing = True
        if self._options.fail_closed:
            refused = [f for _, f in self._pending if f is not None]
            self._pending = [(f, fut) for f, fut in self._pending if fut is None]
            for future in refused:
                if not future.done():
                    future.set_result(False)
            if refused and self._on_written is not None:
                self._on_written(len(refused), False)
        if len(self._pending) > MAX_PENDING:
            self._dropped(len(self._pending) - MAX_PENDING)

    def _dropped(self, count: int) -> None:
        log.error("audit records dropped (buffer full): %d", count)
        del self._pending[:count]
        if self._on_written is not None:
            self._on_written(count, False)

    def _lost(self, why: str) -> None:
        """The connection broke: what was on the wire is not known to be committed."""
        lost = sum(n for n, _ in self._inflight.values())
        if lost:
            log.error("audit records lost with the writer connection (%d): %s", lost, why)
        else:
            log.warning("audit writer connection lost: %s", why)
        for _, futures in self._inflight.values():
            for future in futures:
                if not future.done():
                    future.set_result(False)
        self._inflight.clear()
        if lost and self._on_written is not None:
            self._on_written(lost, False)
        self._failing = True
        self._disconnect()
        if self._drained is not None:
            self._drained.set()

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        acks, self._acks = self._acks, None
        if conn is not None:
            conn.close()
        if acks is not None and acks is not asyncio.current_task():
            acks.cancel()
