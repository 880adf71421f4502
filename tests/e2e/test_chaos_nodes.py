"""Three `secretsd serve` nodes on one PostgreSQL database, under mixed load, lose one node and then
another to kill -9: no acknowledged write is lost, no version is made twice, no label is lost.

Clients behave like an application behind a load balancer: each call goes to some node, and one
that fails on a connection error or a 5xx is retried, with the same ClientRequestToken, on the next
node. Writers own their secrets and write them in turn (so the expected order of versions, and so
where AWSCURRENT and AWSPREVIOUS must sit, is known); readers read and list meanwhile. After the
second kill, the surviving node must show every acknowledged version with its value, no version that
nobody asked for, and exactly one AWSCURRENT and one AWSPREVIOUS per secret, on the right versions.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from support.clients import make_client
from support.failover_load import FAILOVER_CLIENT_CONFIG, Nodes, Writer, lost_writes
from support.names import NameFactory
from support.postgres import PostgresServer
from support.server import ServerProcess

pytestmark = pytest.mark.slow

NODES = 3
WRITERS = 4
READERS = 2
SECRETS_PER_WRITER = 6
LOAD_SECONDS = 2.5  # before the first kill, between the kills, and after the second
JOIN_TIMEOUT = 90.0


def start_nodes(pg_server: PostgresServer, base: Path) -> list[ServerProcess]:
    database = pg_server.create_database("chaos")
    first = ServerProcess(base / "node-0", database).start()
    nodes = [first]
    for i in range(1, NODES):
        # Every node needs the same root key protector; one set of credentials serves them all.
        data_dir = base / f"node-{i}"
        data_dir.mkdir()
        shutil.copy2(first.data_dir / "root.key", data_dir / "root.key")
        nodes.append(ServerProcess(data_dir, database).start())
    return nodes


def read_loop(nodes: Nodes, names: list[str], stop: threading.Event, failures: list[str]) -> None:
    turn = 0
    while not stop.is_set():
        turn += 1
        name = names[turn % len(names)]
        try:
            if turn % 3 == 0:
                nodes.call(turn, "list_secrets", MaxResults=20)
            elif turn % 3 == 1:
                nodes.call(turn, "describe_secret", SecretId=name)
            else:
                nodes.call(turn, "get_secret_value", SecretId=name)
        except Exception as exc:
            failures.append(repr(exc))
            return


def test_two_of_three_nodes_killed_under_load(
    pg_server: PostgresServer,
    tmp_path: Path,
    boto_session: boto3.session.Session,
    unique_name: NameFactory,
) -> None:
    servers = start_nodes(pg_server, tmp_path)
    try:
        clients: list[Any] = [
            make_client(
                boto_session,
                "secretsmanager",
                s.endpoint,
                servers[0].credentials,
                config=FAILOVER_CLIENT_CONFIG,
            )
            for s in servers
        ]
        initial: dict[str, str] = {}
        writers = []
        for w in range(WRITERS):
            names = [unique_name(f"chaos-w{w}-s{i}") for i in range(SECRETS_PER_WRITER)]
            for name in names:
                initial[name] = clients[0].create_secret(Name=name, SecretString="initial")[
                    "VersionId"
                ]
            writers.append(Writer(Nodes(clients), names, index=w))
        stop = threading.Event()
        read_failures: list[str] = []
        reader_nodes = Nodes(clients)
        threads = [
            threading.Thread(target=w.run, args=(stop,), name=f"writer-{i}")
            for i, w in enumerate(writers)
        ] + [
            threading.Thread(
                target=read_loop,
                args=(reader_nodes, list(initial), stop, read_failures),
                name=f"reader-{i}",
            )
            for i in range(READERS)
        ]
        for thread in threads:
            thread.start()
        counts = []
        for victim in servers[:2]:
            time.sleep(LOAD_SECONDS)
            counts.append(sum(w.count for w in writers))
            victim.kill9()
        time.sleep(LOAD_SECONDS)
        stop.set()
        for thread in threads:
            thread.join(timeout=JOIN_TIMEOUT)
            assert not thread.is_alive(), f"{thread.name} still running"
        counts.append(sum(w.count for w in writers))

        assert [w.failure for w in writers if w.failure] == []
        assert read_failures == []
        # Writes were acknowledged before each kill and after the last one.
        assert counts[0] > 0 and counts[1] > counts[0] and counts[2] > counts[1], counts
        survivor = clients[2]
        lost = {
            name: missing
            for w in writers
            for name in w.secrets_
            if (missing := lost_writes(survivor, name, w.acked.get(name, []), initial[name]))
        }
        assert lost == {}, f"acknowledged writes lost: {lost}"
        # The kills really hit clients: some calls failed over to another node.
        retried = sum(w.retried for w in writers) + len(reader_nodes.errors)
        assert retried > 0
        print(
            f"\nchaos: {counts[-1]} writes acknowledged on 3 nodes, 2 killed, 0 lost, "
            f"{retried} calls retried on another node"
        )
        assert "Traceback" not in servers[2].logs()
    finally:
        for server in servers:
            server.stop()
