"""SigV4-signed Secrets Manager requests, prepared once and replayed verbatim.

Signed with botocore's SigV4Auth, exactly as boto3 signs them. The server accepts a signature for
5 minutes either side of its X-Amz-Date, so a prepared request can be sent many times (reads) or
prepared in bulk just before it is sent once (writes).
"""

from __future__ import annotations

import configparser
import http.client
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SERVICE = "secretsmanager"
REGION = "us-east-1"
CONTENT_TYPE = "application/x-amz-json-1.1"
# Operations whose ClientRequestToken is an idempotency token: boto3 fills it in when the caller
# does not, and the server requires it, so Client.call does the same.
IDEMPOTENT_OPERATIONS = frozenset({"CreateSecret", "PutSecretValue", "UpdateSecret"})


INVOCATION_ID_HEADER = "amz-sdk-invocation-id"


def new_token() -> str:
    return str(uuid.uuid4())  # uuid4 draws from os.urandom


@dataclass(frozen=True)
class SignedRequest:
    host: str  # "127.0.0.1:PORT", as signed
    headers: tuple[tuple[str, str], ...]  # everything but Host and Content-Length
    body: bytes
    method: str = "POST"
    path: str = "/"

    def all_headers(self) -> dict[str, str]:
        return {"Host": self.host, **dict(self.headers), "Content-Length": str(len(self.body))}

    def raw(self) -> bytes:
        """The request as it goes on the wire (HTTP/1.1, keep-alive)."""
        head = f"{self.method} {self.path} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in self.all_headers().items()
        )
        return head.encode("latin-1") + b"\r\n" + self.body


def read_credentials(path: Path, profile: str = "default") -> Credentials:
    parser = configparser.ConfigParser()
    if not parser.read(path):
        raise FileNotFoundError(path)
    section = parser[profile]
    return Credentials(section["aws_access_key_id"], section["aws_secret_access_key"])


class Signer:
    def __init__(self, host: str, credentials: Credentials, region: str = REGION) -> None:
        self.host = host
        self._auth = SigV4Auth(credentials, SERVICE, region)

    def sign(
        self, operation: str, params: Mapping[str, Any], *, invocation_id: str | None = None
    ) -> SignedRequest:
        """`invocation_id`: sent (and signed) as boto3 sends it, a fresh one per call, which
        makes two requests signed within the same second (X-Amz-Date has 1 s resolution) with
        the same parameters differ in their signature too."""
        body = json.dumps(params, separators=(",", ":")).encode()
        unsigned = {"Content-Type": CONTENT_TYPE, "X-Amz-Target": f"{SERVICE}.{operation}"}
        if invocation_id is not None:
            unsigned[INVOCATION_ID_HEADER] = invocation_id
            unsigned["amz-sdk-request"] = "attempt=1"
        request = AWSRequest(method="POST", url=f"http://{self.host}/", data=body, headers=unsigned)
        self._auth.add_auth(request)
        headers = tuple((str(k), str(v)) for k, v in request.headers.items())
        return SignedRequest(self.host, headers, body)


def sign_each(
    signer: Signer, calls: Iterable[tuple[str, Mapping[str, Any]]]
) -> Iterator[SignedRequest]:
    """Every call signed on its own, with its own invocation id: no two requests are alike, so
    nothing can be answered from a cache of identical requests (or signatures)."""
    for operation, params in calls:
        yield signer.sign(operation, params, invocation_id=new_token())


def signature(request: SignedRequest) -> str:
    """The Signature= part of the Authorization header."""
    auth = dict(request.headers)["Authorization"]
    return auth.rsplit("Signature=", 1)[1]


class Client:
    """A plain keep-alive HTTP/1.1 connection for set-up calls and sequential timing."""

    def __init__(self, signer: Signer, timeout: float = 30.0) -> None:
        self.signer = signer
        host, port = signer.host.rsplit(":", 1)
        self._conn = http.client.HTTPConnection(host, int(port), timeout=timeout)

    def send(self, request: SignedRequest) -> tuple[int, bytes]:
        try:
            return self._send(request)
        except (ConnectionError, http.client.RemoteDisconnected):
            # The server closes idle keep-alive connections (uvicorn: after 5 s); the request
            # never reached it, so sending it again on a new connection is safe.
            self._conn.close()
            return self._send(request)

    def _send(self, request: SignedRequest) -> tuple[int, bytes]:
        headers = request.all_headers()
        del headers["Host"], headers["Content-Length"]  # http.client adds both
        self._conn.request(request.method, request.path, body=request.body, headers=headers)
        response = self._conn.getresponse()
        return response.status, response.read()

    def call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if operation in IDEMPOTENT_OPERATIONS and "ClientRequestToken" not in params:
            params = {**params, "ClientRequestToken": new_token()}
        status, body = self.send(self.signer.sign(operation, params))
        if status != 200:
            raise RuntimeError(f"{operation} failed with HTTP {status}: {body[:500]!r}")
        result: dict[str, Any] = json.loads(body) if body else {}
        return result

    def close(self) -> None:
        self._conn.close()
