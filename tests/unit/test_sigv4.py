"""SigV4 verification: real botocore signatures, AWS's test-suite vectors, and AWS's exact errors."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from unittest import mock

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse
from botocore.credentials import Credentials

from secretsd.auth.sigv4 import (
    MAX_PRESIGN_EXPIRES,
    Credential,
    HttpRequest,
    SigningKeyCache,
    check_credential,
    derive_signing_key,
    expired_security_token_error,
    invalid_security_token_error,
    parse_credential,
    unknown_access_key_error,
    verify,
)
from secretsd.errors import ServiceError
from support.sigv4_requests import from_prepared, to_http_request

SERVICE = "secretsmanager"
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SIGNED_AT = datetime(2024, 5, 17, 12, 34, 56)  # naive UTC, as botocore's clock returns it
NOW = SIGNED_AT.replace(tzinfo=UTC)
BOTO_UA = "Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux#6.1 lang/python#3.11.7 Botocore/1.44.8"

MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


# --- helpers -----------------------------------------------------------------------------------


def sign(
    *,
    region: str = "us-east-1",
    url: str | None = None,
    method: str = "POST",
    body: bytes = b'{"SecretId": "MySecret"}',
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    token: str | None = None,
    secret: str = SECRET_KEY,
    access_key: str = ACCESS_KEY,
    service: str = SERVICE,
    presign_expires: int | None = None,
    at: datetime = SIGNED_AT,
) -> HttpRequest:
    """A request signed by botocore exactly as boto3 would sign it (presigned if expires given)."""
    all_headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "secretsmanager.GetSecretValue",
        "User-Agent": BOTO_UA,
    }
    all_headers.update(headers or {})
    aws_request = AWSRequest(
        method=method,
        url=url or f"https://secretsmanager.{region}.amazonaws.com/",
        data=body,
        headers=all_headers,
        params=dict(params or {}),
    )
    credentials = Credentials(access_key, secret, token)
    signer: SigV4Auth
    if presign_expires is None:
        signer = SigV4Auth(credentials, service, region)
    else:
        signer = SigV4QueryAuth(credentials, service, region, expires=presign_expires)
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        signer.add_auth(aws_request)
    return to_http_request(aws_request)


def authenticate(
    req: HttpRequest,
    now: datetime = NOW,
    *,
    service: str = SERVICE,
    region: str | None = None,
    secret: str = SECRET_KEY,
) -> Credential:
    """The server's sequence: parse, pre-lookup checks, key lookup, verify."""
    cred = parse_credential(req)
    check_credential(cred, now, service=service, region=region)
    if cred.access_key_id != ACCESS_KEY:
        raise unknown_access_key_error()
    key = derive_signing_key(secret, cred.date, cred.region, cred.service)
    verify(req, cred, key, now, service=service, region=region)
    return cred


def refused(req: HttpRequest, now: datetime = NOW, **kwargs: object) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        authenticate(req, now, **kwargs)  # type: ignore[arg-type]
    return info.value


def with_headers(req: HttpRequest, **changes: str | None) -> HttpRequest:
    """`req` with headers replaced (None removes); names use '_' for '-'."""
    names = {name.replace("_", "-").encode(): value for name, value in changes.items()}
    headers = [(n, v) for n, v in req.headers if n not in names]
    headers += [(n, v.encode("latin-1")) for n, v in names.items() if v is not None]
    return HttpRequest(req.method, req.raw_path, req.query_string, headers, req.body)


def header(req: HttpRequest, name: str) -> str:
    return next(v.decode("latin-1") for n, v in req.headers if n == name.encode())


def raw(
    method: str = "POST",
    path: bytes = b"/",
    query: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
) -> HttpRequest:
    return HttpRequest(
        method, path, query, [(n.encode(), v.encode("latin-1")) for n, v in headers], body
    )


def assert_error(error: ServiceError, code: str, message: str) -> None:
    assert (error.code, error.message, error.status) == (code, message, 400)


# --- botocore-signed requests are accepted ---------------------------------------------------


@pytest.mark.parametrize(
    "region", ["us-east-1", "eu-west-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1"]
)
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        json.dumps({"SecretId": "prod/db", "VersionStage": "AWSCURRENT"}).encode(),
        json.dumps({"Name": "caf\u00e9 \u263a", "SecretString": 'p\u00e4ss\n"w\u00f6rd"'}).encode(),
        json.dumps({"SecretString": "x" * 65536}).encode(),
    ],
    ids=["empty", "empty-object", "get", "unicode", "64k"],
)
def test_botocore_signed_requests_verify(region: str, body: bytes) -> None:
    cred = authenticate(sign(region=region, body=body), region=region)
    assert (cred.access_key_id, cred.region, cred.service) == (ACCESS_KEY, region, SERVICE)
    assert cred.date == "20240517" and cred.amz_date == NOW and not cred.presigned


def test_session_token_is_parsed_and_signed() -> None:
    token = "FwoGZXIvYXdzEBYaDH+/tok=="
    req = sign(token=token)
    assert "x-amz-security-token" in parse_credential(req).signed_headers
    assert authenticate(req).security_token == token


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/a/b/c",
        "/a%20b/c%2Fd/%E2%98%BA",
        "/a/./b/../c",
        "//double//slash/",
        "/trailing/",
        "/~user/x-y_z.w",
        "/%25literal-percent",
    ],
)
def test_paths_verify(path: str) -> None:
    req = sign(url=f"https://secretsmanager.us-east-1.amazonaws.com{path}")
    assert req.raw_path == path.encode()
    authenticate(req)


@pytest.mark.parametrize(
    "params",
    [
        {"a": "1", "b": "2"},
        {"k ey": "v+a/l~ue*", "\u00fc": "\u00df", "empty": ""},
        {"Z": "z", "a": "A", "_": "-", "~": "."},
        {"sym": "!'()*&=;:@,$[]#?%"},
    ],
)
def test_query_params_with_odd_characters_verify(params: dict[str, str]) -> None:
    # botocore sends params form-encoded ('+' for space) but signs them %20-encoded.
    authenticate(sign(params=params))


@pytest.mark.parametrize(
    "query",
    ["b=2&a=1", "a=x+y", "a=%2F%2B&a=%2a", "flag&x=", "a=1&&b=2", "a=%E2%98%BA&b=~"],
)
def test_query_written_into_the_url_verifies(query: str) -> None:
    # Here botocore signs the query exactly as written in the URL, not re-encoded.
    authenticate(sign(url=f"https://secretsmanager.us-east-1.amazonaws.com/?{query}"))


def test_header_values_are_trimmed_and_collapsed() -> None:
    req = sign(headers={"X-Custom": "  a   b \t c  "})
    assert "x-custom" in parse_credential(req).signed_headers
    authenticate(with_headers(req, x_custom="a b c"))


def test_non_ascii_latin1_header_value_verifies() -> None:
    authenticate(sign(headers={"X-Note": "caf\u00e9"}))


def test_date_header_instead_of_x_amz_date() -> None:
    # botocore signs with the Date header (RFC 1123, "-0000") when the request already has one.
    req = sign(headers={"Date": "Thu, 01 Jan 2015 00:00:00 GMT"})
    assert b"x-amz-date" not in {name for name, _ in req.headers}
    assert header(req, "date") == "Fri, 17 May 2024 12:34:56 -0000"
    cred = authenticate(req)
    assert cred.amz_date == NOW and cred.timestamp == "20240517T123456Z"


def test_content_sha256_header_with_the_real_hash_verifies() -> None:
    body = b'{"SecretId": "a"}'
    authenticate(
        sign(body=body, headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    )


def test_content_sha256_header_cannot_stand_in_for_the_body() -> None:
    error = refused(sign(headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}))
    assert error.code == "InvalidSignatureException" and error.message.startswith(MISMATCH)


@pytest.mark.parametrize("endpoint", [None, "http://127.0.0.1:4566", "https://localhost:8443/"])
@pytest.mark.parametrize("token", [None, "session-token/+="])
def test_a_real_boto3_client_request_verifies(endpoint: str | None, token: str | None) -> None:
    seen: list[Credential] = []

    def capture(request: AWSPreparedRequest, **_: object) -> AWSResponse:
        now = datetime.now(UTC)
        seen.append(authenticate(from_prepared(request), now, region="eu-central-1"))
        return AWSResponse(request.url, 200, {}, mock.Mock(stream=lambda: iter([b"{}"])))

    client = boto3.session.Session().client(
        "secretsmanager",
        region_name="eu-central-1",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=token,
    )
    client.meta.events.register("before-send.secrets-manager", capture)
    client.get_secret_value(SecretId="prod/db \u263a")
    client.create_secret(Name="n", SecretString='{"k": "v\u00e9"}', ClientRequestToken="t" * 32)
    assert len(seen) == 2 and all(cred.security_token == token for cred in seen)


# --- presigned URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize("expires", [1, 60, 3600, MAX_PRESIGN_EXPIRES])
@pytest.mark.parametrize("token", [None, "tok/en+=="])
def test_presigned_urls_verify(expires: int, token: str | None) -> None:
    req = sign(method="GET", body=b"", presign_expires=expires, token=token, params={"x": "1 2"})
    cred = authenticate(req)
    assert cred.presigned and cred.expires == expires and cred.security_token == token
    assert "host" in cred.signed_headers
    authenticate(req, NOW + timedelta(seconds=expires))
    error = refused(req, NOW + timedelta(seconds=expires + 1))
    window = f"{expires // 60} min" if expires % 60 == 0 else f"{expires} sec"
    late = NOW + timedelta(seconds=expires + 1)
    assert_error(
        error,
        "InvalidSignatureException",
        f"Signature expired: 20240517T123456Z is now earlier than "
        f"{(late - timedelta(seconds=expires)).strftime('%Y%m%dT%H%M%SZ')} "
        f"({late.strftime('%Y%m%dT%H%M%SZ')} - {window}.)",
    )


def test_presigned_url_may_be_five_minutes_early_only() -> None:
    req = sign(method="GET", body=b"", presign_expires=3600)
    authenticate(req, NOW - timedelta(minutes=5))
    assert refused(req, NOW - timedelta(minutes=5, seconds=1)).message.startswith(
        "Signature not yet current: "
    )


def test_presigned_url_without_expires_gets_the_clock_skew_window() -> None:
    req = sign(method="GET", body=b"", presign_expires=3600)
    query = b"&".join(p for p in req.query_string.split(b"&") if not p.startswith(b"X-Amz-Expires"))
    stripped = HttpRequest(req.method, req.raw_path, query, req.headers, req.body)
    cred = parse_credential(stripped)
    assert cred.expires is None
    check_credential(cred, NOW + timedelta(minutes=5), service=SERVICE)
    with pytest.raises(ServiceError, match="- 5 min"):
        check_credential(cred, NOW + timedelta(minutes=5, seconds=1), service=SERVICE)


def test_presigned_url_body_is_bound() -> None:
    req = sign(method="GET", body=b"", presign_expires=60)
    tampered = HttpRequest(req.method, req.raw_path, req.query_string, req.headers, b"{}")
    assert refused(tampered).code == "InvalidSignatureException"


# --- AWS SigV4 test suite ----------------------------------------------------------------------

# From https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html (2015 suite):
# key AKIDEXAMPLE, region us-east-1, service "service", 20150830T123600Z. (name, request, sig)
SUITE_2015 = [
    ("get-vanilla", "GET / HTTP/1.1", [], "host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("get-vanilla-query-order-key-case", "GET /?Param2=value2&Param1=value1 HTTP/1.1", [], "host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    ("get-vanilla-query-order-value", "GET /?Param1=value2&Param1=value1 HTTP/1.1", [], "host;x-amz-date", "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"),
    ("get-vanilla-query-order-key", "GET /?Param1=value2&Param1=Value1 HTTP/1.1", [], "host;x-amz-date", "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"),
    ("get-vanilla-query-unreserved", "GET /?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz HTTP/1.1", [], "host;x-amz-date", "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
    ("get-unreserved", "GET /-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz HTTP/1.1", [], "host;x-amz-date", "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
    ("get-header-value-trim", "GET / HTTP/1.1", [("my-header1", " value1"), ("my-header2", ' "a   b   c"')], "host;my-header1;my-header2;x-amz-date", "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
    ("get-header-value-order", "GET / HTTP/1.1", [("my-header1", "value4"), ("my-header1", "value1"), ("my-header1", "value3"), ("my-header1", "value2")], "host;my-header1;x-amz-date", "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"),
    ("get-header-key-duplicate", "GET / HTTP/1.1", [("my-header1", "value2"), ("my-header1", "value2"), ("my-header1", "value1")], "host;my-header1;x-amz-date", "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
    ("post-header-value-case", "POST / HTTP/1.1", [("my-header1", "VALUE1")], "host;my-header1;x-amz-date", "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"),
    ("post-header-key-sort", "POST / HTTP/1.1", [("my-header1", "value1")], "host;my-header1;x-amz-date", "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"),
    ("post-vanilla", "POST / HTTP/1.1", [], "host;x-amz-date", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ("post-vanilla-query", "POST /?Param1=value1 HTTP/1.1", [], "host;x-amz-date", "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"),
    ("post-sts-header-before", "POST / HTTP/1.1", [("x-amz-security-token", "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==")], "host;x-amz-date;x-amz-security-token", "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
    ("post-sts-header-after", "POST / HTTP/1.1", [("x-amz-security-token", "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==")], "host;x-amz-date", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ("normalize-path/get-relative", "GET /example/.. HTTP/1.1", [], "host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("normalize-path/get-relative-relative", "GET /example1/example2/../.. HTTP/1.1", [], "host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("normalize-path/get-slash", "GET // HTTP/1.1", [], "host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("normalize-path/get-slash-dot-slash", "GET /./ HTTP/1.1", [], "host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("normalize-path/get-slash-pointless-dot", "GET /./example HTTP/1.1", [], "host;x-amz-date", "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"),
    ("normalize-path/get-slashes", "GET //example// HTTP/1.1", [], "host;x-amz-date", "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"),
    ("normalize-path/get-space", "GET /example space/ HTTP/1.1", [], "host;x-amz-date", "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"),
]  # fmt: skip


def suite_request(request_line: str, headers: list[tuple[str, str]], authz: str) -> HttpRequest:
    method, target = request_line.split(" ", 1)
    target = target.rsplit(" ", 1)[0]
    path, _, query = target.partition("?")
    all_headers = [("host", "example.amazonaws.com"), *headers]
    all_headers += [("x-amz-date", "20150830T123600Z"), ("authorization", authz)]
    return raw(method, path.encode(), query.encode(), all_headers)


@pytest.mark.parametrize(
    ("request_line", "headers", "signed", "signature"),
    [case[1:] for case in SUITE_2015],
    ids=[case[0] for case in SUITE_2015],
)
def test_aws_sigv4_test_suite(
    request_line: str, headers: list[tuple[str, str]], signed: str, signature: str
) -> None:
    authz = (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    req = suite_request(request_line, headers, authz)
    authenticate(req, datetime(2015, 8, 30, 12, 36, tzinfo=UTC), service="service")
    wrong = suite_request(request_line, headers, authz[:-1] + ("0" if authz[-1] != "0" else "1"))
    with pytest.raises(ServiceError, match="does not match"):
        authenticate(wrong, datetime(2015, 8, 30, 12, 36, tzinfo=UTC), service="service")


@pytest.mark.parametrize(
    ("path", "signature"),
    [
        # botocore's tests/unit/auth/aws4_testsuite: get-utf8 and get-space, as botocore (and
        # AWS for non-S3 services) canonicalise them: the wire path encoded a second time.
        ("/%E1%88%B4", "57b1eb3df3b16a8479c0097b66c0b261cfd65b829419a3f2c3d05319722490b8"),
        ("/%20/foo", "2be9e587d1ee1f0fd02128724b86b4358ba3630d39f493b6e06610a19a50779e"),
    ],
)
def test_botocore_suite_with_date_header(path: str, signature: str) -> None:
    authz = (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/host/aws4_request, "
        f"SignedHeaders=date;host, Signature={signature}"
    )
    req = raw(
        "GET",
        path.encode(),
        headers=[
            ("date", "Mon, 09 Sep 2011 23:36:00 GMT"),
            ("host", "host.foo.com"),
            ("authorization", authz),
        ],
    )
    authenticate(req, datetime(2011, 9, 9, 23, 36, tzinfo=UTC), service="host")


def test_signing_key_matches_aws_documentation() -> None:
    # "Examples of how to derive a signing key for Signature Version 4" (AWS General Reference).
    assert derive_signing_key(SECRET_KEY, "20120215", "us-east-1", "iam").hex() == (
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
    )


# --- errors, with AWS's exact wording ----------------------------------------------------------


def test_no_authentication_at_all() -> None:
    error = refused(raw(headers=[("host", "h"), ("x-amz-date", "20240517T123456Z")]))
    assert_error(error, "MissingAuthenticationTokenException", "Missing Authentication Token")


@pytest.mark.parametrize("value", ["Bearer abc", "AWS AKID:sig=", "", "   "])
def test_non_sigv4_authorization_counts_as_missing(value: str) -> None:
    error = refused(raw(headers=[("authorization", value), ("x-amz-date", "20240517T123456Z")]))
    assert_error(error, "MissingAuthenticationTokenException", "Missing Authentication Token")


def test_presign_with_other_algorithm_counts_as_missing() -> None:
    error = refused(raw(query=b"X-Amz-Algorithm=AWS4-HMAC-SHA1&X-Amz-Credential=a"))
    assert_error(error, "MissingAuthenticationTokenException", "Missing Authentication Token")


def test_part_without_equal_sign() -> None:
    value = (
        "AWS4-HMAC-SHA256 Credential= AKIDEXAMPLE/20240517/us-east-1/secretsmanager/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc"
    )
    error = refused(raw(headers=[("authorization", value), ("x-amz-date", "20240517T123456Z")]))
    assert_error(
        error,
        "IncompleteSignatureException",
        "'AKIDEXAMPLE/20240517/us-east-1/secretsmanager/aws4_request' not a valid key=value pair "
        f"(missing equal-sign) in Authorization header: '{value}'.",
    )


def test_every_missing_part_is_listed() -> None:
    error = refused(raw(headers=[("authorization", "AWS4-HMAC-SHA256")]))
    assert_error(
        error,
        "IncompleteSignatureException",
        "Authorization header requires 'Credential' parameter. "
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=AWS4-HMAC-SHA256",
    )


def test_missing_signature_only() -> None:
    value = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240517/us-east-1/secretsmanager/aws4_request,SignedHeaders=host"
    error = refused(raw(headers=[("authorization", value), ("x-amz-date", "20240517T123456Z")]))
    assert_error(
        error,
        "IncompleteSignatureException",
        f"Authorization header requires 'Signature' parameter. Authorization={value}",
    )


def test_authorization_parts_may_be_separated_by_spaces_or_commas_alone() -> None:
    req = sign()
    value = header(req, "authorization")
    algorithm, rest = value.split(" ", 1)
    authenticate(with_headers(req, authorization=algorithm + " " + rest.replace(", ", ",")))
    authenticate(with_headers(req, authorization=algorithm + " " + rest.replace(", ", "  ")))


@pytest.mark.parametrize(
    "date", ["2024-05-17T12:34:56Z", "20240517T123456", "20240517", "20241317T123456Z", "x"]
)
def test_malformed_x_amz_date(date: str) -> None:
    error = refused(with_headers(sign(), x_amz_date=date))
    assert_error(
        error,
        "IncompleteSignatureException",
        f"Date must be in ISO-8601 'basic format'. Got '{date}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601",
    )


def test_unsupported_algorithm() -> None:
    req = sign()
    value = header(req, "authorization").replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA25", 1)
    error = refused(with_headers(req, authorization=value))
    assert_error(
        error,
        "IncompleteSignatureException",
        "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA25' (only AWS4-HMAC-SHA256 for now). ",
    )


@pytest.mark.parametrize(
    "credential",
    ["AKIDEXAMPLE", "a/b/c/d", "AKID/20240517/us-east-1/secretsmanager/aws4_request/x"],
)
def test_credential_must_have_five_parts(credential: str) -> None:
    value = f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=ab"
    error = refused(raw(headers=[("authorization", value), ("x-amz-date", "20240517T123456Z")]))
    assert_error(
        error,
        "IncompleteSignatureException",
        "Credential must have exactly 5 slash-delimited elements, "
        f"e.g. keyid/date/region/service/term, got '{credential}'",
    )


def test_expired_signature() -> None:
    error = refused(sign(), NOW + timedelta(minutes=5, seconds=1))
    assert_error(
        error,
        "InvalidSignatureException",
        "Signature expired: 20240517T123456Z is now earlier than 20240517T123457Z "
        "(20240517T123957Z - 5 min.)",
    )


def test_signature_not_yet_current() -> None:
    error = refused(sign(), NOW - timedelta(minutes=5, seconds=1))
    assert_error(
        error,
        "InvalidSignatureException",
        "Signature not yet current: 20240517T123456Z is still later than 20240517T123455Z "
        "(20240517T122955Z + 5 min.)",
    )


def test_five_minutes_of_skew_either_way_is_accepted() -> None:
    req = sign()
    authenticate(req, NOW + timedelta(minutes=5))
    authenticate(req, NOW - timedelta(minutes=5))


def test_host_must_be_signed() -> None:
    req = sign()
    value = header(req, "authorization").replace("host;", "")
    error = refused(with_headers(req, authorization=value))
    assert_error(
        error,
        "InvalidSignatureException",
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    )


def test_scoped_to_another_service() -> None:
    error = refused(sign(service="kms"))
    assert_error(
        error,
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'secretsmanager'. ",
    )


def test_scoped_to_another_region() -> None:
    error = refused(sign(region="eu-west-1"), region="us-east-1")
    assert_error(
        error,
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'eu-west-1'. ",
    )


def test_scope_date_must_match_request_date() -> None:
    req = sign()
    value = header(req, "authorization").replace("/20240517/", "/20240516/")
    error = refused(with_headers(req, authorization=value))
    assert_error(
        error,
        "InvalidSignatureException",
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '20240516' != '20240517', from '20240517T123456Z'. ",
    )


def test_all_scope_faults_in_one_message() -> None:
    value = (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/b/c/d/e, SignedHeaders=host;x-amz-date, "
        "Signature=00"
    )
    req = raw(headers=[("authorization", value), ("x-amz-date", "20240517T123456Z")])
    error = refused(req, region="us-east-1")
    assert_error(
        error,
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'c'. "
        "Credential should be scoped to correct service: 'secretsmanager'. "
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'e'. "
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: 'b' != '20240517', from '20240517T123456Z'. ",
    )


def test_signature_mismatch_shows_the_canonical_request_and_string_to_sign() -> None:
    aws_request = AWSRequest(
        method="POST",
        url="https://secretsmanager.us-east-1.amazonaws.com/",
        data=b'{"SecretId": "x"}',
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "a.B"},
    )
    signer = SigV4Auth(Credentials(ACCESS_KEY, "a-wrong-secret"), SERVICE, "us-east-1")
    with mock.patch("botocore.auth.get_current_datetime", return_value=SIGNED_AT):
        signer.add_auth(aws_request)
    req = to_http_request(aws_request)
    del aws_request.headers["Authorization"]  # what botocore signed did not include it
    canonical = signer.canonical_request(aws_request)
    string_to_sign = signer.string_to_sign(aws_request, canonical)
    assert_error(
        refused(req),
        "InvalidSignatureException",
        f"{MISMATCH}\n\nThe Canonical String for this request should have been\n'{canonical}'"
        f"\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n",
    )


def test_both_header_and_query_authentication_is_refused() -> None:
    req = sign()
    both = HttpRequest(
        req.method, req.raw_path, b"X-Amz-Algorithm=AWS4-HMAC-SHA256", req.headers, req.body
    )
    assert_error(refused(both), "InvalidSignatureException", MISMATCH)


def test_presigned_missing_parameters() -> None:
    error = refused(raw(query=b"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240517T123456Z"))
    assert_error(
        error,
        "IncompleteSignatureException",
        "AWS query-string parameters must include 'X-Amz-Credential'. "
        "AWS query-string parameters must include 'X-Amz-Signature'. "
        "AWS query-string parameters must include 'X-Amz-SignedHeaders'. "
        "Re-examine the query-string parameters.",
    )


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        ("soon", "X-Amz-Expires should be a number"),
        ("-1", "X-Amz-Expires must be non-negative"),
        (
            str(MAX_PRESIGN_EXPIRES + 1),
            "X-Amz-Expires must be less than a week (in seconds); that is, the given "
            "X-Amz-Expires must be less than 604800 seconds",
        ),
    ],
)
def test_presigned_expires_must_be_sensible(expires: str, message: str) -> None:
    req = sign(method="GET", body=b"", presign_expires=60)
    query = req.query_string.replace(b"X-Amz-Expires=60", b"X-Amz-Expires=" + expires.encode())
    error = refused(HttpRequest(req.method, req.raw_path, query, req.headers, req.body))
    assert_error(error, "IncompleteSignatureException", message)


def test_unknown_access_key() -> None:
    assert_error(
        refused(sign(access_key="AKIAUNKNOWN")),
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


def test_token_errors_for_the_server() -> None:
    assert_error(
        invalid_security_token_error(),
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )
    assert_error(
        expired_security_token_error(),
        "ExpiredTokenException",
        "The security token included in the request is expired",
    )


def test_wrong_secret_is_a_mismatch() -> None:
    error = refused(sign(secret="not-the-secret"))
    assert error.code == "InvalidSignatureException" and error.message.startswith(MISMATCH)


def test_clock_and_scope_are_checked_before_the_key_lookup() -> None:
    # AWS's order: an unknown key with a stale clock reports the clock.
    error = refused(sign(access_key="AKIAUNKNOWN"), NOW + timedelta(hours=1))
    assert error.message.startswith("Signature expired")


# --- signing key cache -------------------------------------------------------------------------


def test_cache_returns_derived_keys_and_is_bounded() -> None:
    cache = SigningKeyCache(maxsize=2)
    first = cache.get("A", "s", "20240517", "us-east-1", SERVICE)
    assert first == derive_signing_key("s", "20240517", "us-east-1", SERVICE)
    assert cache.get("A", "s", "20240517", "us-east-1", SERVICE) is first
    cache.get("B", "s", "20240517", "us-east-1", SERVICE)
    cache.get("A", "s", "20240517", "us-east-1", SERVICE)  # A is now most recent
    cache.get("C", "s", "20240517", "us-east-1", SERVICE)  # evicts B
    assert len(cache) == 2
    with mock.patch("secretsd.auth.sigv4.derive_signing_key", side_effect=AssertionError):
        cache.get("A", "s", "20240517", "us-east-1", SERVICE)
        cache.get("C", "s", "20240517", "us-east-1", SERVICE)


def test_cache_unseals_the_secret_only_on_a_miss() -> None:
    cache = SigningKeyCache()
    unseal = mock.Mock(return_value="s")
    first = cache.get("A", unseal, "20240517", "us-east-1", SERVICE)
    assert cache.get("A", unseal, "20240517", "us-east-1", SERVICE) == first
    assert unseal.call_count == 1
    assert first == derive_signing_key("s", "20240517", "us-east-1", SERVICE)


def test_cache_takes_a_new_secret_after_invalidate() -> None:
    cache = SigningKeyCache()
    old = cache.get("A", "old", "20240517", "us-east-1", SERVICE)
    cache.invalidate("A")
    new = cache.get("A", "new", "20240517", "us-east-1", SERVICE)
    assert new != old and new == derive_signing_key("new", "20240517", "us-east-1", SERVICE)


def test_cache_invalidate_and_clear() -> None:
    cache = SigningKeyCache()
    for key_id in ("A", "B"):
        for day in ("20240516", "20240517"):
            cache.get(key_id, "s", day, "us-east-1", SERVICE)
    cache.invalidate("A")
    assert len(cache) == 2
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError):
        SigningKeyCache(maxsize=0)
