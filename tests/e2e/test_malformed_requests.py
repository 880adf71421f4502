"""No request, however malformed, gets a 5xx or a hang: each gets AWS's error shape.

Bad JSON, wrong content types, unknown or missing targets, non-POST methods, bodies over the limit,
invalid UTF-8 and inputs generated from the service model (mostly wrong, properly signed so they
reach parsing, validation and the handlers) must all be answered within the client timeout with
200 or 4xx, a JSON body that is exactly ``{"__type", "Message"}`` on errors, and an
``x-amzn-RequestId`` header. Throughout, the marker that starts every generated secret value must
never appear in an error message or the server log.
"""

from __future__ import annotations

import json
import secrets
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import botocore.session
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.factories import SecretsManagerFactory
from support.model_inputs import ModelInputs, bodies
from support.names import NameFactory
from support.server import Credentials, ServerProcess
from support.signing import JSON_CONTENT_TYPE, TARGET_PREFIX, RawClient, RawRequest, Signer

MAX_BODY = 1_048_576
SERVICE_MODEL = botocore.session.get_session().get_service_model("secretsmanager")
OPERATIONS = tuple(SERVICE_MODEL.operation_names)
# Drawn more often: the everyday operations, so that generated requests find the pool secrets alive
# (DeleteSecret keeps them marked for deletion until a RestoreSecret comes along).
FREQUENT = (
    "BatchGetSecretValue",
    "CreateSecret",
    "DescribeSecret",
    "GetSecretValue",
    "ListSecretVersionIds",
    "ListSecrets",
    "PutSecretValue",
    "RestoreSecret",
    "TagResource",
    "UpdateSecret",
    "UpdateSecretVersionStage",
)
WEIGHTED_OPERATIONS = OPERATIONS + FREQUENT * 3
# Codes a client may see: the model's errors plus those of the JSON protocol, SigV4 and the edge.
PROTOCOL_ERRORS = frozenset(
    {
        "AccessDeniedException",
        "ExpiredTokenException",
        "IncompleteSignatureException",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
        "RequestEntityTooLargeException",
        "SerializationException",
        "UnknownOperationException",
        "UnrecognizedClientException",
        "ValidationException",
    }
)
KNOWN_ERRORS = PROTOCOL_ERRORS | {shape.name for shape in SERVICE_MODEL.error_shapes}
METHODS = ("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")
CONTENT_TYPES = (
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/x-amz-json-1.0",
    "application/x-amz-json-1.1; charset=latin-1",
    "",
    "*/*",
    "garbage;;;=",
)
ODD_TARGETS = (
    "",
    "secretsmanager.",
    "secretsmanager",
    "secretsmanager.getSecretValue",
    "SecretsManager.GetSecretValue",
    "secretsmanager. GetSecretValue",
    "secretsmanager.NoSuchOperation",
    "secretsmanager.__init__",
    "secretsmanager.get_secret_value",
    "TrentService.NoSuchOperation",
    "AWSSecurityTokenServiceV20110615.GetCallerIdentity",
    "secretsmanager.GetSecretValue.Extra",
    "x" * 8192,
)


# -- assertions ---------------------------------------------------------------------------------


def assert_aws_shaped(response: httpx.Response, marker: str | None = None) -> dict[str, Any]:
    """200 or 4xx, a request id, and a JSON object that on error is exactly {"__type", "Message"}.

    Returns the parsed body ({} for HEAD or an empty 200)."""
    request = response.request
    what = f"{request.method} {request.headers.get('x-amz-target')!r} -> {response.status_code}"
    assert response.status_code == 200 or 400 <= response.status_code < 500, (
        f"{what}: {response.content[:500]!r}"
    )
    assert response.headers.get("x-amzn-requestid"), f"{what}: no x-amzn-RequestId"
    if request.method == "HEAD" or (response.status_code == 200 and not response.content):
        # Operations without output (TagResource, UntagResource) answer with an empty body.
        return {}
    try:
        body = json.loads(response.content)
    except ValueError:
        pytest.fail(f"{what}: body is not JSON: {response.content[:500]!r}")
    assert isinstance(body, dict), f"{what}: {body!r}"
    if response.status_code != 200:
        assert set(body) == {"__type", "Message"}, f"{what}: {body!r}"
        assert isinstance(body["__type"], str) and body["__type"] in KNOWN_ERRORS, f"{what}: {body}"
        assert isinstance(body["Message"], str), f"{what}: {body!r}"
        if marker is not None:
            assert marker not in body["Message"], f"{what}: a secret value is in the message"
    return body


class LogWatch:
    """The server log written since this watch was created (other tests share the server, and
    their failures are theirs)."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.offset = server.log_path.stat().st_size

    def new_text(self) -> str:
        with self.server.log_path.open("rb") as log:
            log.seek(self.offset)
            return log.read().decode(errors="replace")

    def assert_healthy(self, marker: str | None = None) -> None:
        assert self.server.running
        logs = self.new_text()
        assert "Traceback" not in logs, logs[-5000:]
        if marker is not None:
            assert marker not in logs, "a secret value reached the server log"


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def log_watch(server: ServerProcess) -> LogWatch:
    return LogWatch(server)


@pytest.fixture
def raw(server: ServerProcess) -> Iterator[RawClient]:
    with RawClient(server.endpoint, Signer(server.credentials)) as client:
        yield client


def wire(operation: str, params: dict[str, Any]) -> RawRequest:
    return RawRequest.for_operation(operation, params)


# -- the property -------------------------------------------------------------------------------


@st.composite
def signers(draw: st.DrawFn, credentials: Credentials) -> tuple[str, Signer | None]:
    """Mostly the server's own signature; sometimes none, a wrong key, a wrong scope."""
    kind = draw(
        st.sampled_from(
            ["good"] * 16 + ["unsigned", "tampered", "wrong-secret", "unknown-key", "scope"]
        )
    )
    if kind == "tampered":
        return kind, Signer(credentials)
    if kind == "good":
        region = draw(st.sampled_from(["us-east-1"] * 5 + ["eu-west-1"]))
        return kind, Signer(credentials, region=region)
    if kind == "unsigned":
        return kind, None
    if kind == "wrong-secret":
        return kind, Signer(Credentials(credentials.access_key_id, "not-the-secret"))
    if kind == "unknown-key":
        return kind, Signer(Credentials("AKIAUNKNOWNKEY000000", credentials.secret_access_key))
    service = draw(st.sampled_from(["kms", "sts", "secretsmanager "]))
    region = draw(st.sampled_from(["", "us-east-1/x", "zz-nowhere-9"]))
    return kind, Signer(credentials, region=region, service=service)


@st.composite
def raw_requests(draw: st.DrawFn, inputs: ModelInputs) -> RawRequest:
    operation = draw(st.sampled_from(WEIGHTED_OPERATIONS))
    # Half are what an SDK would send, so that the handlers (not just the parser) get work.
    if draw(st.booleans()):
        params = draw(inputs.inputs(operation, valid=True))
        if "SecretString" in params and "SecretBinary" in params:
            # The model allows both; the service (rightly) never does.
            del params[draw(st.sampled_from(["SecretString", "SecretBinary"]))]
        return wire(operation, params)
    params = draw(inputs.inputs(operation))
    body = draw(bodies(params, inputs.prefix))
    target: str | None = TARGET_PREFIX + operation
    content_type: str | None = JSON_CONTENT_TYPE
    method, path = "POST", "/"
    # Usually one thing wrong at the HTTP level at most, so most requests reach the handlers.
    twist = draw(st.sampled_from(["none"] * 14 + ["target", "no-target", "type", "method", "path"]))
    if twist == "target":
        printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
        # HTTP does not allow a header value to start or end with whitespace.
        odd = st.text(printable).map(str.strip)
        target = draw(st.one_of(st.sampled_from(ODD_TARGETS), odd))
    elif twist == "no-target":
        target = None
    elif twist == "type":
        content_type = draw(st.one_of(st.none(), st.sampled_from(CONTENT_TYPES)))
    elif twist == "method":
        method = draw(st.sampled_from(METHODS))
    elif twist == "path":
        path = draw(st.sampled_from(["/x", "//", "/?Action=GetSecretValue", "/health/.."]))
    return RawRequest(body=body, target=target, content_type=content_type, method=method, path=path)


def test_generated_requests_get_aws_errors_never_5xx(
    server: ServerProcess,
    log_watch: LogWatch,
    raw: RawClient,
    sm_factory: SecretsManagerFactory,
    unique_name: NameFactory,
) -> None:
    sm = sm_factory(server=server)
    prefix = unique_name("fuzz")
    marker = f"SENSITIVE{secrets.token_hex(8)}"
    names: list[str] = []
    for i in range(3):
        created = sm.create_secret(Name=f"{prefix}-pool{i}", SecretString=f"{marker}-{i}")
        names += [created["Name"], created["ARN"], created["ARN"][:-7]]
    sm.put_secret_value(SecretId=names[0], SecretString=f"{marker}-second")
    inputs = ModelInputs(SERVICE_MODEL, names=names, prefix=prefix, marker=marker)
    statuses: dict[int, int] = {}

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=raw_requests(inputs), signing=signers(server.credentials))
    def check(request: RawRequest, signing: tuple[str, Signer | None]) -> None:
        kind, signer = signing
        tamper = kind == "tampered"
        response = raw.send(
            request,
            signer=signer,
            signed=signer is not None,
            body_after_signing=request.body + b" " if tamper else None,
        )
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert_aws_shaped(response, marker)
        if kind != "good":
            assert response.status_code != 200, "a badly signed request was served"

    check()
    # Enough requests got through to the handlers for the run to mean something.
    assert statuses.get(200, 0) >= 15, statuses
    log_watch.assert_healthy(marker)


# -- the edges, one by one ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [MAX_BODY + 1, 3 * MAX_BODY])
def test_body_over_the_limit_is_refused(raw: RawClient, log_watch: LogWatch, size: int) -> None:
    body = b'{"SecretId": "' + b"x" * size + b'"}'
    request = RawRequest(body=body, target=TARGET_PREFIX + "DescribeSecret")
    for response in (raw.send(request), raw.stream(request), raw.send(request, signed=False)):
        assert response.status_code in (400, 413)
        error = assert_aws_shaped(response)
        assert error["__type"] in ("RequestEntityTooLargeException", "ValidationException")
    # The connection pool (and the server) still work afterwards.
    ok = raw.send(wire("ListSecrets", {"MaxResults": 1}))
    assert ok.status_code == 200
    log_watch.assert_healthy()


def test_body_at_the_limit_is_parsed(raw: RawClient) -> None:
    padding = MAX_BODY - len(b'{"MaxResults": 1, "x": ""}')
    body = b'{"MaxResults": 1, "x": "' + b"y" * padding + b'"}'
    assert len(body) == MAX_BODY
    response = raw.send(RawRequest(body=body, target=TARGET_PREFIX + "ListSecrets"))
    assert response.status_code == 200, response.content[:300]


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe\xfd",
        b'{"SecretId": "\xff"}',
        b'{"SecretId": "ok\xc0\xaf"}',
        b'{"SecretId": "\xed\xa0\x80"}',  # a surrogate encoded as UTF-8
        b'{"SecretId": "\xe2\x82"}',  # a truncated sequence
        b'{"Sec\x80retId": "x"}',
        b"\xef\xbb\xbf{}",
        '{"SecretId": "x"}'.encode("utf-16"),
        '{"SecretId": "x"}'.encode("utf-32"),
    ],
)
def test_invalid_utf8_bodies(raw: RawClient, body: bytes) -> None:
    response = raw.send(RawRequest(body=body, target=TARGET_PREFIX + "DescribeSecret"))
    assert response.status_code == 400
    assert assert_aws_shaped(response)["__type"] == "SerializationException"


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"SecretId": ',
        b'{"SecretId": "x"',
        b"not json",
        b"{'SecretId': 'x'}",
        b'{"SecretId": "x",}',
        b'{"MaxResults": NaN}',
        b'{"MaxResults": 1e999}',
        b"[" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b"\x00" * 64,
    ],
)
def test_bad_json_bodies(raw: RawClient, body: bytes) -> None:
    response = raw.send(RawRequest(body=body, target=TARGET_PREFIX + "ListSecrets"))
    assert response.status_code == 400
    assert assert_aws_shaped(response)["__type"] == "SerializationException"


@pytest.mark.parametrize("body", [b"[]", b'"x"', b"1", b"true", b"null", b"[{}]", b"-0.0"])
def test_non_object_json_bodies(raw: RawClient, body: bytes) -> None:
    response = raw.send(RawRequest(body=body, target=TARGET_PREFIX + "ListSecrets"))
    # `null` may be read as "no parameters" (like an empty body); everything else is refused.
    assert response.status_code in ((200, 400) if body == b"null" else (400,))
    assert_aws_shaped(response)


@pytest.mark.parametrize("content_type", [None, *CONTENT_TYPES])
def test_content_types(raw: RawClient, content_type: str | None) -> None:
    request = RawRequest(
        body=b'{"MaxResults": 1}', target=TARGET_PREFIX + "ListSecrets", content_type=content_type
    )
    assert_aws_shaped(raw.send(request))
    assert_aws_shaped(raw.send(RawRequest(body=b"a=b&c", content_type=content_type)))


@pytest.mark.parametrize("target", [None, *ODD_TARGETS])
def test_unknown_or_missing_targets(raw: RawClient, target: str | None) -> None:
    response = raw.send(RawRequest(body=b"{}", target=target))
    assert response.status_code == 400
    assert assert_aws_shaped(response)["__type"] == "UnknownOperationException"


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("path", ["/", "/secrets", "/?Action=ListSecrets"])
def test_other_methods(raw: RawClient, method: str, path: str) -> None:
    request = RawRequest(
        body=b"" if method in ("GET", "HEAD") else b"{}",
        target=TARGET_PREFIX + "ListSecrets",
        method=method,
        path=path,
    )
    for signed in (True, False):
        response = raw.send(request, signed=signed)
        assert 400 <= response.status_code < 500
        assert_aws_shaped(response)


def test_unsigned_garbage(raw: RawClient, log_watch: LogWatch) -> None:
    for body in (b"", b"\x00\xff" * 100, secrets.token_bytes(4096), b"{}" * 1000):
        for target in (None, TARGET_PREFIX + "GetSecretValue", "garbage"):
            response = raw.send(RawRequest(body=body, target=target), signed=False)
            assert response.status_code == 400
            assert_aws_shaped(response)
    log_watch.assert_healthy()


def test_broken_http_does_not_hurt_the_server(
    server: ServerProcess, log_watch: LogWatch, raw: RawClient
) -> None:
    """Bytes that are not HTTP never reach the app (uvicorn answers them itself, not in AWS's
    shape); the point here is that they get a 4xx or a closed connection, never a hang, and
    leave the server serving."""
    junk = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
        b"GARBAGE / HTTP/1.1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",  # then hang up
        b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: a\x00b\r\nContent-Length: 0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ]
    for data in junk:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            reply = _read_all(sock)
        if reply:
            status_line = reply.split(b"\r\n", 1)[0]
            assert status_line.startswith(b"HTTP/1.1 4"), reply[:300]
    assert raw.send(wire("ListSecrets", {"MaxResults": 1})).status_code == 200
    log_watch.assert_healthy()


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_known_targets_with_wrong_member_types_reach_validation(raw: RawClient) -> None:
    """Spot checks that the property test's requests really are past authentication."""
    response = raw.send(wire("DescribeSecret", {"SecretId": 5}))
    assert response.status_code == 400
    assert assert_aws_shaped(response)["__type"] == "SerializationException"
    response = raw.send(wire("ListSecrets", {"MaxResults": 1000}))
    assert response.status_code == 400
    assert assert_aws_shaped(response)["__type"] == "ValidationException"
    response = raw.send(wire("ListSecrets", {"MaxResults": 1}))
    assert response.status_code == 200
    assert "SecretList" in assert_aws_shaped(response)


# Characters JSON and the model allow but storage layers may not (PostgreSQL text cannot hold NUL).
ODD_VALUES = ("\x00", "a\x00b", "\U0001f600", "\x01\x7f")


def odd_value_calls(odd: str, name: str, version: str, fresh: NameFactory) -> list[RawRequest]:
    """Requests putting `odd` into every member that is stored or used in a query."""
    long_odd = (odd * 64)[:64]  # as a token / version id: 32-64 characters

    def token() -> str:
        return str(uuid.uuid4())

    def create(**params: Any) -> RawRequest:
        return wire("CreateSecret", {"Name": fresh(), "ClientRequestToken": token(), **params})

    def on_secret(operation: str, **params: Any) -> RawRequest:
        return wire(operation, {"SecretId": name, **params})

    tags = [{"Key": odd, "Value": odd}]
    return [
        create(Description=odd),
        create(Type=odd),
        create(KmsKeyId=odd),
        create(Tags=tags),
        wire(
            "CreateSecret", {"Name": fresh(), "SecretString": "v", "ClientRequestToken": long_odd}
        ),
        on_secret("UpdateSecret", Description=odd, ClientRequestToken=token()),
        on_secret("UpdateSecret", Type=odd, ClientRequestToken=token()),
        on_secret("UpdateSecret", KmsKeyId=odd, ClientRequestToken=token()),
        on_secret("PutSecretValue", SecretString="w", ClientRequestToken=long_odd),
        on_secret(
            "PutSecretValue", SecretString="w", ClientRequestToken=token(), VersionStages=[odd]
        ),
        on_secret("GetSecretValue", VersionId=long_odd),
        on_secret("GetSecretValue", VersionStage=odd),
        on_secret("UpdateSecretVersionStage", VersionStage=odd, MoveToVersionId=version),
        on_secret("UpdateSecretVersionStage", VersionStage="AWSCURRENT", MoveToVersionId=long_odd),
        on_secret("TagResource", Tags=tags),
        on_secret("UntagResource", TagKeys=[odd]),
        on_secret("ListSecretVersionIds", NextToken=odd),
        on_secret("PutResourcePolicy", ResourcePolicy=odd),
        wire("ListSecrets", {"Filters": [{"Key": "description", "Values": [odd]}]}),
        wire("GetRandomPassword", {"ExcludeCharacters": odd}),
    ]


def test_odd_characters_in_stored_and_queried_members(
    raw: RawClient, log_watch: LogWatch, sm_factory: SecretsManagerFactory, unique_name: NameFactory
) -> None:
    """A deterministic companion to the property test for what it found first: characters the
    model allows in members that end up in the database."""
    sm = sm_factory()
    name = unique_name()
    version = sm.create_secret(Name=name, SecretString="v")["VersionId"]
    failures = []
    for odd in ODD_VALUES:
        for request in odd_value_calls(odd, name, version, unique_name):
            response = raw.send(request)
            if response.status_code >= 500:
                failures.append(f"{request.target} {request.body!r} -> {response.status_code}")
            else:
                assert_aws_shaped(response)
    assert not failures, "\n".join(failures)
    log_watch.assert_healthy()


@pytest.mark.parametrize(
    "document",
    [
        "[" * 1100 + "]" * 1100,
        '{"Version": "2012-10-17", "Statement": ' + "[" * 2000 + "]" * 2000 + "}",
        '{"Statement": [{"Effect": "Allow", "Condition": '
        + '{"a":' * 1500
        + "1"
        + "}" * 1500
        + "}]}",
        '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": 1e999}]}',
        '{"Statement": [{"Effect": "\\ud800", "Principal": "*", "Action": "*", "Resource": "*"}]}',
        "1",
        "null",
    ],
    ids=[
        "deep-array",
        "deep-statement",
        "deep-condition",
        "infinity",
        "surrogate",
        "number",
        "null",
    ],
)
def test_policy_documents_of_any_shape(
    raw: RawClient,
    log_watch: LogWatch,
    sm_factory: SecretsManagerFactory,
    unique_name: NameFactory,
    document: str,
) -> None:
    """A resource policy is JSON inside a JSON string: the service parses it a second time, with
    its own limits."""
    name = unique_name()
    sm_factory().create_secret(Name=name, SecretString="v")
    for request in (
        wire("ValidateResourcePolicy", {"ResourcePolicy": document}),
        wire("ValidateResourcePolicy", {"SecretId": name, "ResourcePolicy": document}),
        wire("PutResourcePolicy", {"SecretId": name, "ResourcePolicy": document}),
    ):
        response = raw.send(request)
        assert_aws_shaped(response)
    log_watch.assert_healthy()
