"""Regions another secretsd deployment serves: the configured peer list, and the signed HTTP
calls replication makes to those deployments.

A peer is named per region (`us-west-2=https://secretsd-west.example:8566`); the credentials
secretsd signs with (SigV4, as any AWS client would) are a principal of that deployment, read
from an AWS-style credentials file whose section is the region (or `default`). The calls go to
the peer's ordinary endpoint under the internal `SecretsdReplication.` target prefix, and the
peer authorizes them with its own policy engine (action `secretsd:ReplicateFromPeer`).
"""

from __future__ import annotations

import configparser
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TARGET_PREFIX = "SecretsdReplication."
ACTION = "secretsd:ReplicateFromPeer"


class PeerConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Peer:
    region: str
    url: str
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:  # never the secret key
        return f"Peer(region={self.region!r}, url={self.url!r})"


class PeerUnreachable(Exception):
    """No answer (connection refused, timeout, 5xx): retried with backoff."""


class PeerRefused(Exception):
    """The peer answered with an error (its code and message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def parse_peers(spec: str, credentials_file: str) -> dict[str, Peer]:
    """`REGION=URL[,REGION=URL...]` with credentials from `credentials_file`."""
    entries = [e.strip() for e in spec.replace(";", ",").split(",") if e.strip()]
    if not entries:
        return {}
    if not credentials_file:
        raise PeerConfigError(
            "replication peers need a credentials file (--replication-credentials)"
        )
    parser = configparser.ConfigParser()
    if not parser.read(Path(credentials_file)):
        raise PeerConfigError(f"cannot read the replication credentials file {credentials_file}")
    peers: dict[str, Peer] = {}
    for entry in entries:
        region, sep, url = entry.partition("=")
        region, url = region.strip(), url.strip().rstrip("/")
        if not sep or not region or not url.startswith(("http://", "https://")):
            raise PeerConfigError(f"bad replication peer {entry!r}: expected REGION=http(s)://...")
        section = region if parser.has_section(region) else "default"
        if not parser.has_section(section):
            raise PeerConfigError(
                f"no credentials for replication peer {region} (section [{region}])"
            )
        try:
            peers[region] = Peer(
                region,
                url,
                parser.get(section, "aws_access_key_id"),
                parser.get(section, "aws_secret_access_key"),
            )
        except configparser.NoOptionError as exc:
            raise PeerConfigError(f"incomplete credentials for replication peer {region}") from exc
    return peers


def call_peer(
    peer: Peer, operation: str, payload: Mapping[str, Any], *, region: str, timeout: float = 10.0
) -> dict[str, Any]:
    """One signed call (scoped to `region`); the body may hold secret values, so it travels only
    to the configured URL (use https between deployments) and never into a log or message."""
    body = json.dumps(payload).encode()
    request = AWSRequest(
        method="POST",
        url=peer.url + "/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": TARGET_PREFIX + operation,
        },
    )
    SigV4Auth(
        Credentials(peer.access_key_id, peer.secret_access_key), "secretsmanager", region
    ).add_auth(request)
    # The scheme was checked (http/https only) when the peer list was parsed.
    prepared = urllib.request.Request(  # noqa: S310
        peer.url + "/", data=body, headers=dict(request.headers.items()), method="POST"
    )
    try:
        with urllib.request.urlopen(prepared, timeout=timeout) as response:  # noqa: S310
            answer: dict[str, Any] = json.loads(response.read() or b"{}")
            return answer
    except urllib.error.HTTPError as exc:
        text = exc.read()
        if exc.code >= 500:
            raise PeerUnreachable(f"HTTP {exc.code}") from None
        try:
            error = json.loads(text)
            code = str(error.get("__type", "Error")).rsplit("#", 1)[-1]
            message = str(error.get("Message") or error.get("message") or "")
        except ValueError:
            code, message = "Error", f"HTTP {exc.code}"
        raise PeerRefused(code, message) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PeerUnreachable(str(reason)) from None
