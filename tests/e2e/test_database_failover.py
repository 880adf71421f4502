"""secretsd on a highly available PostgreSQL follows the new primary, and loses no acknowledged write.

The database is a Patroni cluster (three members, etcd, synchronous_mode_strict) on loopback ports;
secretsd is given all three members in one libpq multi-host URL with
target_session_attrs=read-write. Writers keep calling PutSecretValue with fresh ClientRequestTokens
(each retried with its token until acknowledged, as an SDK does) while the primary machine is lost:
Patroni and its PostgreSQL are killed with SIGKILL together. Patroni promotes the synchronous
standby; every write secretsd acknowledged must be there, with its value, on the new primary. The
longest time without an acknowledged write is printed (docs/deployment.md records it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.exceptions import ClientError

from support.clients import make_client
from support.failover_load import (
    FAILOVER_CLIENT_CONFIG,
    Nodes,
    Writer,
    longest_gap,
    lost_writes,
)
from support.names import NameFactory
from support.patroni import PatroniCluster, PatroniUnavailable, timings_from_env
from support.postgres import PostgresServer, free_port, postgres_required, url_for_database
from support.server import ServerProcess

pytestmark = pytest.mark.slow

WRITERS = 4
SECRETS_PER_WRITER = 4
LOAD_BEFORE_KILL = 2.0
LOAD_AFTER_RECOVERY = 2.0
RECOVERY_TIMEOUT = 120.0
JOIN_TIMEOUT = 90.0
# Generous: with ttl 6 s and loop_wait 1 s a failover takes about ten seconds here. With
# Patroni's own timings (SECRETSD_FAILOVER_TIMINGS=patroni-defaults, a measurement run, not CI's)
# the dead leader's lock alone lasts up to 30 s.
TIMINGS = timings_from_env()
MAX_UNAVAILABLE_SECONDS = 90.0 if TIMINGS else 45.0


@pytest.fixture(scope="module")
def patroni() -> Iterator[PatroniCluster]:
    try:
        cluster = PatroniCluster.start(TIMINGS)
    except PatroniUnavailable as exc:
        if postgres_required():
            pytest.fail(str(exc))
        pytest.skip(f"SKIPPING THE DATABASE FAILOVER TEST: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


def client_for(session: boto3.session.Session, server: ServerProcess) -> Any:
    return make_client(
        session,
        "secretsmanager",
        server.endpoint,
        server.credentials,
        config=FAILOVER_CLIENT_CONFIG,
    )


def test_multi_host_url_skips_a_dead_host(
    pg_server: PostgresServer,
    tmp_path: Path,
    boto_session: boto3.session.Session,
    unique_name: NameFactory,
) -> None:
    """The first host of the list does not answer; migrations and requests use the second."""
    real = pg_server.create_database("multihost")
    host = real.split("@", 1)[1].split("/", 1)[0]
    dead = f"127.0.0.1:{free_port()}"
    url = url_for_database(f"postgresql://postgres@{dead},{host}/x", real.rsplit("/", 1)[1])
    url += "?target_session_attrs=read-write"
    with ServerProcess(tmp_path / "node", url) as server:
        sm = client_for(boto_session, server)
        name = unique_name()
        sm.create_secret(Name=name, SecretString="v1")
        assert sm.get_secret_value(SecretId=name)["SecretString"] == "v1"


def test_primary_lost_during_writes(
    patroni: PatroniCluster,
    tmp_path: Path,
    boto_session: boto3.session.Session,
    unique_name: NameFactory,
) -> None:
    with ServerProcess(tmp_path / "node", patroni.create_database()) as server:
        sm = client_for(boto_session, server)
        initial: dict[str, str] = {}
        writers = []
        for w in range(WRITERS):
            names = [unique_name(f"ha-w{w}-s{i}") for i in range(SECRETS_PER_WRITER)]
            for name in names:
                initial[name] = sm.create_secret(Name=name, SecretString="initial")["VersionId"]
            writers.append(Writer(Nodes([sm]), names, index=w))
        stop = threading.Event()
        threads = [threading.Thread(target=w.run, args=(stop,)) for w in writers]
        for thread in threads:
            thread.start()
        try:
            time.sleep(LOAD_BEFORE_KILL)
            old = patroni.primary()
            assert old is not None
            before_kill = sum(w.count for w in writers)
            killed_at = time.monotonic()
            old.kill9()
            promoted = patroni.wait_until(
                lambda: patroni.primary() not in (None, old), "new primary", RECOVERY_TIMEOUT
            )
            # Until the remaining standby streams from the new primary, strict synchronous mode
            # holds every commit back: writes resume only then.
            patroni.wait_until(lambda: patroni.healthy(members=2), "sync standby", RECOVERY_TIMEOUT)
            time.sleep(LOAD_AFTER_RECOVERY)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=JOIN_TIMEOUT)
        assert not any(thread.is_alive() for thread in threads)
        assert [w.failure for w in writers if w.failure] == []
        new = patroni.primary()
        assert new is not None and new is not old

        after_kill = sum(w.count for w in writers) - before_kill
        assert before_kill > 0 and after_kill > 0, (before_kill, after_kill)
        lost = {
            name: missing
            for w in writers
            for name in w.secrets_
            if (missing := lost_writes(sm, name, w.acked.get(name, []), initial[name]))
        }
        assert lost == {}, f"acknowledged writes lost: {lost}"
        # What clients saw meanwhile: only AWS's retryable InternalServiceError.
        errors = [e for w in writers for e in w.nodes.errors]
        assert errors, "the failover was never noticed"
        assert {e.split(":", 1)[0] for e in errors} == {"InternalServiceError 500"}, errors[:5]
        window = longest_gap(writers, since=killed_at)
        acked = sum(w.count for w in writers)
        print(
            f"\nfailover: {acked} writes acknowledged, 0 lost; new primary after "
            f"{promoted:.1f} s; writes unavailable for {window:.1f} s; "
            f"{len(errors)} retried calls"
        )
        assert window < MAX_UNAVAILABLE_SECONDS
        assert "Traceback" not in server.logs()


def test_commit_cut_off_from_its_standby_is_not_acknowledged(
    patroni: PatroniCluster,
    tmp_path: Path,
    boto_session: boto3.session.Session,
    unique_name: NameFactory,
) -> None:
    """With no synchronous standby left, strict mode holds a COMMIT back; if that wait is
    cancelled, PostgreSQL reports the commit done (with a WARNING) though it is on the primary
    only. secretsd must not acknowledge such a write. Last in the module: it takes the
    standbys away."""
    primary = patroni.primary()
    assert primary is not None
    with ServerProcess(tmp_path / "node", patroni.create_database()) as server:
        sm = client_for(boto_session, server)
        name = unique_name()
        sm.create_secret(Name=name, SecretString="before")
        for member in patroni.members:
            if member is not primary:
                member.kill9()
        outcome: list[Any] = []

        def put() -> None:
            try:
                outcome.append(sm.put_secret_value(SecretId=name, SecretString="cut off"))
            except Exception as exc:
                outcome.append(exc)

        writer = threading.Thread(target=put)
        writer.start()
        admin = patroni.member_url(primary)
        cancelled = 0
        deadline = time.monotonic() + 20
        # Other commits of the server (a background pass taking its lease, say) wait for the
        # standby too and may come first: cancel every waiting commit until the put is answered.
        with psycopg.connect(admin, autocommit=True) as conn:
            while writer.is_alive() and time.monotonic() < deadline:
                rows = conn.execute(
                    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
                    " WHERE wait_event = 'SyncRep'"
                ).fetchall()
                cancelled += sum(1 for row in rows if row[0])
                time.sleep(0.05)
        writer.join(timeout=30)
        assert cancelled, "the commit never waited for a synchronous standby"
        assert len(outcome) == 1
        result = outcome[0]
        assert isinstance(result, ClientError), f"acknowledged without a standby: {result}"
        assert result.response["Error"]["Code"] == "InternalServiceError"
        assert result.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert "Traceback" not in server.logs()
