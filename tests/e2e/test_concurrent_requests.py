"""Many requests at once on one worker (ADR 0007): every answer right, and on PostgreSQL a
request waiting on the database never holds up the others."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import psycopg
from botocore.config import Config

from support.clients import make_client
from support.factories import ServerFactory
from support.names import NameFactory
from support.postgres import PostgresServer
from support.server import ServerProcess

CLIENTS = 64
ROUNDS = 4
# No retries: an answer that took a retry would hide a failure.
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=60)


def _clients(session: boto3.session.Session, server: ServerProcess, n: int) -> list[Any]:
    # Created here, one per thread: a client is safe to share, creating one from a session
    # in several threads at once is not.
    return [
        make_client(session, "secretsmanager", server.endpoint, server.credentials, config=NO_RETRY)
        for _ in range(n)
    ]


def test_concurrent_writes_and_reads_all_answer_right(
    server_factory: ServerFactory,
    boto_session: boto3.session.Session,
    unique_name: NameFactory,
) -> None:
    """64 clients at once on one worker: each writes versions of its own secret and reads each
    back, and all read one shared secret; every answer is the one its request asked for."""
    server = server_factory()
    clients = _clients(boto_session, server, CLIENTS)
    shared = unique_name()
    clients[0].create_secret(Name=shared, SecretString="shared-value")
    names = [unique_name() for _ in range(CLIENTS)]
    start = threading.Barrier(CLIENTS)

    def work(i: int) -> list[str]:
        sm, name = clients[i], names[i]
        start.wait()
        created = sm.create_secret(Name=name, SecretString=f"{i}-0")
        versions = [created["VersionId"]]
        for r in range(1, ROUNDS + 1):
            put = sm.put_secret_value(SecretId=name, SecretString=f"{i}-{r}")
            assert put["Name"] == name
            versions.append(put["VersionId"])
            got = sm.get_secret_value(SecretId=name)
            assert got["SecretString"] == f"{i}-{r}"
            assert got["VersionId"] == put["VersionId"]
            assert sm.get_secret_value(SecretId=shared)["SecretString"] == "shared-value"
        # Every version kept its own value.
        old = sm.get_secret_value(SecretId=name, VersionId=versions[1])
        assert old["SecretString"] == f"{i}-1"
        return versions

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(work, range(CLIENTS)))
    all_versions = [v for versions in results for v in versions]
    assert len(set(all_versions)) == CLIENTS * (ROUNDS + 1)
    # Read back afterwards through one client: the last write of each is AWSCURRENT.
    for i, name in enumerate(names):
        got = clients[0].get_secret_value(SecretId=name)
        assert got["SecretString"] == f"{i}-{ROUNDS}"
        assert got["VersionId"] == results[i][-1]


HOLD_SECONDS = 4.0


def test_request_waiting_on_a_lock_does_not_hold_up_others(
    pg_server: PostgresServer,
    tmp_path: Path,
    boto_session: boto3.session.Session,
    unique_name: NameFactory,
) -> None:
    """Another database session holds the row lock of one secret for seconds (as a long
    transaction of another node would); a PutSecretValue on that secret waits for it. Meanwhile
    the same (single) worker answers reads of other secrets at once; the write then completes."""
    url = pg_server.create_database("lockwait")
    with ServerProcess(tmp_path / "node", url) as server:
        sm, writer = _clients(boto_session, server, 2)
        held, free = unique_name(), unique_name()
        held_arn = sm.create_secret(Name=held, SecretString="before")["ARN"]
        sm.create_secret(Name=free, SecretString="free-value")
        with psycopg.connect(url, autocommit=True) as admin, psycopg.connect(url) as locker:
            locker.execute("SELECT arn FROM secrets WHERE arn = %s FOR UPDATE", (held_arn,))
            # Released by another thread: on a blocked event loop, the reads below would
            # otherwise never be answered at all.
            release = threading.Timer(HOLD_SECONDS, locker.rollback)
            with ThreadPoolExecutor(1) as pool:
                blocked: Future[Any] = pool.submit(
                    writer.put_secret_value, SecretId=held, SecretString="after"
                )
                locked_at = time.monotonic()
                release.start()
                try:
                    _wait_for_lock_wait(admin, blocked)
                    latencies = []
                    while time.monotonic() - locked_at < HOLD_SECONDS - 1.0:
                        began = time.monotonic()
                        got = sm.get_secret_value(SecretId=free)
                        latencies.append(time.monotonic() - began)
                        # On an event loop blocked by the waiting write, this read would wait
                        # for the lock's release (HOLD_SECONDS); answered around it, it takes
                        # milliseconds.
                        assert latencies[-1] < 1.0, latencies
                        assert got["SecretString"] == "free-value"
                        # The write is still waiting: these reads were answered around it.
                        assert not blocked.done()
                finally:
                    release.join()
                put = blocked.result(timeout=30)
        assert len(latencies) >= 10
        got = sm.get_secret_value(SecretId=held)
        assert got["SecretString"] == "after"
        assert got["VersionId"] == put["VersionId"]


def _wait_for_lock_wait(admin: psycopg.Connection[Any], blocked: Future[Any]) -> None:
    """Until the write's transaction is seen waiting on the row lock."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
        if row is not None and row[0] > 0:
            return
        assert not blocked.done(), blocked.result()
        time.sleep(0.02)
    raise AssertionError("the write never waited on the lock")
