"""Every change to a signed part of a request is refused; every botocore signature is accepted."""

from __future__ import annotations

import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from unittest import mock
from urllib.parse import quote

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import normalize_url_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretsd.auth.sigv4 import (
    HttpRequest,
    SigningKeyCache,
    check_credential,
    invalid_security_token_error,
    parse_credential,
    unknown_access_key_error,
    verify,
)
from secretsd.errors import ServiceError
from support.sigv4_requests import to_http_request

SERVICE = "secretsmanager"
SIGNED_AT = datetime(2024, 5, 17, 23, 59, 30)  # near midnight: a day's shift changes the scope
NOW = SIGNED_AT.replace(tzinfo=UTC) + timedelta(seconds=1)
TOKEN = "IQoJb3JpZ2luX2VjEH4aCXVzLXdlc3QtMiJHMEUCIQCE6pS8KHbJj+GSkIFfjG7/94zx5V=="


@dataclass(frozen=True)
class Key:
    secret: str
    token: str | None


# Access key id -> what the server knows. ASIA... is a temporary key that needs its token.
KEYS = {
    "AKIDEXAMPLE": Key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None),
    "AKIDOTHER": Key("another/secret+key", None),
    "ASIATEMPORARY": Key("temporary-secret", TOKEN),
}
AUTH_CODES = {
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
    "InvalidSignatureException",
    "UnrecognizedClientException",
}


def authenticate(req: HttpRequest, cache: SigningKeyCache, *, check_token: bool = True) -> None:
    """The server's sequence; `check_token=False` leaves the token to the signature alone."""
    cred = parse_credential(req)
    check_credential(cred, NOW, service=SERVICE)
    key = KEYS.get(cred.access_key_id)
    if key is None:
        raise unknown_access_key_error()
    if check_token and cred.security_token != key.token:
        raise invalid_security_token_error()
    signing_key = cache.get(cred.access_key_id, key.secret, cred.date, cred.region, cred.service)
    verify(req, cred, signing_key, NOW, service=SERVICE)


def sign(
    *,
    access_key: str = "AKIDEXAMPLE",
    region: str = "us-east-1",
    path: str = "/",
    method: str = "POST",
    body: bytes = b'{"SecretId": "prod/db-password"}',
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    presign_expires: int | None = None,
) -> HttpRequest:
    key = KEYS[access_key]
    all_headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "secretsmanager.GetSecretValue",
        "User-Agent": "Boto3/1.44.8 Botocore/1.44.8",
        **(headers or {}),
    }
    aws_request = AWSRequest(
        method=method,
        url=f"https://secretsmanager.{region}.amazonaws.com{path}",
        data=body,
        headers=all_headers,
        params=dict(params or {}),
    )
    credentials = Credentials(access_key, key.secret, key.token)
    signer: SigV4Auth
    if presign_expires is None:
        signer = SigV4Auth(credentials, SERVICE, region)
    else:
        signer = SigV4QueryAuth(credentials, SERVICE, region, expires=presign_expires)
    with mock.patch("botocore.auth.get_current_datetime", return_value=SIGNED_AT):
        signer.add_auth(aws_request)
    return to_http_request(aws_request)


# --- mutations ---------------------------------------------------------------------------------

Mutant = tuple[str, HttpRequest]


def _with(req: HttpRequest, **changes: object) -> HttpRequest:
    return replace(req, **changes)  # type: ignore[arg-type]


def _set_header(req: HttpRequest, name: bytes, value: bytes | None) -> HttpRequest:
    """Replace the first `name` header (None removes every one)."""
    headers: list[tuple[bytes, bytes]] = []
    done = False
    for n, v in req.headers:
        if n == name:
            if value is None or done:
                continue
            headers.append((n, value))
            done = True
        else:
            headers.append((n, v))
    if value is not None and not done:
        headers.append((name, value))
    return _with(req, headers=headers)


def _header(req: HttpRequest, name: bytes) -> bytes | None:
    return next((v for n, v in req.headers if n == name), None)


def _other_hex(char: str) -> str:
    return "0" if char != "0" else "1"


def _signature_mutants(signature: str) -> Iterator[str]:
    for i, char in enumerate(signature):
        yield signature[:i] + _other_hex(char) + signature[i + 1 :]
    yield signature.upper()
    yield signature[:-1]
    yield signature + "0"
    yield ""


def _date_mutants(timestamp: str) -> Iterator[str]:
    moment = datetime.strptime(timestamp, "%Y%m%dT%H%M%SZ")
    for delta in (
        timedelta(seconds=1),
        timedelta(seconds=-1),
        timedelta(days=1),
        timedelta(hours=-1),
    ):
        yield (moment + delta).strftime("%Y%m%dT%H%M%SZ")
    yield timestamp.replace("T", "t")


def _scope_mutants(credential: str) -> Iterator[tuple[str, str]]:
    key_id, date, region, service, terminator = credential.split("/")

    def scope(*parts: str) -> str:
        return "/".join(parts)

    yield "scope-date", scope(key_id, "20240516", region, service, terminator)
    yield "scope-date", scope(key_id, "20240518", region, service, terminator)
    for other in ("us-west-2", "eu-central-1", region.upper()):
        yield "scope-region", scope(key_id, date, other, service, terminator)
    for other in ("kms", "SecretsManager", service + "x"):
        yield "scope-service", scope(key_id, date, region, other, terminator)
    yield "scope-terminator", scope(key_id, date, region, service, "aws4_requesx")
    for other in ("AKIDOTHER", "AKIAUNKNOWN", key_id.lower(), "ASIATEMPORARY", "AKIDEXAMPLE"):
        if other != key_id:
            yield "access-key-id", scope(other, date, region, service, terminator)


def _header_auth_mutants(req: HttpRequest) -> Iterator[Mutant]:
    authorization = _header(req, b"authorization")
    assert authorization is not None
    algorithm, rest = authorization.decode().split(" ", 1)
    fields = dict(part.split("=", 1) for part in rest.split(", "))

    def rebuilt(**changes: str) -> HttpRequest:
        merged = {**fields, **changes}
        value = f"{algorithm} " + ", ".join(f"{k}={v}" for k, v in merged.items())
        return _set_header(req, b"authorization", value.encode())

    for label, credential in _scope_mutants(fields["Credential"]):
        yield label, rebuilt(Credential=credential)
    for signature in _signature_mutants(fields["Signature"]):
        yield "signature", rebuilt(Signature=signature)
    signed = fields["SignedHeaders"].split(";")
    for name in signed:
        if name != "host":
            yield "signed-headers", rebuilt(SignedHeaders=";".join(n for n in signed if n != name))
    yield "signed-headers", rebuilt(SignedHeaders=";".join(sorted([*signed, "user-agent"])))
    yield (
        "algorithm",
        _set_header(
            req, b"authorization", authorization.replace(b"AWS4-HMAC-SHA256", b"AWS4-HMAC-SHA512")
        ),
    )
    yield "authorization", _set_header(req, b"authorization", None)
    timestamp = _header(req, b"x-amz-date")
    assert timestamp is not None
    for other in _date_mutants(timestamp.decode()):
        yield "x-amz-date", _set_header(req, b"x-amz-date", other.encode())


def _query_params(req: HttpRequest) -> list[tuple[str, str]]:
    return [
        (key, value)
        for part in req.query_string.decode().split("&")
        if part
        for key, _, value in [part.partition("=")]
    ]


def _with_query(req: HttpRequest, params: list[tuple[str, str]]) -> HttpRequest:
    return _with(req, query_string="&".join(f"{k}={v}" for k, v in params).encode())


def _presigned_mutants(req: HttpRequest) -> Iterator[Mutant]:
    params = _query_params(req)

    def changed(name: str, value: str | None) -> HttpRequest:
        out = [(k, v) for k, v in params if k != name]
        if value is not None:
            out.append((name, value))
        return _with_query(req, out)

    values = dict(params)
    for label, credential in _scope_mutants(values["X-Amz-Credential"].replace("%2F", "/")):
        yield label, changed("X-Amz-Credential", quote(credential, safe=""))
    for signature in _signature_mutants(values["X-Amz-Signature"]):
        yield "signature", changed("X-Amz-Signature", signature)
    for other in _date_mutants(values["X-Amz-Date"]):
        yield "x-amz-date", changed("X-Amz-Date", other)
    for expires in ("59", "61", "604800"):
        yield "x-amz-expires", changed("X-Amz-Expires", expires)
    yield "x-amz-expires", changed("X-Amz-Expires", None)
    yield "signed-headers", changed("X-Amz-SignedHeaders", "host%3Buser-agent")
    yield "algorithm", changed("X-Amz-Algorithm", "AWS4-HMAC-SHA512")
    for name in ("X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders"):
        yield "missing-" + name, changed(name, None)


def _token_mutants(req: HttpRequest) -> Iterator[Mutant]:
    if _header(req, b"x-amz-security-token") is not None:
        yield "session-token", _set_header(req, b"x-amz-security-token", TOKEN.encode() + b"x")
        yield "session-token", _set_header(req, b"x-amz-security-token", None)
        return
    params = _query_params(req)
    if any(k == "X-Amz-Security-Token" for k, _ in params):
        swapped = [(k, v + "x" if k == "X-Amz-Security-Token" else v) for k, v in params]
        yield "session-token", _with_query(req, swapped)
        yield (
            "session-token",
            _with_query(req, [p for p in params if p[0] != "X-Amz-Security-Token"]),
        )
    else:
        yield "session-token", _set_header(req, b"x-amz-security-token", TOKEN.encode())


def mutants(req: HttpRequest) -> Iterator[Mutant]:
    """Requests that differ from `req` in a part its signature covers."""
    for method in ("GET", "PUT", "DELETE", "PATCH", "HEAD", req.method.lower()):
        if method != req.method:
            yield "method", _with(req, method=method)
    for path in (req.raw_path + b"x", b"/z" + req.raw_path, b"/other/path", b"/"):
        # Paths that normalise alike (botocore's rules) are the same request, not a mutant.
        if normalize_url_path(path.decode()) != normalize_url_path(req.raw_path.decode()):
            yield "path", _with(req, raw_path=path)

    params = _query_params(req)
    yield "query", _with_query(req, [*params, ("extra", "1")])
    for i, (key, value) in enumerate(params):
        if key in ("X-Amz-Signature", "X-Amz-Algorithm"):
            continue  # covered by _presigned_mutants
        yield "query", _with_query(req, [*params[:i], (key, value + "x"), *params[i + 1 :]])
        yield "query", _with_query(req, [*params[:i], *params[i + 1 :]])
        yield "query", _with_query(req, [*params, (key, value + "dup")])

    cred = parse_credential(req)
    for name in cred.signed_headers:
        if name == "x-amz-date":
            continue  # date mutants keep the format valid, see _header_auth_mutants
        current = _header(req, name.encode())
        assert current is not None
        yield "header:" + name, _set_header(req, name.encode(), current + b"x")
        yield "header:" + name, _set_header(req, name.encode(), b"other")
        yield "header:" + name, _set_header(req, name.encode(), None)
        yield "header:" + name, _with(req, headers=[*req.headers, (name.encode(), b"dup")])

    body = req.body
    yield "body", _with(req, body=body + b" ")
    yield "body", _with(req, body=b"{" + body)
    yield "body", _with(req, body=b'{"SecretId": "something-else"}')
    if body:
        yield "body", _with(req, body=b"")
        yield "body", _with(req, body=body[:-1])
        positions = sorted({*range(min(16, len(body))), *range(max(0, len(body) - 16), len(body))})
        for i in positions:
            yield "body", _with(req, body=body[:i] + bytes([body[i] ^ 1]) + body[i + 1 :])

    if cred.presigned:
        yield from _presigned_mutants(req)
    else:
        yield from _header_auth_mutants(req)
    yield from _token_mutants(req)


def scenarios() -> list[HttpRequest]:
    return [
        sign(),
        sign(region="eu-west-1", body=b'{"Name": "caf\xc3\xa9", "SecretString": "p\\u00e4ss"}'),
        sign(access_key="ASIATEMPORARY"),
        sign(path="/a%20b/c%2Fd", params={"q": "1 2", "r": "~*"}),
        sign(headers={"X-Custom": "  spaced   out  ", "X-Other": "v"}),
        sign(body=b"", method="GET"),
        sign(body=b"x" * 1024),
        sign(access_key="AKIDOTHER", region="ap-southeast-2", params={"\u00fc": "\u00df"}),
        sign(method="GET", body=b"", presign_expires=60),
        sign(method="GET", body=b"", presign_expires=60, access_key="ASIATEMPORARY"),
        sign(method="GET", body=b"", presign_expires=60, params={"Action": "List", "a b": "c"}),
        sign(method="GET", body=b"", presign_expires=60, path="/x/y"),
    ]


def test_every_enumerated_mutant_is_refused() -> None:
    cache = SigningKeyCache()
    count = 0
    by_kind: dict[str, int] = {}
    for original in scenarios():
        authenticate(original, cache)
        for kind, mutant in mutants(original):
            assert mutant != original, kind
            with pytest.raises(ServiceError) as info:
                authenticate(mutant, cache)
            assert info.value.code in AUTH_CODES, (kind, info.value)
            assert info.value.status == 400
            if kind == "session-token" and parse_credential(original).security_token:
                # A signed token is bound by the signature itself, not only by the key lookup.
                with pytest.raises(ServiceError):
                    authenticate(mutant, cache, check_token=False)
            count += 1
            by_kind[kind.split(":")[0]] = by_kind.get(kind.split(":")[0], 0) + 1
    assert count >= 1000, count
    for kind in (
        "method",
        "path",
        "query",
        "header",
        "body",
        "x-amz-date",
        "scope-date",
        "scope-region",
        "scope-service",
        "access-key-id",
        "signature",
        "session-token",
    ):
        assert by_kind.get(kind, 0) > 0, kind


def test_unsigned_parts_may_change() -> None:
    # The control for the test above: what the signature does not cover is not refused.
    cache = SigningKeyCache()
    req = sign()
    authenticate(_set_header(req, b"user-agent", b"something else"), cache)
    authenticate(_with(req, headers=[*req.headers, (b"x-unsigned", b"1")]), cache)
    authenticate(_with(req, raw_path=b"/./"), cache)  # normalises to the same path


# --- hypothesis: generated requests round-trip, and their mutants are refused ----------------

segments = st.one_of(
    st.text(min_size=1, max_size=12),
    st.sampled_from([".", "..", ""]),
)
paths = st.lists(segments, max_size=5).map(
    lambda parts: "/" + "/".join(quote(p, safe="") if p not in (".", "..") else p for p in parts)
)
query_params = st.dictionaries(
    # Names of the SigV4 query parameters themselves would make another (broken) request.
    st.text(max_size=10).filter(lambda key: not key.lower().startswith("x-amz-")),
    st.text(max_size=15),
    max_size=5,
)
header_values = st.text(
    alphabet=st.characters(codec="latin-1", exclude_categories=["Cc"]), max_size=40
)
bodies = st.binary(max_size=2048)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=bodies,
    path=paths,
    params=query_params,
    custom=header_values,
    presign=st.sampled_from([None, 60, 3600]),
    access_key=st.sampled_from(sorted(KEYS)),
    region=st.sampled_from(["us-east-1", "eu-west-1", "sa-east-1"]),
    data=st.data(),
)
def test_generated_requests_round_trip_and_resist_mutation(
    body: bytes,
    path: str,
    params: dict[str, str],
    custom: str,
    presign: int | None,
    access_key: str,
    region: str,
    data: st.DataObject,
) -> None:
    req = sign(
        access_key=access_key,
        region=region,
        path=path,
        body=b"" if presign else body,
        method="GET" if presign else "POST",
        headers={"X-Custom": custom},
        params=params,
        presign_expires=presign,
    )
    cache = SigningKeyCache()
    authenticate(req, cache)
    candidates = list(mutants(req))
    kind, mutant = data.draw(st.sampled_from(candidates), label="mutant")
    with pytest.raises(ServiceError) as info:
        authenticate(mutant, cache)
    assert info.value.code in AUTH_CODES, kind


@settings(max_examples=100, deadline=None)
@given(query=st.text(alphabet=string.ascii_letters + string.digits + "%+=&~-._ /:?*'", max_size=60))
def test_query_written_by_hand_round_trips(query: str) -> None:
    # botocore signs a hand-written query as written; the verifier must agree.
    encoded = quote(query, safe="%+=&~-._/:*'")
    authenticate(sign(path="/?" + encoded if encoded else "/"), SigningKeyCache())


# --- hypothesis: arbitrary input only ever yields AWS errors ---------------------------------

header_names = st.sampled_from(
    [b"authorization", b"x-amz-date", b"date", b"x-amz-security-token", b"host", b"x-other"]
)
auth_like = st.one_of(
    st.binary(max_size=80),
    st.builds(
        lambda cred, signed, sig, sep: (
            f"AWS4-HMAC-SHA256 Credential={cred}{sep}SignedHeaders={signed}{sep}Signature={sig}"
        ).encode(),
        st.text(max_size=60),
        st.text(max_size=30),
        st.text(max_size=70),
        st.sampled_from([", ", ",", " ", ",,", ""]),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    headers=st.lists(
        st.tuples(header_names, st.one_of(auth_like, st.binary(max_size=30))), max_size=6
    ),
    query=st.one_of(
        st.binary(max_size=120),
        st.lists(
            st.tuples(
                st.sampled_from(
                    [
                        "X-Amz-Algorithm",
                        "X-Amz-Credential",
                        "X-Amz-Date",
                        "X-Amz-Expires",
                        "X-Amz-SignedHeaders",
                        "X-Amz-Signature",
                        "X-Amz-Security-Token",
                    ]
                ),
                st.one_of(st.just("AWS4-HMAC-SHA256"), st.text(max_size=20)),
            ),
            max_size=8,
        ).map(lambda ps: "&".join(f"{k}={quote(v)}" for k, v in ps).encode()),
    ),
    raw_path=st.binary(max_size=30),
    body=st.binary(max_size=30),
)
def test_arbitrary_input_raises_only_service_errors(
    headers: list[tuple[bytes, bytes]], query: bytes, raw_path: bytes, body: bytes
) -> None:
    req = HttpRequest("POST", raw_path, query, headers, body)
    try:
        cred = parse_credential(req)
        check_credential(cred, NOW, service=SERVICE)
        verify(req, cred, b"k" * 32, NOW, service=SERVICE)
    except ServiceError as error:
        assert error.code in AUTH_CODES | {"ExpiredTokenException"}
        assert error.status == 400
    else:
        pytest.fail("a request signed with no real key was accepted")
