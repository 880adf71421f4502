"""Several worker processes share one port and one database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from support.factories import ServerFactory


def test_two_workers_serve_consistently(server_factory: ServerFactory, sm_factory: Any) -> None:
    server = server_factory(extra_args=["--workers", "2"])
    sm = sm_factory(server=server)
    sm.create_secret(Name="shared", SecretString="0")

    def put(i: int) -> str:
        client = sm_factory(server=server)
        return str(client.put_secret_value(SecretId="shared", SecretString=str(i))["VersionId"])

    with ThreadPoolExecutor(8) as pool:
        versions = list(pool.map(put, range(1, 41)))
    listed = sm.list_secret_version_ids(SecretId="shared", IncludeDeprecated=True)["Versions"]
    assert {v["VersionId"] for v in listed} >= set(versions)
    stages = sm.describe_secret(SecretId="shared")["VersionIdsToStages"]
    assert sorted(s for labels in stages.values() for s in labels) == ["AWSCURRENT", "AWSPREVIOUS"]
    current = sm.get_secret_value(SecretId="shared")
    assert current["VersionId"] in versions


def test_reads_see_every_committed_write_across_workers(
    server_factory: ServerFactory, sm_factory: Any
) -> None:
    """Workers may answer repeated reads from memory; a write committed by any worker must
    still be visible to the very next read, whichever worker serves it."""
    server = server_factory(extra_args=["--workers", "2"])
    clients = [sm_factory(server=server) for _ in range(4)]
    clients[0].create_secret(Name="fresh", SecretString="v0")
    for i in range(1, 60):
        writer = clients[i % 4]
        writer.put_secret_value(SecretId="fresh", SecretString=f"v{i}")
        for reader in clients:
            assert reader.get_secret_value(SecretId="fresh")["SecretString"] == f"v{i}"
        if i % 10 == 0:
            writer.update_secret_version_stage(
                SecretId="fresh",
                VersionStage="AWSCURRENT",
                MoveToVersionId=clients[0].get_secret_value(
                    SecretId="fresh", VersionStage="AWSPREVIOUS"
                )["VersionId"],
                RemoveFromVersionId=clients[0].get_secret_value(SecretId="fresh")["VersionId"],
            )
            for reader in clients:
                assert reader.get_secret_value(SecretId="fresh")["SecretString"] == f"v{i - 1}"
            writer.put_secret_value(SecretId="fresh", SecretString=f"v{i}")
    clients[1].delete_secret(SecretId="fresh")
    for reader in clients:
        with pytest.raises(reader.exceptions.InvalidRequestException):
            reader.get_secret_value(SecretId="fresh")
