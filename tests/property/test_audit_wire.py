"""The worker -> audit writer process wire (audit/wire.py): what crosses it comes out the same,
and a record made from a summary that crossed it is the record the worker would have made."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretsd.audit.record import (
    CallFacts,
    CallSummary,
    RecordCache,
    api_call_record,
    scrubbed,
    summarize,
    summary_record,
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
from secretsd.auth.identity import Identity
from secretsd.protocol.model import load_service_model

text = st.text(max_size=40)
json_scalar = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=10,
)
whos = st.lists(st.dictionaries(text, json_value, max_size=4), min_size=1, max_size=3)


@st.composite
def batches(draw: st.DrawFn) -> list[CallSummary]:
    people = draw(whos)
    calls = []
    for _ in range(draw(st.integers(0, 6))):
        calls.append(
            CallSummary(
                account_id=draw(text),
                who=draw(st.sampled_from(people)),
                service=draw(text),
                operation=draw(text),
                request_id=draw(text),
                time_ms=draw(st.integers(0, 2**48)),
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
    return calls


@settings(max_examples=200)
@given(
    batches(),
    st.integers(0, 2**40),
    st.none() | st.tuples(st.integers(1, 99), st.binary(min_size=32, max_size=32)),
)
def test_a_batch_comes_out_as_it_went_in(
    calls: list[CallSummary], batch_id: int, signer: tuple[int, bytes] | None
) -> None:
    batch = decode_batch(encode_batch(batch_id, calls, signer))
    assert batch.batch_id == batch_id
    assert batch.signer == signer
    # Strings that are not UTF-8 (lone surrogates) cross with "?" in their place.
    assert batch.calls == [
        CallSummary(*orjson.loads(orjson.dumps(scrubbed(list(c))))) for c in calls
    ]


def test_each_identity_crosses_once_per_batch() -> None:
    who = {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"}
    calls = [_summary(who, f"r{i}") for i in range(50)]
    body = orjson.loads(encode_batch(1, calls))
    assert body["who"] == [who]
    assert {row[1] for row in body["calls"]} == {0}


def test_a_lone_surrogate_crosses_as_a_question_mark() -> None:
    calls = [_summary({"type": "Root"}, "r1", request={"secretId": "a\ud800b"})]
    (call,) = decode_batch(encode_batch(7, calls)).calls
    assert call.request == {"secretId": "a?b"}


@given(st.binary(max_size=200))
def test_bytes_that_are_no_batch_are_refused_as_such(payload: bytes) -> None:
    try:
        decode_batch(payload)
    except WireError:
        pass


@pytest.mark.parametrize(
    "payload",
    [
        b"[]",
        b'{"id": "1", "who": [], "calls": []}',
        b'{"id": 1, "who": [], "calls": [[1, 2]]}',
        b'{"id": 1, "who": [], "calls": [["a", 3' + b', "x"' * 14 + b"]]}",
        b'{"id": 1, "who": [{}], "calls": [], "signer": [1, "!!"]}',
        b'{"id": 1, "who": [{}], "calls": [], "signer": [1, "AAAA"]}',
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


ALICE = Identity(
    "111122223333",
    "arn:aws:iam::111122223333:user/alice",
    "arn:aws:iam::111122223333:user/alice",
    "User",
    "AIDAALICE",
    "user",
    "alice",
    "AKIAALICE",
)
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
def test_the_writer_process_makes_the_record_the_worker_would_have(facts: CallFacts) -> None:
    redactor = Redactor(load_service_model("secretsmanager"))
    inline = orjson.loads(api_call_record(facts, redactor, RecordCache()).line)
    sent = encode_batch(1, [summarize(facts, redactor, RecordCache())])
    (received,) = decode_batch(sent).calls
    remote = orjson.loads(summary_record(received, RecordCache()).line)
    assert inline.pop("eventID") != remote.pop("eventID")
    assert inline == remote
    assert b"canary-value" not in sent
