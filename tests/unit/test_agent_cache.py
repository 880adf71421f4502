"""The Agent listener's pure parts: cache TTL and LRU size, the is-it-still-current rule, request
parsing and the error body shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from secretsd.agent.cache import AgentCache, still_current
from secretsd.agent.listener import HttpError, error_response, parse_request, refresh_now, render


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
