"""botocore requests as the server's SigV4 verifier sees them (what an ASGI server hands over)."""

from __future__ import annotations

from urllib.parse import urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSRequest

from secretsd.auth.sigv4 import HttpRequest


def to_http_request(aws_request: AWSRequest) -> HttpRequest:
    return from_prepared(aws_request.prepare())


def from_prepared(prepared: AWSPreparedRequest) -> HttpRequest:
    parts = urlsplit(prepared.url)
    headers = [
        (
            name.lower().encode("latin-1"),
            value if isinstance(value, bytes) else value.encode("latin-1"),
        )
        for name, value in prepared.headers.items()
    ]
    if not any(name == b"host" for name, _ in headers):
        headers.append((b"host", parts.netloc.encode("ascii")))
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return HttpRequest(
        method=prepared.method,
        raw_path=(parts.path or "/").encode(),
        query_string=parts.query.encode(),
        headers=headers,
        body=body,
    )
