"""SigV4 over the wire: what AWS answers to unsigned, mis-signed, stale and presigned requests."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from unittest import mock

import httpx
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError

from support.server import Credentials, ServerProcess

TARGET = {
    "X-Amz-Target": "secretsmanager.ListSecrets",
    "Content-Type": "application/x-amz-json-1.1",
}


def signed(
    server: ServerProcess,
    creds: Credentials,
    *,
    service: str = "secretsmanager",
    region: str = "us-east-1",
    when: dt.datetime | None = None,
    body: bytes = b"{}",
    token: str | None = None,
) -> tuple[dict[str, str], bytes]:
    request = AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers=dict(TARGET))
    boto_creds = BotoCredentials(creds.access_key_id, creds.secret_access_key, token)
    if when is None:
        SigV4Auth(boto_creds, service, region).add_auth(request)
    else:
        with mock.patch(
            "botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)
        ):
            SigV4Auth(boto_creds, service, region).add_auth(request)
    return dict(request.headers), body


def post(
    server: ServerProcess, headers: dict[str, str], body: bytes, url: str | None = None
) -> httpx.Response:
    return httpx.post(url or server.endpoint + "/", content=body, headers=headers, timeout=30)


def assert_error(response: httpx.Response, code: str, message: str | None = None) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["__type"] == code, body
    if message is not None:
        assert body["Message"] == message
    assert response.headers["x-amzn-requestid"]


def test_valid_signature_accepted(server: ServerProcess) -> None:
    headers, body = signed(server, server.credentials)
    response = post(server, headers, body)
    assert response.status_code == 200, response.text


def test_missing_signature(server: ServerProcess) -> None:
    assert_error(
        post(server, dict(TARGET), b"{}"),
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    )


def test_unknown_access_key(server: ServerProcess) -> None:
    stranger = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    headers, body = signed(server, stranger)
    assert_error(
        post(server, headers, body),
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


def test_wrong_secret(server: ServerProcess) -> None:
    wrong = Credentials(server.credentials.access_key_id, "x" * 40)
    headers, body = signed(server, wrong)
    response = post(server, headers, body)
    assert_error(response, "InvalidSignatureException")
    assert response.json()["Message"].startswith(
        "The request signature we calculated does not match the signature you provided."
    )


def test_tampered_body(server: ServerProcess) -> None:
    headers, _ = signed(server, server.credentials, body=b'{"MaxResults": 1}')
    assert_error(post(server, headers, b'{"MaxResults": 2}'), "InvalidSignatureException")


def test_stale_and_future_dates(server: ServerProcess) -> None:
    now = dt.datetime.now(dt.UTC)
    for skew, fragment in (
        (-dt.timedelta(minutes=6), "Signature expired:"),
        (dt.timedelta(minutes=6), "Signature not yet current:"),
    ):
        headers, body = signed(server, server.credentials, when=now + skew)
        response = post(server, headers, body)
        assert_error(response, "InvalidSignatureException")
        assert response.json()["Message"].startswith(fragment)
    # inside the 5-minute window both ways
    for skew in (-dt.timedelta(minutes=4), dt.timedelta(minutes=4)):
        headers, body = signed(server, server.credentials, when=now + skew)
        assert post(server, headers, body).status_code == 200


def test_wrong_service_in_scope(server: ServerProcess) -> None:
    headers, body = signed(server, server.credentials, service="kms")
    response = post(server, headers, body)
    assert response.status_code == 400
    assert (
        "Credential should be scoped to correct service: 'secretsmanager'"
        in response.json()["Message"]
    )


def test_boto3_sees_auth_errors_as_client_errors(server: ServerProcess, sm_factory: Any) -> None:
    stranger = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    sm = sm_factory(credentials=stranger)
    with pytest.raises(ClientError) as exc:
        sm.list_secrets()
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_presigned_query_string(server: ServerProcess) -> None:
    body = json.dumps({"MaxResults": 1}).encode()
    request = AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers=dict(TARGET))
    creds = server.credentials
    SigV4QueryAuth(
        BotoCredentials(creds.access_key_id, creds.secret_access_key),
        "secretsmanager",
        "us-east-1",
        expires=60,
    ).add_auth(request)
    assert "X-Amz-Signature=" in request.url
    # botocore moves a presigned request's body into the query string and signs an empty body
    body = request.body or b""
    headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
    response = post(server, headers, body, url=request.url)
    assert response.status_code == 200, response.text
    tampered = request.url.replace("X-Amz-Expires=60", "X-Amz-Expires=61")
    assert_error(post(server, headers, body, url=tampered), "InvalidSignatureException")


def test_session_token_is_signed(server: ServerProcess) -> None:
    # The admin key is a long-term key: a session token that does not belong to it is refused
    # with AWS's wording rather than ignored.
    headers, body = signed(server, server.credentials, token="bogus-session-token")
    response = post(server, headers, body)
    assert response.status_code == 400
    assert response.json()["__type"] == "UnrecognizedClientException"
