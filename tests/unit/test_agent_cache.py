"""The Agent listener's pure parts: cache TTL and LRU size, the is-it-still-current rule, request
parsing and the error body shape."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from secretsd.agent.cache import AgentCache, still_current
from secretsd.agent.listener import (
    AgentApp,
    HttpError,
    error_response,
    parse_request,
    refresh_now,
    render,
)
from secretsd.agent.upstream import UpstreamError


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_ttl_and_least_recently_used_eviction() -> None:
    clock = Clock()
    cache = AgentCache(ttl=10, size=2, clock=clock)
    a, b, c = ("a", None, None), ("b", None, None), ("c", None, None)
    cache.store(a, {"v": 1})
    cache.store(b, {"v": 2})
    assert cache.lookup(a) == ({"v": 1}, True)  # a is now the most recently used
    cache.store(c, {"v": 3})
    assert cache.lookup(b) == (None, False) and len(cache) == 2
    clock.now = 10.0
    assert cache.lookup(a) == ({"v": 1}, False)  # expired, still there for the describe check
    assert AgentCache(ttl=0, size=5).lookup(a) == (None, False)
    off = AgentCache(ttl=0, size=5)
    off.store(a, {"v": 1})
    assert len(off) == 0


def test_still_current() -> None:
    cached = {"VersionId": "v1"}
    stages = {"v1": ["AWSCURRENT"], "v0": ["AWSPREVIOUS"]}
    assert still_current(("s", None, None), cached, stages)
    assert not still_current(("s", None, None), cached, {"v2": ["AWSCURRENT"], "v1": []})
    assert still_current(("s", None, "AWSPREVIOUS"), {"VersionId": "v0"}, stages)
    assert still_current(("s", "v0", None), {"VersionId": "v0"}, stages)
    assert not still_current(("s", "gone", None), {"VersionId": "gone"}, stages)
    assert not still_current(("s", None, None), cached, None)


def test_parsing_and_errors() -> None:
    assert parse_request("/secretsmanager/get", "secretId=a%2Fb&versionStage=X") == (
        "a/b",
        None,
        "X",
    )
    assert parse_request("/v1/app/db", "versionId=1") == ("app/db", "1", None)
    assert parse_request("/other", "") is None
    with pytest.raises(HttpError) as exc:
        parse_request("/v1/x", "secretId=y")
    assert exc.value.body == b"unknown parameter: secretId"
    assert refresh_now("refreshNow=TRUE") and not refresh_now("refreshNow=0")
    assert error_response("InternalFailure", "x") == b'{"__type":"InternalFailure"}'
    assert (
        error_response("X", 'a "quoted" word') == b'{"__type":"X", "message":"a \\"quoted\\" word"}'
    )
    shown = render(
        {
            "ARN": "arn",
            "Name": "n",
            "VersionId": "v",
            "SecretBinary": b"\x00\x01",
            "VersionStages": ["AWSCURRENT"],
            "CreatedDate": datetime(2024, 1, 1, 0, 0, 0, 500000, tzinfo=UTC),
        }
    )
    assert shown["SecretBinary"] == "AAE=" and shown["CreatedDate"] == "1704067200.5"
    whole = render({"CreatedDate": datetime(2024, 1, 1, tzinfo=UTC)})
    assert whole["CreatedDate"] == "1704067200"


class SlowUpstream:
    """Counts calls; each GetSecretValue takes a while (in the listener's worker thread)."""

    def __init__(self) -> None:
        self.gets = 0
        self.describes = 0
        self.fail_with: UpstreamError | None = None

    def get_secret_value(
        self, secret_id: str, version_id: str | None, version_stage: str | None
    ) -> dict[str, Any]:
        self.gets += 1
        time.sleep(0.05)
        if self.fail_with is not None:
            raise self.fail_with
        return {"ARN": f"arn:{secret_id}", "Name": secret_id, "VersionId": "v1"}

    def versions_to_stages(self, secret_arn: str) -> dict[str, list[str]]:
        self.describes += 1
        if self.fail_with is not None:
            raise self.fail_with
        return {"v2": ["AWSCURRENT"]}


def test_concurrent_misses_call_the_server_once_and_outages_serve_the_cache() -> None:
    clock = Clock()
    upstream = SlowUpstream()
    app = AgentApp(upstream, AgentCache(ttl=10, size=10, clock=clock), "t")

    async def scenario() -> None:
        key = ("s", None, None)
        answers = await asyncio.gather(*(app._fetch(key, False) for _ in range(20)))
        assert all(a["VersionId"] == "v1" for a in answers)
        assert upstream.gets == 1
        # Expired, and the server is down: the cached value is served (a transient error).
        clock.now = 11.0
        upstream.fail_with = UpstreamError(500, "InternalServiceError", "down")
        assert (await app._fetch(key, False))["VersionId"] == "v1"
        # A refusal is not transient: it reaches the caller.
        upstream.fail_with = UpstreamError(400, "AccessDeniedException", "no")
        with pytest.raises(UpstreamError):
            await app._fetch(key, True)

    asyncio.run(scenario())
