"""The worker -> audit writer process wire (audit/wire.py) and the stored form of an API call's
record (compact_line/render): what crosses comes out the same, a stored line renders the
CloudTrail record of its call, and what is not a record is refused as such."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretsd.audit.chain import record_bytes
from secretsd.audit.record import (
    AuditRecord,
    CallFacts,
    CallSummary,
    NotARecord,
    RecordCache,
    api_call_record,
    compact_line,
    full_line,
    record_body,
    render,
    scrubbed,
    summarize,
)
from secretsd.audit.redact import Redactor
from secretsd.audit.wire import (
    MAX_FRAME,
    Ack,
    WireError,
    decode_ack,
    decode_batch,
    encode_ack,
    encode_batch,
    frame,
)
from secretsd.protocol.model import load_service_model
from support.identities import ALICE

text = st.text(max_size=40)
json_scalar = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=10,
)
whos = st.lists(st.dictionaries(text, json_value, max_size=4), min_size=1, max_size=3)


@st.composite
def calls(draw: st.DrawFn) -> list[CallSummary]:
    people = draw(whos)
    found = []
    for _ in range(draw(st.integers(0, 6))):
        found.append(
            CallSummary(
                account_id=draw(text),
                who=draw(st.sampled_from(people)),
                service=draw(text),
                operation=draw(text),
                request_id=draw(text),
                time_ms=draw(st.integers(0, 2**40)),
                region=draw(text),
                source_ip=draw(text),
                user_agent=draw(text),
                request=draw(st.none() | st.dictionaries(text, json_value, max_size=3)),
                response=draw(st.none() | st.dictionaries(text, json_value, max_size=3)),
                read_only=draw(st.booleans()),
                error_code=draw(st.none() | text),
                error_message=draw(st.none() | text),
                resource_type=draw(st.none() | text),
                resource_name=draw(st.none() | text),
            )
        )
    return found


records_strategy = st.lists(
    st.builds(
        AuditRecord,
        st.sampled_from(["111122223333", "444455556666", "unknown"]),
        st.sampled_from(["us-east-1", "eu-west-1"]),
        st.just(""),
        st.integers(0, 2**48),
        st.binary(max_size=60).map(lambda b: b.replace(b"\n", b" ")),
    ),
    max_size=8,
)


@settings(max_examples=200)
@given(
    records_strategy,
    st.integers(0, 2**40),
    st.none() | st.tuples(st.integers(1, 99), st.binary(min_size=32, max_size=32)),
)
def test_a_batch_comes_out_as_it_went_in(
    records: list[AuditRecord], batch_id: int, signer: tuple[int, bytes] | None
) -> None:
    batch = decode_batch(encode_batch(batch_id, records, signer))
    assert batch.batch_id == batch_id
    assert batch.signer == signer
    assert batch.records == records


@settings(max_examples=200)
@given(calls(), text.filter(bool))
def test_a_compact_line_renders_the_record_of_its_call(
    found: list[CallSummary], event_id: str
) -> None:
    for call in found:
        line = compact_line(event_id, call)
        # Strings that are not UTF-8 (lone surrogates) are stored with "?" in their place.
        stored = CallSummary(*orjson.loads(orjson.dumps(scrubbed(list(call)))))
        assert render(line) == record_body(scrubbed(event_id), stored)


def test_a_lone_surrogate_is_stored_as_a_question_mark() -> None:
    call = _summary({"type": "Root"}, "r1", request={"secretId": "a\ud800b"})
    assert render(compact_line("e1", call))["requestParameters"] == {"secretId": "a?b"}


def test_a_record_stored_before_the_compact_form_still_renders() -> None:
    full = record_bytes(record_body("e2", _summary({"type": "Root"}, "r2")))
    assert render(full) == orjson.loads(full)
    assert full_line(full) == full


@given(st.binary(max_size=200))
def test_bytes_that_are_no_batch_are_refused_as_such(payload: bytes) -> None:
    try:
        decode_batch(payload)
    except WireError:
        pass


@given(st.binary(max_size=200) | json_value.map(lambda v: orjson.dumps(["c1", "e", v])))
def test_bytes_that_are_no_record_are_refused_as_such(line: bytes) -> None:
    try:
        render(line)
    except NotARecord:
        pass


@pytest.mark.parametrize(
    "payload",
    [
        b"[]",
        b'{"id": "1", "chains": [], "meta": []}',
        b'{"id": 1, "chains": [], "meta": [[0, 5]]}\nline',
        b'{"id": 1, "chains": [["a", "b"]], "meta": [[0, 5]]}\none\ntwo',
        b'{"id": 1, "chains": [["a", "b"]], "meta": [[0, "5"]]}\none',
        b'{"id": 1, "chains": [], "meta": [], "signer": [1, "!!"]}',
        b'{"id": 1, "chains": [], "meta": [], "signer": [1, "AAAA"]}',
    ],
)
def test_malformed_batches_are_wire_errors(payload: bytes) -> None:
    with pytest.raises(WireError):
        decode_batch(payload)


@given(st.integers(0, 2**40), st.booleans(), st.integers(0, 10**6), st.integers(0, 10**6))
def test_an_ack_comes_out_as_it_went_in(batch_id: int, ok: bool, written: int, failed: int) -> None:
    ack = Ack(batch_id, ok, written, failed)
    assert decode_ack(encode_ack(ack)) == ack


def test_oversized_frames_are_refused() -> None:
    assert frame(b"xy") == b"\x00\x00\x00\x02xy"
    with pytest.raises(WireError):
        frame(b"x" * (MAX_FRAME + 1))


def _summary(who: dict[str, object], request_id: str, **changes: object) -> CallSummary:
    base = CallSummary(
        "111122223333",
        who,
        "secretsmanager",
        "GetSecretValue",
        request_id,
        1_765_000_000_000,
        "us-east-1",
        "127.0.0.1",
        "Boto3/1.35",
        {"secretId": "app/db"},
        None,
        True,
        None,
        None,
        "AWS::SecretsManager::Secret",
        "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbCdEf",
    )
    return base._replace(**changes)


ARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbCdEf"


@pytest.mark.parametrize(
    "facts",
    [
        CallFacts(
            "secretsmanager",
            "GetSecretValue",
            "req-1",
            1_765_000_000_123,
            200,
            "eu-west-1",
            "10.0.0.1",
            "aws-cli/2",
            ALICE,
            request={"SecretId": "app/db", "VersionStage": "AWSCURRENT"},
            response={"ARN": ARN, "Name": "app/db"},
            resolved=(ARN,),
        ),
        CallFacts(
            "secretsmanager",
            "PutSecretValue",
            "req-2",
            1_765_000_000_456,
            200,
            "us-east-1",
            "10.0.0.2",
            "Boto3",
            ALICE,
            request={"SecretId": ARN, "SecretString": "canary-value", "ClientRequestToken": "t"},
            response={"ARN": ARN, "Name": "app/db", "VersionId": "v1"},
        ),
        CallFacts(
            "secretsmanager",
            "DeleteSecret",
            "req-3",
            1_765_000_000_789,
            400,
            "us-east-1",
            "10.0.0.3",
            "Boto3",
            None,
            access_key_id="AKIAUNKNOWN",
            request={"SecretId": "x"},
            error_code="AccessDeniedException",
            error_message="denied",
        ),
    ],
    ids=["read", "write", "refused"],
)
def test_the_stored_line_is_the_cloudtrail_record_of_the_call_in_fewer_bytes(
    facts: CallFacts,
) -> None:
    redactor = Redactor(load_service_model("secretsmanager"))
    record = api_call_record(facts, redactor, RecordCache())
    sent = encode_batch(1, [record])
    (received,) = decode_batch(sent).records
    assert received.line == record.line
    body = render(received.line)
    assert body["eventID"] == record.event_id
    assert body == record_body(record.event_id, summarize(facts, redactor))
    assert body["requestID"] == facts.request_id
    assert b"canary-value" not in sent
    assert len(record.line) < 0.7 * len(full_line(record.line))
