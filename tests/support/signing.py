"""Raw HTTP requests to a test server, SigV4-signed by botocore but otherwise exactly as given.

boto3 refuses to send most malformed requests (it validates and serialises for us); these helpers
send any body, method, target or content type, so tests can reach the server's parsing and
validation with inputs no SDK would produce, while still passing authentication.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials

from support.clients import DEFAULT_REGION
from support.server import Credentials

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "secretsmanager."
SIGNING_NAME = "secretsmanager"
# Generous for a local server; a request that takes longer than this is a hang.
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class RawRequest:
    """One HTTP request; `target=None` / `content_type=None` leave the header out."""

    body: bytes = b"{}"
    target: str | None = None
    content_type: str | None = JSON_CONTENT_TYPE
    method: str = "POST"
    path: str = "/"
    extra_headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def for_operation(cls, operation: str, params: Mapping[str, Any]) -> RawRequest:
        """What an SDK would send for `operation` with `params` (already wire-shaped)."""
        return cls(body=json.dumps(params).encode(), target=TARGET_PREFIX + operation)


@dataclass(frozen=True)
class Signer:
    """How to sign: the server's credentials, or deliberately wrong ones."""

    credentials: Credentials
    region: str = DEFAULT_REGION
    service: str = SIGNING_NAME

    def headers(self, url: str, request: RawRequest) -> dict[str, str]:
        """The SigV4 headers (X-Amz-Date, Authorization) botocore computes for `request`."""
        aws_request = AWSRequest(
            method=request.method, url=url, data=request.body, headers=_headers(request)
        )
        creds = BotocoreCredentials(
            self.credentials.access_key_id, self.credentials.secret_access_key
        )
        SigV4Auth(creds, self.service, self.region).add_auth(aws_request)
        return {
            name: str(aws_request.headers[name])
            for name in ("X-Amz-Date", "Authorization")
            if name in aws_request.headers
        }


def _headers(request: RawRequest) -> dict[str, str]:
    headers: dict[str, str] = {}
    if request.target is not None:
        headers["X-Amz-Target"] = request.target
    if request.content_type is not None:
        headers["Content-Type"] = request.content_type
    headers.update(request.extra_headers)
    return headers


class RawClient:
    """Sends `RawRequest`s to one endpoint, signed by `signer` unless told otherwise.

    One connection pool for all requests (like an SDK); `close()` when done.
    """

    def __init__(
        self, endpoint: str, signer: Signer | None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.signer = signer
        self._http = httpx.Client(timeout=timeout)

    def send(
        self,
        request: RawRequest,
        *,
        signer: Signer | None = None,
        signed: bool = True,
        body_after_signing: bytes | None = None,
    ) -> httpx.Response:
        """Send `request`; `body_after_signing` replaces the body once signed (a tampered body)."""
        url = self.endpoint + request.path
        headers = _headers(request)
        chosen = signer or self.signer
        if signed and chosen is not None:
            headers.update(chosen.headers(url, request))
        body = request.body if body_after_signing is None else body_after_signing
        return self._http.request(request.method, url, content=body, headers=headers)

    def stream(self, request: RawRequest, chunk_size: int = 65536) -> httpx.Response:
        """Send `request.body` in chunks (Transfer-Encoding: chunked, no Content-Length)."""
        url = self.endpoint + request.path
        headers = _headers(request)
        if self.signer is not None:
            headers.update(self.signer.headers(url, request))
        body = request.body
        chunks = (body[i : i + chunk_size] for i in range(0, len(body), chunk_size))
        return self._http.request(request.method, url, content=chunks, headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
