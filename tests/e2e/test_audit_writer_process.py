"""The node's audit writer process (audit/writer_process.py) through real servers: a killed
writer is replaced and the calls made around its death are recorded (boto3, lookup-events, a
clean `secretsd audit verify`); it leaves when its server dies; a SIGTERM to the whole process
group (a terminal's, systemd's) loses no acknowledged call's record; `--audit-writer inline`
still records and verifies; `auto` picks by the cores the server may use."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from e2e.test_audit import _verify, records
from secretsd.audit.writer_process import audit_writer_kind
from support.factories import ClientFactory, ServerFactory
from support.names import NameFactory
from support.server import ServerProcess

# Explicit: "auto" (the default) depends on how many cores the machine has.
PROCESS = ["--audit-writer", "process"]


def _children(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(entry.name), cmdline))
    return found


def writer_pid(server: ServerProcess) -> int | None:
    # One worker: the server process serves itself; its spawned child is the audit writer
    # (multiprocessing's resource tracker is the other child).
    pids = [pid for pid, cmd in _children(server.pid) if "spawn_main" in cmd]
    assert len(pids) <= 1, pids
    return pids[0] if pids else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False


def _until(check: object, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _request_ids(server: ServerProcess, event_name: str) -> set[str]:
    return {r["requestID"] for r in records(server) if r["eventName"] == event_name}


def test_a_killed_writer_is_replaced_and_the_calls_around_it_are_recorded(
    server_factory: ServerFactory, client_factory: ClientFactory, unique_name: NameFactory
) -> None:
    server = server_factory(extra_args=PROCESS)
    sm = client_factory("secretsmanager", server=server)
    name = unique_name("writer")
    sm.create_secret(Name=name, SecretString="v")
    first = writer_pid(server)
    assert first is not None
    os.kill(first, signal.SIGKILL)
    # A batch already on the wire when its writer dies is lost (delivery is at most once,
    # audit/remote.py), and under load the worker may send one into the dying socket before it
    # reads the end of the connection. Once it has seen the connection go, it must keep every
    # record until a writer takes it.
    _until(lambda: "writer connection" in server.log_path.read_text())
    # Answered while the writer is dead or restarting: their records wait in the worker.
    during = [sm.get_secret_value(SecretId=name)["ResponseMetadata"]["RequestId"] for _ in range(5)]
    _until(lambda: (pid := writer_pid(server)) is not None and pid != first)
    after = [sm.get_secret_value(SecretId=name)["ResponseMetadata"]["RequestId"] for _ in range(5)]
    _until(lambda: set(during + after) <= _request_ids(server, "GetSecretValue"))
    trail = boto_lookup(client_factory, server, name)
    assert set(after) <= trail
    code, report = _verify(server)
    assert code == 0, report
    assert "audit writer process exited" in server.log_path.read_text()


def boto_lookup(clients: ClientFactory, server: ServerProcess, name: str) -> set[str]:
    ct = clients("cloudtrail", server=server)
    pages = ct.get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "GetSecretValue"}]
    )
    return {
        e["CloudTrailEvent"].split('"requestID":"')[1].split('"')[0]
        for page in pages
        for e in page["Events"]
    }


def test_the_writer_leaves_when_its_server_dies(server_factory: ServerFactory) -> None:
    server = server_factory(extra_args=PROCESS)
    writer = writer_pid(server)
    assert writer is not None
    os.kill(server.pid, signal.SIGKILL)
    try:
        _until(lambda: not _alive(writer), seconds=10)
    finally:
        server.kill9()


def _group_sigterm_keeps_every_record(
    server: ServerProcess, client_factory: ClientFactory, name: str, calls: int
) -> None:
    sm = client_factory("secretsmanager", server=server)
    sm.create_secret(Name=name, SecretString="v")
    acknowledged = [
        sm.get_secret_value(SecretId=name)["ResponseMetadata"]["RequestId"] for _ in range(calls)
    ]
    # As systemd (KillMode=control-group) or a terminal does: every process at once.
    os.killpg(server.pid, signal.SIGTERM)
    _until(lambda: not server.running, seconds=30)
    assert set(acknowledged) <= _request_ids(server, "GetSecretValue")
    log = server.log_path.read_text()
    assert "audit records not delivered" not in log
    # The writer that left with the workers is not replaced by one that outlives them.
    assert "audit writer process exited" not in log


def test_a_process_group_sigterm_loses_no_acknowledged_record(
    server_factory: ServerFactory, client_factory: ClientFactory, unique_name: NameFactory
) -> None:
    server = server_factory(extra_args=["--workers", "2", *PROCESS])
    _group_sigterm_keeps_every_record(server, client_factory, unique_name("group-term"), 40)


def test_a_process_group_sigterm_before_any_batch_was_sent_loses_nothing(
    server_factory: ServerFactory, client_factory: ClientFactory, unique_name: NameFactory
) -> None:
    """The workers have sent nothing yet (a flush interval longer than the test) when the whole
    group is told to stop: the writer must still wait for their last batches. It left at once
    when no worker had connected yet, and they found nobody listening (records lost)."""
    server = server_factory(
        extra_args=["--workers", "2", *PROCESS], env={"SECRETSD_AUDIT_FLUSH_SECONDS": "30"}
    )
    _group_sigterm_keeps_every_record(server, client_factory, unique_name("group-term-early"), 10)


def test_inline_writers_still_record_and_verify(
    server_factory: ServerFactory, client_factory: ClientFactory, unique_name: NameFactory
) -> None:
    server = server_factory(extra_args=["--audit-writer", "inline"])
    assert writer_pid(server) is None
    sm = client_factory("secretsmanager", server=server)
    name = unique_name("inline")
    sm.create_secret(Name=name, SecretString="v")
    ids = [sm.get_secret_value(SecretId=name)["ResponseMetadata"]["RequestId"] for _ in range(3)]
    _until(lambda: set(ids) <= _request_ids(server, "GetSecretValue"))
    code, report = _verify(server)
    assert code == 0, report


def test_auto_picks_a_writer_process_only_with_a_core_to_spare() -> None:
    assert audit_writer_kind("auto", workers=1, cores=3) == "process"
    assert audit_writer_kind("auto", workers=2, cores=8) == "process"
    assert audit_writer_kind("auto", workers=1, cores=2) == "inline"
    assert audit_writer_kind("auto", workers=2, cores=2) == "inline"
    assert audit_writer_kind("auto", workers=1, cores=1) == "inline"
    assert audit_writer_kind("process", workers=4, cores=1) == "process"
    assert audit_writer_kind("inline", workers=1, cores=8) == "inline"
