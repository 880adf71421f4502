"""AWS Signature Version 4 verification of incoming requests (Authorization header or presigned).

The canonical request mirrors what botocore's `SigV4Auth` / `SigV4QueryAuth` sign for non-S3
services, so boto3, the AWS CLI and the other SDKs (which agree with botocore on every request
they actually send) verify. Errors mirror what AWS's JSON ("coral") services return; every
client-visible string is in the table below, each with the place it was observed.

Flow used by the server::

    cred = parse_credential(req)                 # missing/malformed auth
    check_credential(cred, now, service=...)     # clock, host, scope: before the key lookup,
                                                 # as AWS orders them
    secret = <look up cred.access_key_id>        # unknown -> unknown_access_key_error()
    verify(req, cred, cache.get(...), now, service=...)

`verify` repeats `check_credential` (it is cheap), so calling it alone is also safe.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote_from_bytes, unquote_to_bytes

from secretsd.errors import ServiceError

__all__ = [
    "ALGORITHM",
    "MAX_CLOCK_SKEW",
    "MAX_PRESIGN_EXPIRES",
    "Credential",
    "HttpRequest",
    "SigningKeyCache",
    "check_credential",
    "derive_signing_key",
    "expired_security_token_error",
    "invalid_security_token_error",
    "parse_credential",
    "unknown_access_key_error",
    "verify",
]

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
# Secrets Manager allows 5 minutes each way (15 for some older services such as STS/DynamoDB):
# "Signature expired: 20251105T220858Z is now earlier than 20251106T132108Z (20251106T132608Z - 5
# min.)" from GetSecretValue, boto/botocore#3587.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# SigV4 presigned URLs live at most 7 days (the signing key is only valid that long).
MAX_PRESIGN_EXPIRES = 604800

# ---------------------------------------------------------------------------------------------
# Every string a client can see. Sources:
#  [SM-cpp]   aws/aws-sdk-cpp#2407: Secrets Manager, HTTP 400, "Missing Authentication Token",
#             content-length 89, which is exactly that __type and message as JSON.
#  [SM-net]   aws/aws-sdk-net#3978: Secrets Manager InvalidSignatureException with canonical string
#             and string-to-sign appended.
#  [SM-java]  spring-attic/spring-cloud-aws#492: AWSSecretsManager, Status Code 400,
#             UnrecognizedClientException "The security token included in the request is invalid."
#  [SM-boto]  boto/botocore#3587: GetSecretValue "Signature expired: ... - 5 min.)".
#  [dynalite] architect/dynalite index.js: DynamoDB (coral) responses recorded by its author, with
#             the order AWS checks things in; all status 400.
#  [smithy4s] disneystreaming/smithy4s#1568: sagemaker (json-1.1) 400, content-length 112 ==
#             the scope message *with* its trailing space.
#  [scratch]  dacut/scratchstack-aws-signature (src/canonical.rs, auth.rs): AWS-compatible verifier.
#  [S3]       S3's wording for X-Amz-Expires (minio/minio-js#1312, bryanjos/aws_auth#31); no coral
#             wording is recorded, so S3's is borrowed under IncompleteSignatureException.
# Coral services build multi-part messages by appending "<sentence>. " pieces, hence the trailing
# spaces, which clients do see ([smithy4s], [dynalite]).
# ---------------------------------------------------------------------------------------------

AUTH_ERROR_STATUS = 400  # every auth error of a JSON-1.1 service is 400 ([SM-cpp], [SM-java])

MISSING_TOKEN = "MissingAuthenticationTokenException"
INCOMPLETE_SIGNATURE = "IncompleteSignatureException"
INVALID_SIGNATURE = "InvalidSignatureException"
UNRECOGNIZED_CLIENT = "UnrecognizedClientException"
EXPIRED_TOKEN = "ExpiredTokenException"

# [SM-cpp]; DynamoDB words it "Request is missing Authentication Token".
MSG_MISSING_TOKEN = "Missing Authentication Token"
MSG_REQUIRES_CREDENTIAL = "Authorization header requires 'Credential' parameter."  # [dynalite]
MSG_REQUIRES_SIGNATURE = "Authorization header requires 'Signature' parameter."  # [dynalite]
MSG_REQUIRES_SIGNED_HEADERS = "Authorization header requires 'SignedHeaders' parameter."  # [dyn.]
MSG_REQUIRES_DATE = (  # [dynalite], also aws/chalice#828
    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
)
MSG_QUERY_REQUIRES = "AWS query-string parameters must include '{}'."  # [scratch]
MSG_QUERY_REEXAMINE = "Re-examine the query-string parameters."  # [scratch]
MSG_HOST_NOT_SIGNED = (  # [scratch]; [dynalite] has the pre-HTTP/2 "'Host' must be a ..."
    "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
)
MSG_SIGNATURE_MISMATCH = (  # [SM-net], [dynalite]
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
MSG_INVALID_TOKEN = "The security token included in the request is invalid."  # [SM-java]
# prowler-cloud/prowler#789 (STS via the CLI); JSON services send it as ExpiredTokenException.
MSG_EXPIRED_TOKEN = "The security token included in the request is expired"
MSG_EXPIRES_NOT_NUMBER = "X-Amz-Expires should be a number"  # [S3]
MSG_EXPIRES_NEGATIVE = "X-Amz-Expires must be non-negative"  # [S3]
MSG_EXPIRES_TOO_LONG = (  # [S3]
    "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires "
    "must be less than 604800 seconds"
)


def _error(code: str, message: str) -> ServiceError:
    return ServiceError(code, message, AUTH_ERROR_STATUS)


def unknown_access_key_error() -> ServiceError:
    """The access key id is not one this server knows."""
    return _error(UNRECOGNIZED_CLIENT, MSG_INVALID_TOKEN)


def invalid_security_token_error() -> ServiceError:
    """An X-Amz-Security-Token that does not belong to the access key (same wording as AWS)."""
    return _error(UNRECOGNIZED_CLIENT, MSG_INVALID_TOKEN)


def expired_security_token_error() -> ServiceError:
    """A temporary credential whose session has ended."""
    return _error(EXPIRED_TOKEN, MSG_EXPIRED_TOKEN)


def _missing_token() -> ServiceError:
    return _error(MISSING_TOKEN, MSG_MISSING_TOKEN)


def _not_key_value(token: str, header: str) -> ServiceError:
    # [dynalite], and real AWS in awslabs/fhir-works-on-aws-deployment#379 (trailing "'.")
    return _error(
        INCOMPLETE_SIGNATURE,
        f"'{token}' not a valid key=value pair (missing equal-sign) in Authorization header: "
        f"'{header}'.",
    )


def _missing_header_parts(missing: list[str], header: str) -> ServiceError:
    # [dynalite]: each sentence followed by a space, then the header as received.
    return _error(
        INCOMPLETE_SIGNATURE, "".join(m + " " for m in missing) + "Authorization=" + header
    )


def _missing_query_parts(missing: list[str]) -> ServiceError:
    return _error(INCOMPLETE_SIGNATURE, " ".join([*missing, MSG_QUERY_REEXAMINE]))


def _bad_date(value: str) -> ServiceError:
    # [dynalite]
    return _error(
        INCOMPLETE_SIGNATURE,
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601",
    )


def _unsupported_algorithm(algorithm: str) -> ServiceError:
    # [dynalite], recorded for 'AWS4-HMAC-SHA25'
    return _error(
        INCOMPLETE_SIGNATURE,
        f"Unsupported AWS 'algorithm': '{algorithm}' (only AWS4-HMAC-SHA256 for now). ",
    )


def _malformed_credential(credential: str) -> ServiceError:
    # [dynalite], [scratch]
    return _error(
        INCOMPLETE_SIGNATURE,
        "Credential must have exactly 5 slash-delimited elements, "
        f"e.g. keyid/date/region/service/term, got '{credential}'",
    )


def _bad_expires(message: str) -> ServiceError:
    return _error(INCOMPLETE_SIGNATURE, message)


def _scope_errors(pieces: list[str]) -> ServiceError:
    # [dynalite] shows all four pieces in one message; [smithy4s] shows the trailing space.
    return _error(INVALID_SIGNATURE, "".join(pieces))


def _scope_region(region: str) -> str:
    return f"Credential should be scoped to a valid region, not '{region}'. "


def _scope_service(expected: str) -> str:
    return f"Credential should be scoped to correct service: '{expected}'. "


def _scope_terminator(terminator: str) -> str:
    return (
        f"Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
    )


def _scope_date(scope_date: str, timestamp: str) -> str:
    return (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        f"HTTP: '{scope_date}' != '{timestamp[:8]}', from '{timestamp}'. "
    )


def _window(delta: timedelta) -> str:
    # AWS prints its fixed windows as "5 min" / "15 min" ([SM-boto], [dynalite]); other presign
    # lifetimes are shown the same way when whole minutes, in seconds otherwise (our choice).
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} sec"


def _expired(timestamp: str, now: datetime, window: timedelta) -> ServiceError:
    return _error(
        INVALID_SIGNATURE,
        f"Signature expired: {timestamp} is now earlier than {_iso(now - window)} "
        f"({_iso(now)} - {_window(window)}.)",
    )


def _not_yet_current(timestamp: str, now: datetime, window: timedelta) -> ServiceError:
    # serverless/enterprise#11: "... is still later than ... (... + 5 min.)"
    return _error(
        INVALID_SIGNATURE,
        f"Signature not yet current: {timestamp} is still later than {_iso(now + window)} "
        f"({_iso(now)} + {_window(window)}.)",
    )


def _mismatch(canonical_request: str, string_to_sign: str) -> ServiceError:
    # [SM-net] (Secrets Manager, 2025) and [dynalite]: AWS appends both strings.
    return _error(
        INVALID_SIGNATURE,
        f"{MSG_SIGNATURE_MISMATCH}\n\nThe Canonical String for this request should have been\n"
        f"'{canonical_request}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n",
    )


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """The parts of an HTTP request that SigV4 covers, as an ASGI server delivers them."""

    method: str
    raw_path: bytes  # as on the wire (ASGI scope["raw_path"]), without the query
    query_string: bytes  # raw, without '?'
    headers: Sequence[tuple[bytes, bytes]]  # ASGI: lowercase names, raw values, repeats allowed
    body: bytes


@dataclass(frozen=True, slots=True)
class Credential:
    """What the caller claims, from the Authorization header or the X-Amz-* query parameters."""

    access_key_id: str
    date: str  # yyyymmdd of the scope
    region: str
    service: str
    signed_headers: tuple[str, ...]  # lowercase, sorted
    signature: str
    amz_date: datetime  # tz-aware UTC
    security_token: str | None
    presigned: bool
    expires: int | None  # X-Amz-Expires of a presigned URL
    terminator: str = TERMINATOR
    timestamp: str = ""  # amz_date in ISO-8601 basic format, as it enters the string to sign


def _iso(moment: datetime) -> str:
    # strftime's %Y is not zero-padded for years < 1000 on glibc.
    return (
        f"{moment.year:04d}{moment.month:02d}{moment.day:02d}T"
        f"{moment.hour:02d}{moment.minute:02d}{moment.second:02d}Z"
    )


def _parse_iso_basic(value: str) -> datetime | None:
    # The shape is checked first: fromisoformat alone would also take extended and offset forms.
    if len(value) != 16 or value[8] != "T" or value[15] != "Z":
        return None
    digits = value[:8] + value[9:15]
    if not (digits.isascii() and digits.isdigit()):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _parse_http_date(value: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # botocore sends "... -0000", which the stdlib returns as a naive datetime meaning UTC.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _split_scope(credential: str) -> list[str]:
    # [dynalite]: "trailing slashes are ignored"
    parts = credential.rstrip("/").split("/")
    if len(parts) != 5:
        raise _malformed_credential(credential)
    return parts


def _signed_header_names(value: str) -> tuple[str, ...]:
    names = value.lower().split(";")
    if "" in names:
        names = [name for name in names if name]
    names.sort()
    return tuple(names)


def _query_pairs(query: bytes) -> list[tuple[bytes, bytes]]:
    """Decoded (key, value) pairs; '+' is a space, as in form encoding (see _canonical_query)."""
    pairs = []
    for part in query.split(b"&"):
        if part:
            key, _, value = part.partition(b"=")
            pairs.append(
                (
                    unquote_to_bytes(key.replace(b"+", b" ")),
                    unquote_to_bytes(value.replace(b"+", b" ")),
                )
            )
    return pairs


_SIGNATURE_PART = ", Signature="


class HeaderCache:
    """What parsing an Authorization header learns besides its signature (the credential scope
    and the signed headers), by the header's text before ", Signature=", and the last
    X-Amz-Date read. A client signs its requests with the same scope and headers, only the
    signature and the date change, so most requests skip the parse. Holds nothing secret: only
    what the header shows in clear. Only parses that succeeded are kept, so errors are still
    found (and worded) by the full parse."""

    def __init__(self, maxsize: int = 1024) -> None:
        self._scopes: dict[str, tuple[list[str], tuple[str, ...]]] = {}
        self._maxsize = maxsize
        self._date: tuple[str, datetime | None] = ("", None)

    def lookup(self, header: str, amz_date: bytes | None, token: bytes | None) -> Credential | None:
        cut = header.rfind(_SIGNATURE_PART)
        if cut < 0 or amz_date is None:
            return None
        known = self._scopes.get(header[:cut])
        if known is None:
            return None
        signature = header[cut + len(_SIGNATURE_PART) :]
        # A signature with a separator in it would be split by the full parse.
        if not signature or not signature.isalnum():
            return None
        timestamp = amz_date.decode("latin-1")
        last, moment = self._date
        if timestamp != last:
            moment = _parse_iso_basic(timestamp)
            if moment is None:
                return None
            self._date = (timestamp, moment)
        assert moment is not None
        scope, signed = known
        return _header_credential(scope, signed, signature, moment, timestamp, token)

    def learn(self, header: str, cred: Credential) -> None:
        cut = header.rfind(_SIGNATURE_PART)
        if cut < 0 or header[cut + len(_SIGNATURE_PART) :] != cred.signature:
            return
        if len(self._scopes) >= self._maxsize:
            self._scopes.clear()
        scope = [cred.access_key_id, cred.date, cred.region, cred.service, cred.terminator]
        self._scopes[header[:cut]] = (scope, cred.signed_headers)


def parse_credential(req: HttpRequest, cache: HeaderCache | None = None) -> Credential:
    """The caller's claimed credential, or the ServiceError AWS gives for missing/malformed auth.

    Checks, in AWS's order ([dynalite]): presence of auth, key=value syntax, required parts,
    date format, then algorithm and credential shape. (AWS checks the clock and the signed host
    between the last two groups; `check_credential` does those, so a request with several faults
    may get a different one of its errors first than from AWS.)
    """
    authorization = amz_date = http_date = token = None
    for name, value in req.headers:
        if name == b"authorization":
            authorization = authorization if authorization is not None else value
        elif name == b"x-amz-date":
            amz_date = amz_date if amz_date is not None else value
        elif name == b"date":
            http_date = http_date if http_date is not None else value
        elif name == b"x-amz-security-token":
            token = token if token is not None else value

    params: dict[bytes, bytes] = {}
    if b"X-Amz-" in req.query_string:  # parameter names are case-sensitive
        for key, value in _query_pairs(req.query_string):
            params.setdefault(key, value)  # first value wins ([scratch] rule 7c)
    algorithm = params.get(b"X-Amz-Algorithm")

    if authorization is not None:
        if algorithm is not None:
            # Both mechanisms at once: [scratch] refuses with a bare signature mismatch.
            raise _error(INVALID_SIGNATURE, MSG_SIGNATURE_MISMATCH)
        header = authorization.decode("latin-1")
        if cache is None:
            return _from_header(header, amz_date, http_date, token)
        cred = cache.lookup(header, amz_date, token)
        if cred is None:
            cred = _from_header(header, amz_date, http_date, token)
            if amz_date is not None:
                cache.learn(header, cred)
        return cred
    if algorithm is not None:
        return _from_query(algorithm, params, token)
    raise _missing_token()


def _from_header(
    header: str, amz_date: bytes | None, http_date: bytes | None, token: bytes | None
) -> Credential:
    words = header.split(None, 1)
    # [dynalite]: anything not starting "AWS4-" is treated as no AWS authentication at all.
    if not words or not words[0].startswith("AWS4-"):
        raise _missing_token()
    algorithm = words[0]
    fields: dict[str, str] = {}
    # AWS separates the parts by commas and/or whitespace: a space after "Credential=" makes
    # the key id a separate, '='-less part (iann0036/cloud9-sync#10, scylladb alternator tests).
    for part in (words[1] if len(words) > 1 else "").replace(",", " ").split():
        key, equals, value = part.partition("=")
        if not equals:
            raise _not_key_value(part, header)
        fields[key] = value  # last value wins ([scratch] rule 6c)

    credential = fields.get("Credential", "")
    signature = fields.get("Signature", "")
    missing = []
    if not credential:
        missing.append(MSG_REQUIRES_CREDENTIAL)
    if not signature:
        missing.append(MSG_REQUIRES_SIGNATURE)
    if "SignedHeaders" not in fields:  # may be empty here ([dynalite] note)
        missing.append(MSG_REQUIRES_SIGNED_HEADERS)
    if amz_date is None and http_date is None:
        missing.append(MSG_REQUIRES_DATE)
    if missing:
        raise _missing_header_parts(missing, header)

    if amz_date is not None:
        timestamp = amz_date.decode("latin-1")
        moment = _parse_iso_basic(timestamp)
        if moment is None:
            raise _bad_date(timestamp)
    else:
        assert http_date is not None
        raw = http_date.decode("latin-1")
        moment = _parse_http_date(raw)
        if moment is None:
            raise _bad_date(raw)
        timestamp = _iso(moment)

    if algorithm != ALGORITHM:
        raise _unsupported_algorithm(algorithm)
    return _header_credential(
        _split_scope(credential),
        _signed_header_names(fields["SignedHeaders"]),
        signature,
        moment,
        timestamp,
        token,
    )


def _header_credential(
    scope: list[str],
    signed: tuple[str, ...],
    signature: str,
    moment: datetime,
    timestamp: str,
    token: bytes | None,
) -> Credential:
    key_id, scope_date, region, service, terminator = scope
    return Credential(
        access_key_id=key_id,
        date=scope_date,
        region=region,
        service=service,
        signed_headers=signed,
        signature=signature,
        amz_date=moment,
        security_token=token.decode("latin-1") if token is not None else None,
        presigned=False,
        expires=None,
        terminator=terminator,
        timestamp=timestamp,
    )


def _from_query(
    algorithm: bytes, params: dict[bytes, bytes], header_token: bytes | None
) -> Credential:
    if algorithm != ALGORITHM.encode():
        raise _missing_token()  # [scratch] rule 7a

    def text(name: bytes) -> str | None:
        value = params.get(name)
        return None if value is None else value.decode("utf-8", "replace")

    credential = text(b"X-Amz-Credential")
    signature = text(b"X-Amz-Signature")
    signed = text(b"X-Amz-SignedHeaders")
    timestamp = text(b"X-Amz-Date")
    missing = [
        MSG_QUERY_REQUIRES.format(name)
        for name, value in (
            ("X-Amz-Credential", credential),
            ("X-Amz-Signature", signature),
            ("X-Amz-SignedHeaders", signed),
            ("X-Amz-Date", timestamp),
        )
        if value is None
    ]
    if missing:
        raise _missing_query_parts(missing)
    assert credential is not None and signature is not None
    assert signed is not None and timestamp is not None

    moment = _parse_iso_basic(timestamp)
    if moment is None:
        raise _bad_date(timestamp)
    expires = _parse_expires(text(b"X-Amz-Expires"))
    key_id, scope_date, region, service, terminator = _split_scope(credential)
    token = text(b"X-Amz-Security-Token")
    if token is None and header_token is not None:
        # An (unsigned) token header still presents a credential the server must vet.
        token = header_token.decode("latin-1")
    return Credential(
        access_key_id=key_id,
        date=scope_date,
        region=region,
        service=service,
        signed_headers=_signed_header_names(signed),
        signature=signature,
        amz_date=moment,
        security_token=token,
        presigned=True,
        expires=expires,
        terminator=terminator,
        timestamp=timestamp,
    )


def _parse_expires(value: str | None) -> int | None:
    if value is None:
        return None
    digits = value[1:] if value.startswith("-") else value
    if not (digits.isascii() and digits.isdigit()):
        raise _bad_expires(MSG_EXPIRES_NOT_NUMBER)
    seconds = int(value)
    if seconds < 0:
        raise _bad_expires(MSG_EXPIRES_NEGATIVE)
    if seconds > MAX_PRESIGN_EXPIRES:
        raise _bad_expires(MSG_EXPIRES_TOO_LONG)
    return seconds


def check_credential(
    cred: Credential, now: datetime, *, service: str, region: str | None = None
) -> None:
    """The checks AWS makes before looking the access key up: clock, signed host, scope.

    Header-signed requests must be within MAX_CLOCK_SKEW of `now` either way. A presigned
    request expires X-Amz-Expires seconds after X-Amz-Date (MAX_CLOCK_SKEW when absent) and may
    be at most MAX_CLOCK_SKEW early. `region`, when given, is the only region accepted.
    """
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    timestamp = cred.timestamp or _iso(cred.amz_date)
    lifetime = (
        timedelta(seconds=cred.expires)
        if cred.presigned and cred.expires is not None
        else MAX_CLOCK_SKEW
    )
    if cred.amz_date < now - lifetime:
        raise _expired(timestamp, now, lifetime)
    if cred.amz_date > now + MAX_CLOCK_SKEW:
        raise _not_yet_current(timestamp, now, MAX_CLOCK_SKEW)
    if "host" not in cred.signed_headers and ":authority" not in cred.signed_headers:
        raise _error(INVALID_SIGNATURE, MSG_HOST_NOT_SIGNED)

    pieces = []
    if region is not None and cred.region != region:
        pieces.append(_scope_region(cred.region))
    if cred.service != service:
        pieces.append(_scope_service(service))
    if cred.terminator != TERMINATOR:
        pieces.append(_scope_terminator(cred.terminator))
    if cred.date != timestamp[:8]:
        pieces.append(_scope_date(cred.date, timestamp))
    if pieces:
        raise _scope_errors(pieces)


def derive_signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC chain over date, region, service and "aws4_request"."""
    key = hmac.digest(("AWS4" + secret_access_key).encode("utf-8"), date.encode("utf-8"), "sha256")
    key = hmac.digest(key, region.encode("utf-8"), "sha256")
    key = hmac.digest(key, service.encode("utf-8"), "sha256")
    return hmac.digest(key, b"aws4_request", "sha256")


class SigningKeyCache:
    """A small LRU of derived signing keys, so a request costs one HMAC instead of five.

    Keyed by (access key id, date, region, service); neither the secret nor anything derived
    from it is part of the key, and the secret itself is not kept. Pass the secret as a
    zero-argument callable to unseal it only on a miss. An access key id's secret is taken as
    fixed (as in AWS, where a new secret means a new key id): call `invalidate` if it changes.
    """

    def __init__(self, maxsize: int = 1024) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._maxsize = maxsize
        self._entries: OrderedDict[tuple[str, str, str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self,
        access_key_id: str,
        secret_access_key: str | Callable[[], str],
        date: str,
        region: str,
        service: str,
    ) -> bytes:
        cache_key = (access_key_id, date, region, service)
        with self._lock:
            signing_key = self._entries.get(cache_key)
            if signing_key is not None:
                self._entries.move_to_end(cache_key)
                return signing_key
        secret = secret_access_key if isinstance(secret_access_key, str) else secret_access_key()
        signing_key = derive_signing_key(secret, date, region, service)
        with self._lock:
            self._entries[cache_key] = signing_key
            self._entries.move_to_end(cache_key)
            while len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)
        return signing_key

    def invalidate(self, access_key_id: str) -> None:
        """Forget every key derived for `access_key_id` (its secret changed, or it was deleted)."""
        with self._lock:
            for cache_key in [k for k in self._entries if k[0] == access_key_id]:
                del self._entries[cache_key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


# --- canonical request ------------------------------------------------------------------------

_UNRESERVED = b"-_.~"


def _canonical_uri(raw_path: bytes) -> str:
    # botocore: quote(remove_dot_segments(path), safe='/~') over the already percent-encoded
    # path, i.e. non-S3 services see every '%' encoded a second time. Empty segments go too.
    if raw_path == b"/" or not raw_path:
        return "/"
    path = raw_path.decode("latin-1")
    segments: list[str] = []
    for segment in path.split("/"):
        if segment and segment != ".":
            if segment == "..":
                if segments:
                    segments.pop()
            else:
                segments.append(segment)
    normalized = ("/" if path[0] == "/" else "") + "/".join(segments)
    if path[-1] == "/" and segments:
        normalized += "/"
    return quote_from_bytes((normalized or "/").encode("latin-1"), safe="/~")


def _canonical_query(query: bytes, presigned: bool) -> str:
    # Each key and value decoded, then encoded with only unreserved characters left bare, and
    # sorted by key then value: what botocore signs for request params (whose wire form uses
    # '+' for spaces) and for presigned URLs, and what the other SDKs send.
    if not query:
        return ""
    pairs = []
    for key, value in _query_pairs(query):
        if presigned and key == b"X-Amz-Signature":
            continue
        pairs.append(
            (quote_from_bytes(key, safe=_UNRESERVED), quote_from_bytes(value, safe=_UNRESERVED))
        )
    pairs.sort()
    return "&".join([f"{key}={value}" for key, value in pairs])


def _raw_canonical_query(query: bytes, presigned: bool) -> str:
    # botocore signs a query string written into the URL by hand exactly as written (split on
    # '&' and '=', sorted, not re-encoded); accepted as a fallback since it covers the same bytes.
    pairs = []
    for part in query.decode("latin-1").split("&"):
        key, _, value = part.partition("=")
        if presigned and key == "X-Amz-Signature":
            continue
        pairs.append((key, value))
    pairs.sort()
    return "&".join([f"{key}={value}" for key, value in pairs])


def _canonical_headers(req: HttpRequest, signed: tuple[str, ...]) -> str:
    wanted = {name.encode("latin-1", "replace"): name for name in signed}
    values: dict[str, list[str]] = {}
    for name, value in req.headers:
        header = wanted.get(name)
        if header is not None:
            # botocore's "trimall": ' '.join(value.split()) on the str it sent as Latin-1.
            values.setdefault(header, []).append(" ".join(value.decode("latin-1").split()))
    # A signed header the request lacks contributes no line ([scratch]).
    return "".join([f"{name}:{','.join(values[name])}\n" for name in signed if name in values])


def _canonical_request(req: HttpRequest, cred: Credential, query: str) -> str:
    # The payload hash is always that of the body received. (botocore signs the value of an
    # x-amz-content-sha256 header instead when one is present; for an honest client that is the
    # same hash, and trusting the header would let a replayed request carry another body.)
    return (
        f"{req.method}\n{_canonical_uri(req.raw_path)}\n{query}\n"
        f"{_canonical_headers(req, cred.signed_headers)}\n"
        f"{';'.join(cred.signed_headers)}\n{hashlib.sha256(req.body).hexdigest()}"
    )


def _string_to_sign(cred: Credential, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode("utf-8", "surrogatepass")).hexdigest()
    timestamp = cred.timestamp or _iso(cred.amz_date)
    return (
        f"{ALGORITHM}\n{timestamp}\n{cred.date}/{cred.region}/{cred.service}/{TERMINATOR}\n{digest}"
    )


def _signature_matches(signing_key: bytes, string_to_sign: str, claimed: bytes) -> bool:
    expected = hmac.digest(signing_key, string_to_sign.encode("utf-8", "surrogatepass"), "sha256")
    return hmac.compare_digest(expected.hex().encode("ascii"), claimed)


def verify(
    req: HttpRequest,
    cred: Credential,
    signing_key: bytes,
    now: datetime,
    *,
    service: str,
    region: str | None = None,
    checked: bool = False,
) -> None:
    """Accept the request or raise AWS's ServiceError for it.

    `signing_key` is derive_signing_key(secret, cred.date, cred.region, cred.service), usually
    from a SigningKeyCache. Runs check_credential first unless the caller already did
    (`checked=True`, with the same `now`, service and region).
    """
    if not checked:
        check_credential(cred, now, service=service, region=region)
    claimed = cred.signature.encode("utf-8", "surrogatepass")
    query = _canonical_query(req.query_string, cred.presigned)
    canonical_request = _canonical_request(req, cred, query)
    string_to_sign = _string_to_sign(cred, canonical_request)
    if _signature_matches(signing_key, string_to_sign, claimed):
        return
    if req.query_string:
        raw_query = _raw_canonical_query(req.query_string, cred.presigned)
        if raw_query != query:
            raw_string_to_sign = _string_to_sign(cred, _canonical_request(req, cred, raw_query))
            if _signature_matches(signing_key, raw_string_to_sign, claimed):
                return
    raise _mismatch(canonical_request, string_to_sign)
