"""A worker's RemoteAuditSink against the node's writer service (audit/remote.py,
audit/writer_process.py) over a real Unix socket, in one event loop: acks, refusals while the
writer cannot be reached or does not answer, buffering, metrics, the signing key's crossing."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from secretsd.audit import remote
from secretsd.audit.chain import DigestHead, DigestSigner, load_public_key, signature_valid
from secretsd.audit.record import CallFacts, render
from secretsd.audit.redact import Redactor
from secretsd.audit.remote import RemoteAuditSink
from secretsd.audit.writer import AuditOptions, AuditWriter
from secretsd.audit.writer_process import SignerSlot, WriteCounts, WriterService, _open_databases
from secretsd.bootstrap import initialise
from secretsd.clock import SystemClock
from secretsd.protocol.model import load_service_model
from secretsd.settings import Settings
from secretsd.store.audit_repository import AuditRepository
from secretsd.store.database import Database
from support.identities import ALICE

KEY = DigestSigner(3, bytes(range(32)))


def _facts(n: int, value: str = "") -> CallFacts:
    request = {"SecretId": f"s{n}"} | ({"SecretString": value} if value else {})
    return CallFacts(
        "secretsmanager",
        "PutSecretValue" if value else "GetSecretValue",
        f"req-{n}",
        1_765_000_000_000 + n,
        200,
        "us-east-1",
        "127.0.0.1",
        "Boto3",
        ALICE,
        request=request,
        response={"ARN": f"arn:aws:secretsmanager:us-east-1:111122223333:secret:s{n}-AbCdEf"},
    )


class Node:
    """The writer service of one node, on a socket in tmp_path, started and stopped at will."""

    def __init__(self, tmp_path: Path, fail_closed: bool) -> None:
        self.settings = Settings(data_dir=tmp_path / "data", audit_fail_closed=fail_closed)
        db = Database(self.settings.effective_database_url)
        initialise(self.settings, db, SystemClock())
        db.close()
        self.trail, self.events = _open_databases(self.settings)
        self.path = str(tmp_path / "w.sock")
        self.options = AuditOptions(fail_closed=fail_closed, digest_seconds=0)
        self.signers = SignerSlot()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, handle: Callable[..., object] | None = None) -> None:
        counts = WriteCounts()
        audit = AuditWriter(
            self.trail, self.events, SystemClock(), self.signers.current, {}, self.options,
            on_written=counts.add,
        )  # fmt: skip
        self.service = WriterService(audit, self.signers, counts)
        self._tasks.append(asyncio.create_task(audit.run()))
        self._server = await asyncio.start_unix_server(handle or self.service.handle, self.path)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self.service.close()
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        os.unlink(self.path)

    def records(self) -> list[dict[str, Any]]:
        return [render(line) for line in self.lines()]

    def lines(self) -> list[str]:
        with self.trail.transaction() as tx:
            blocks = AuditRepository(tx).blocks_newest_first(
                "111122223333",
                "us-east-1",
                start_ms=0,
                end_ms=2**62,
                at_or_before_seq=None,
                limit=1000,
            )
        return [line for block in reversed(blocks) for line in block.lines()]

    def digests_valid(self) -> bool:
        with self.trail.transaction() as tx:
            digests = AuditRepository(tx).digests("111122223333", "us-east-1")
        key = load_public_key(KEY.public_key)
        return bool(digests) and all(
            d.key_version == KEY.key_version
            and signature_valid(
                key,
                DigestHead(
                    d.account_id, d.region, d.seq, d.head_hash, d.created_ms, d.previous_signature
                ),
                d.signature,
            )
            for d in digests
        )


@asynccontextmanager
async def _sink(node: Node, counted: list[tuple[int, bool]]) -> AsyncIterator[RemoteAuditSink]:
    sink = RemoteAuditSink(
        node.path,
        {"secretsmanager": Redactor(load_service_model("secretsmanager"))},
        AuditOptions(fail_closed=node.options.fail_closed, flush_seconds=0.01),
        lambda: KEY,
        lambda n, ok: counted.append((n, ok)),
    )
    task = asyncio.create_task(sink.run())
    await asyncio.sleep(0)
    try:
        yield sink
    finally:
        await sink.close()
        task.cancel()


def test_fail_closed_calls_wait_for_their_commit_and_the_key_crosses(tmp_path: Path) -> None:
    node = Node(tmp_path, fail_closed=True)
    counted: list[tuple[int, bool]] = []

    async def scenario() -> list[bool]:
        await node.start()
        async with _sink(node, counted) as sink:
            answers = await asyncio.gather(
                *(sink.record(_facts(n, "canary-value" if n % 2 else "")) for n in range(20))
            )
            # Committed before the calls were answered.
            assert len(node.records()) == 20
        await node.stop()
        return answers

    assert asyncio.run(scenario()) == [True] * 20
    assert [line for line in node.lines() if "canary-value" in line] == []
    assert sum(n for n, ok in counted if ok) == 20
    assert node.digests_valid()


def test_fail_closed_refuses_while_the_writer_is_unreachable_then_recovers(
    tmp_path: Path,
) -> None:
    node = Node(tmp_path, fail_closed=True)
    counted: list[tuple[int, bool]] = []
    remote_reconnect = remote.RECONNECT_SECONDS

    async def scenario() -> tuple[bool, bool, bool, bool]:
        async with _sink(node, counted) as sink:
            refused = await sink.record(_facts(1))
            gate_closed = not sink.accepting()
            await node.start()
            await asyncio.sleep(remote_reconnect + 0.05)
            accepted = await sink.record(_facts(2))
            gate_open = sink.accepting()
        await node.stop()
        return refused, gate_closed, accepted, gate_open

    assert asyncio.run(scenario()) == (False, True, True, True)
    assert (1, False) in counted
    assert [r["requestID"] for r in node.records()] == ["req-2"]


def test_fail_closed_refuses_when_the_writer_does_not_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote, "ACK_SECONDS", 0.3)
    monkeypatch.setattr(remote, "CLOSE_SECONDS", 0.3)
    node = Node(tmp_path, fail_closed=True)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads everything, answers nothing
        writer.close()

    async def scenario() -> tuple[bool, bool]:
        await node.start(silent)
        async with _sink(node, []) as sink:
            answer = await sink.record(_facts(1))
            gate = sink.accepting()
        await asyncio.sleep(0.1)  # the silent end sees the sink's close and closes too
        await node.stop()
        return answer, gate

    assert asyncio.run(scenario()) == (False, False)


def test_fail_open_keeps_what_it_gathers_while_the_writer_is_away(tmp_path: Path) -> None:
    node = Node(tmp_path, fail_closed=False)
    counted: list[tuple[int, bool]] = []

    async def scenario() -> None:
        await node.start()
        async with _sink(node, counted) as sink:
            assert all([await sink.record(_facts(n)) for n in range(5)])
            await asyncio.sleep(0.2)
            await node.stop()
            # Away: the calls are answered, their records wait in the worker.
            assert all([await sink.record(_facts(n)) for n in range(5, 10)])
            await asyncio.sleep(0.2)
            await node.start()
            await asyncio.sleep(remote.RECONNECT_SECONDS + 0.2)
        await node.stop()

    asyncio.run(scenario())
    ids = [r["requestID"] for r in node.records()]
    assert ids == [f"req-{n}" for n in range(10)]
    assert sum(n for n, ok in counted if ok) == 10


def test_fail_open_keeps_the_newest_when_its_buffer_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote, "MAX_PENDING", 20)
    node = Node(tmp_path, fail_closed=False)
    counted: list[tuple[int, bool]] = []

    async def scenario() -> None:
        sink = RemoteAuditSink(
            node.path,
            {"secretsmanager": Redactor(load_service_model("secretsmanager"))},
            AuditOptions(flush_seconds=0.01, batch_max=5),
            lambda: KEY,
            lambda n, ok: counted.append((n, ok)),
        )
        task = asyncio.create_task(sink.run())
        await asyncio.sleep(0)
        # No writer yet: everything waits in the worker, the oldest beyond 20 are dropped.
        for n in range(50):
            assert await sink.record(_facts(n))
        await node.start()
        await asyncio.sleep(remote.RECONNECT_SECONDS + 0.2)
        await sink.close()
        task.cancel()
        await node.stop()

    asyncio.run(scenario())
    ids = [r["requestID"] for r in node.records()]
    assert ids == [f"req-{n}" for n in range(30, 50)]
    assert sum(n for n, ok in counted if not ok) == 30
