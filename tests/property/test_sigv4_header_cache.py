"""The Authorization header cache changes nothing: after it has learnt from valid headers, any
header (valid, mutated, malformed) parses to the same credential, or fails with the same
error, as without it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from secretsd.auth.sigv4 import Credential, HeaderCache, HttpRequest, parse_credential
from secretsd.errors import ServiceError

PREFIXES = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261207/us-east-1/secretsmanager/aws4_request,"
    " SignedHeaders=content-type;host;x-amz-date;x-amz-target",
    "AWS4-HMAC-SHA256 Credential=ASIATEMP/20261207/eu-west-1/kms/aws4_request,"
    " SignedHeaders=host;x-amz-date;x-amz-security-token",
)
SIGNATURE = "a" * 64


def _request(header: str, amz_date: bytes | None, token: bytes | None) -> HttpRequest:
    headers = [(b"authorization", header.encode("latin-1"))]
    if amz_date is not None:
        headers.append((b"x-amz-date", amz_date))
    if token is not None:
        headers.append((b"x-amz-security-token", token))
    return HttpRequest(method="POST", raw_path=b"/", query_string=b"", headers=headers, body=b"")


def _outcome(req: HttpRequest, cache: HeaderCache | None) -> Credential | tuple[str, str]:
    try:
        return parse_credential(req, cache)
    except ServiceError as exc:
        return (exc.code, exc.message)


signatures = st.one_of(
    st.text(alphabet="0123456789abcdef", min_size=0, max_size=70),
    st.text(alphabet="0123456789abcdef ,=/;Signature", min_size=0, max_size=70),
)
dates = st.one_of(
    st.none(),
    st.sampled_from([b"20261207T101010Z", b"20261207T101011Z", b"20261207T1010Z", b"x"]),
)


@settings(max_examples=400, deadline=None)
@given(
    prefix=st.sampled_from(PREFIXES),
    tail=st.sampled_from(["", " ", ",", "Signature=b, "]),
    signature=signatures,
    amz_date=dates,
    token=st.one_of(st.none(), st.just(b"tok")),
    separator=st.sampled_from([", Signature=", ",Signature=", " Signature=", ", signature="]),
)
def test_a_cached_parse_equals_the_full_parse(
    prefix: str,
    tail: str,
    signature: str,
    amz_date: bytes | None,
    token: bytes | None,
    separator: str,
) -> None:
    cache = HeaderCache()
    for known in PREFIXES:  # the cache has learnt both prefixes from valid headers
        parse_credential(
            _request(f"{known}, Signature={SIGNATURE}", b"20261207T101010Z", None), cache
        )
    header = prefix + tail + separator + signature
    req = _request(header, amz_date, token)
    assert _outcome(req, cache) == _outcome(req, None)


def test_the_cache_answers_a_known_prefix_without_parsing_it_again() -> None:
    cache = HeaderCache()
    first = parse_credential(
        _request(f"{PREFIXES[0]}, Signature={SIGNATURE}", b"20261207T101010Z", None), cache
    )
    learnt = cache.lookup(f"{PREFIXES[0]}, Signature={'b' * 64}", b"20261207T101011Z", None)
    assert learnt is not None
    assert learnt.signature == "b" * 64
    assert learnt.timestamp == "20261207T101011Z"
    assert (learnt.access_key_id, learnt.region, learnt.signed_headers) == (
        first.access_key_id,
        first.region,
        first.signed_headers,
    )
