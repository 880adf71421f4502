"""Clients that keep writing through failures, as a well-behaved application behind a load balancer
does, and the checks that nothing they were told was written got lost.

A `Writer` sends PutSecretValue calls with fresh ClientRequestTokens, each one retried with the same
token (on the next node, when there are several) until the server acknowledges it: a retry of a
write that had committed before the failure must return that version, not make a second one. Every
acknowledged write is recorded with the time it was acknowledged, so the longest gap between two
acknowledgements shows how long writes were unavailable.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

CURRENT, PREVIOUS = "AWSCURRENT", "AWSPREVIOUS"
# Short timeouts: a client should learn quickly that a node (or its database) is gone.
FAILOVER_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=15)
# How long one write may keep being retried before the test calls it unavailable for good.
WRITE_DEADLINE = 60.0
RETRY_PAUSE = 0.05


def is_retryable(exc: Exception) -> bool:
    """What an SDK retries: the connection failed, or the server answered 5xx."""
    if isinstance(exc, (HTTPClientError, BotoConnectionError)):
        return True
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        return status >= 500
    return False


@dataclass
class Nodes:
    """boto3 clients for each node; calls move on to the next node when one fails."""

    clients: Sequence[Any]
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, start: int, method: str, **kwargs: Any) -> tuple[dict[str, Any], int]:
        """The response of the first node (from `start`, round-robin) that answers without a
        retryable error, and how many attempts that took."""
        deadline = time.monotonic() + WRITE_DEADLINE
        attempt = 0
        while True:
            client = self.clients[(start + attempt) % len(self.clients)]
            attempt += 1
            try:
                response: dict[str, Any] = getattr(client, method)(**kwargs)
                return response, attempt
            except Exception as exc:
                if not is_retryable(exc) or time.monotonic() > deadline:
                    raise
                with self._lock:
                    self.errors.append(_describe(exc))
                time.sleep(RETRY_PAUSE)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"{error.get('Code')} {status}: {error.get('Message')}"
    return type(exc).__name__


@dataclass(frozen=True)
class Ack:
    token: str
    value: str
    at: float


@dataclass
class Writer:
    """Writes its own secrets in turn, one write at a time, each retried until acknowledged."""

    nodes: Nodes
    secrets_: list[str]
    index: int
    acked: dict[str, list[Ack]] = field(default_factory=dict)
    retried: int = 0
    failure: str | None = None

    def run(self, stop: threading.Event) -> None:
        turn = 0
        while not stop.is_set():
            secret = self.secrets_[turn % len(self.secrets_)]
            turn += 1
            token = str(uuid.uuid4())
            value = f"{secret}:{token}:{secrets.token_hex(16)}"
            try:
                response, attempts = self.nodes.call(
                    self.index + turn,
                    "put_secret_value",
                    SecretId=secret,
                    ClientRequestToken=token,
                    SecretString=value,
                )
            except Exception as exc:
                self.failure = f"{secret} {token}: {_describe(exc)}"
                return
            if response["VersionId"] != token:
                self.failure = f"{secret}: asked for version {token}, got {response['VersionId']}"
                return
            self.retried += attempts - 1
            self.acked.setdefault(secret, []).append(Ack(token, value, time.monotonic()))

    @property
    def count(self) -> int:
        return sum(len(acks) for acks in self.acked.values())


def ack_times(writers: Sequence[Writer]) -> list[float]:
    return sorted(ack.at for writer in writers for acks in writer.acked.values() for ack in acks)


def longest_gap(writers: Sequence[Writer], since: float) -> float:
    """The longest time after `since` during which no writer got an acknowledgement."""
    times = [since, *(t for t in ack_times(writers) if t >= since)]
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def listed_versions(sm: Any, secret: str) -> Iterator[dict[str, Any]]:
    # botocore has no paginator for ListSecretVersionIds.
    kwargs: dict[str, Any] = {"SecretId": secret, "IncludeDeprecated": True}
    while True:
        page = sm.list_secret_version_ids(**kwargs)
        yield from page["Versions"]
        if not page.get("NextToken"):
            return
        kwargs["NextToken"] = page["NextToken"]


def lost_writes(sm: Any, secret: str, acks: Sequence[Ack], initial: str) -> list[str]:
    """Acknowledged versions of `secret` that are missing or have another value, after checking
    that its versions are exactly the initial one plus those acknowledged (no duplicates, nothing
    unknown) and that its labels are where the sequence of writes puts them."""
    listed = {v["VersionId"]: set(v.get("VersionStages", [])) for v in listed_versions(sm, secret)}
    lost = [ack.token for ack in acks if ack.token not in listed]
    lost += [
        ack.token
        for ack in acks
        if ack.token in listed
        and sm.get_secret_value(SecretId=secret, VersionId=ack.token)["SecretString"] != ack.value
    ]
    expected = {initial, *(ack.token for ack in acks)}
    assert set(listed) <= expected, f"{secret}: versions nobody wrote {set(listed) - expected}"
    assert len(acks) == len({ack.token for ack in acks}), f"{secret}: a token acknowledged twice"
    order = [initial, *(ack.token for ack in acks)]
    current = [token for token, stages in listed.items() if CURRENT in stages]
    previous = [token for token, stages in listed.items() if PREVIOUS in stages]
    assert current == order[-1:], f"{secret}: AWSCURRENT on {current}, expected {order[-1]}"
    assert previous == order[-2:-1], f"{secret}: AWSPREVIOUS on {previous}, expected {order[-2]}"
    described = sm.describe_secret(SecretId=secret)["VersionIdsToStages"]
    assert {k: set(v) for k, v in described.items()} == {k: v for k, v in listed.items() if v}
    return lost
