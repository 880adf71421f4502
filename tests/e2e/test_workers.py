"""Several worker processes share one port and one database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

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
