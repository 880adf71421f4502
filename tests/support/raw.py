"""Signed raw JSON 1.1 calls, for checking exactly what goes over the wire."""

from __future__ import annotations

import json
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from support.server import ServerProcess


class RawClient:
    def __init__(self, server: ServerProcess, region: str = "us-east-1") -> None:
        self.server = server
        self.region = region
        self._http = httpx.Client(timeout=30)

    def call(
        self, operation: str, params: dict[str, Any] | None = None, *, body: bytes | None = None
    ) -> httpx.Response:
        payload = body if body is not None else json.dumps(params or {}).encode()
        request = AWSRequest(
            method="POST",
            url=self.server.endpoint + "/",
            data=payload,
            headers={
                "X-Amz-Target": f"secretsmanager.{operation}",
                "Content-Type": "application/x-amz-json-1.1",
            },
        )
        creds = self.server.credentials
        SigV4Auth(
            BotoCredentials(creds.access_key_id, creds.secret_access_key),
            "secretsmanager",
            self.region,
        ).add_auth(request)
        return self._http.post(
            self.server.endpoint + "/", content=payload, headers=dict(request.headers)
        )

    def close(self) -> None:
        self._http.close()
