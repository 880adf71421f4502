"""The throw-away PostgreSQL support module on its own (no secretsd involved)."""

from __future__ import annotations

import socket
from pathlib import Path

import psycopg
import pytest

from support.postgres import LocalCluster, PostgresServer, find_bindir, url_for_database


def test_creates_distinct_databases_that_accept_connections(pg_server: PostgresServer) -> None:
    first = pg_server.create_database("one")
    second = pg_server.create_database("two")
    assert first != second
    names = []
    for url in (first, second):
        with psycopg.connect(url) as conn:
            row = conn.execute("select 1, current_database()").fetchone()
            assert row is not None
            assert row[0] == 1
            names.append(row[1])
    assert names[0] != names[1]


def test_cluster_is_durable(pg_server: PostgresServer) -> None:
    # Durability tests kill secretsd and rely on acknowledged commits being on disk.
    with psycopg.connect(pg_server.create_database("fsync")) as conn:
        for setting in ("fsync", "synchronous_commit"):
            row = conn.execute(f"show {setting}").fetchone()
            assert row == ("on",)


def test_url_for_database_replaces_path_and_dbname_parameter() -> None:
    assert (
        url_for_database("postgresql://u@127.0.0.1:5433/postgres", "x")
        == "postgresql://u@127.0.0.1:5433/x"
    )
    assert (
        url_for_database("postgresql://u@/postgres?host=/tmp/s&dbname=y&port=5433", "x")
        == "postgresql://u@/x?host=%2Ftmp%2Fs&port=5433"
    )


def test_stopped_cluster_leaves_nothing_behind() -> None:
    if find_bindir() is None:
        pytest.skip("PostgreSQL binaries not installed; the session fixture reports why")
    cluster = LocalCluster.start()
    base, port = cluster.base, cluster.port
    with psycopg.connect(cluster.admin_url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    cluster.stop()
    assert not Path(base).exists()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
