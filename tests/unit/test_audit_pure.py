"""The audit trail's pure parts: the hash chain, digest signatures, model-driven redaction,
CloudTrail's member spelling, and the syslog exporter (to a local UDP socket)."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import botocore.session
import orjson
import pytest
from botocore.model import ListShape, MapShape, Shape, StructureShape
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from secretsd.audit.chain import (
    GENESIS,
    DigestHead,
    DigestSigner,
    load_public_key,
    public_key_text,
    record_hash,
    signature_valid,
)
from secretsd.audit.exporters import SyslogExporter
from secretsd.audit.record import EventIds, make_record
from secretsd.audit.redact import HIDDEN, Redactor, lower_camel

SERVICES = ("secretsmanager", "kms", "iam", "sts")


def chain(records: list[bytes]) -> list[str]:
    out, prev = [], GENESIS
    for seq, record in enumerate(records, start=1):
        prev = record_hash(seq, prev, record)
        out.append(prev)
    return out


@given(st.lists(st.binary(max_size=64), min_size=2, max_size=8), st.data())
def test_any_change_removal_or_swap_changes_the_head(records: list[bytes], data: Any) -> None:
    head = chain(records)[-1]
    i = data.draw(st.integers(0, len(records) - 1))
    changed = list(records)
    changed[i] = changed[i] + b"x"
    assert chain(changed)[-1] != head
    assert chain(records[:i] + records[i + 1 :])[-1] != head
    j = data.draw(st.integers(0, len(records) - 1))
    swapped = list(records)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    assert (chain(swapped)[-1] == head) == (records[i] == records[j])


def test_digest_signatures_bind_every_field() -> None:
    signer = DigestSigner(3, b"s" * 32)
    head = DigestHead("123456789012", "us-east-1", 7, "ab" * 32, 1_700_000_000_000, "")
    signature = signer.sign(head)
    key = load_public_key(signer.public_key)
    assert signature_valid(key, head, signature)
    for other in (
        DigestHead("123456789013", head.region, head.seq, head.head_hash, head.created_ms, ""),
        DigestHead(head.account_id, "us-east-2", head.seq, head.head_hash, head.created_ms, ""),
        DigestHead(head.account_id, head.region, 8, head.head_hash, head.created_ms, ""),
        DigestHead(head.account_id, head.region, head.seq, "cd" * 32, head.created_ms, ""),
        DigestHead(head.account_id, head.region, head.seq, head.head_hash, 1, ""),
        DigestHead(head.account_id, head.region, head.seq, head.head_hash, head.created_ms, "x"),
    ):
        assert not signature_valid(key, other, signature)
    forger = load_public_key(public_key_text(Ed25519PrivateKey.generate().public_key()))
    assert not signature_valid(forger, head, signature)
    assert not signature_valid(key, head, "not base64!")
    # The same root key version derives the same key; another version another key.
    assert DigestSigner(3, b"s" * 32).public_key == signer.public_key
    assert DigestSigner(4, b"t" * 32).public_key != signer.public_key


@pytest.mark.parametrize(
    ("name", "spelt"),
    [("SecretId", "secretId"), ("ARN", "arn"), ("KMSKeyId", "kmsKeyId"), ("name", "name")],
)
def test_member_names_as_cloudtrail_spells_them(name: str, spelt: str) -> None:
    assert lower_camel(name) == spelt


def _sample(shape: Shape, depth: int = 0) -> Any:
    """A value for every member: strings carry a marker so a leak is visible."""
    if isinstance(shape, StructureShape):
        if depth > 4:
            return {}
        return {n: _sample(m, depth + 1) for n, m in shape.members.items()}
    if isinstance(shape, ListShape):
        return [_sample(shape.member, depth + 1)]
    if isinstance(shape, MapShape):
        return {"k": _sample(shape.value, depth + 1)}
    if shape.type_name == "blob":
        return b"LEAKED-BLOB"
    if shape.type_name in ("integer", "long"):
        return 1
    if shape.type_name == "boolean":
        return True
    if shape.type_name == "timestamp":
        return 0
    return f"LEAKED-{shape.name}" if shape.metadata.get("sensitive") else "ok"


def _values(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [v for item in node.values() for v in _values(item)]
    if isinstance(node, list):
        return [v for item in node for v in _values(item)]
    return [node]


@pytest.mark.parametrize("service", SERVICES)
def test_no_sensitive_member_of_any_operation_survives_redaction(service: str) -> None:
    model = botocore.session.get_session().get_service_model(service)
    redactor = Redactor(model)
    hidden = 0
    for name in model.operation_names:
        operation = model.operation_model(name)
        for shape, redact in (
            (operation.input_shape, redactor.request),
            (operation.output_shape, redactor.response),
        ):
            if shape is None:
                continue
            out = redact(name, _sample(shape))
            assert out is not None
            values = _values(out)
            assert not [v for v in values if isinstance(v, str) and v.startswith("LEAKED")]
            assert b"LEAKED-BLOB" not in values
            hidden += values.count(HIDDEN)
    assert hidden > 0  # the models do mark secrets, and they were found


def test_redaction_keeps_modelled_members_only() -> None:
    model = botocore.session.get_session().get_service_model("secretsmanager")
    redactor = Redactor(model)
    out = redactor.request(
        "CreateSecret",
        {"Name": "n", "SecretString": "v", "Unmodelled": "v", "Tags": [{"Key": "k", "Value": "v"}]},
    )
    assert out == {"name": "n", "secretString": HIDDEN, "tags": [{"key": "k", "value": "v"}]}
    assert redactor.request("NoSuchOperation", {"Name": "n"}) is None
    assert redactor.response("GetSecretValue", "not a mapping") is None


def test_syslog_exporter_sends_one_message_per_record() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(5)
        port = sink.getsockname()[1]
        exporter = SyslogExporter(f"udp://127.0.0.1:{port}")
        try:
            exporter.export([b'{"eventName":"GetSecretValue"}', b'{"eventName":"ListSecrets"}'])
            first, second = sink.recv(4096), sink.recv(4096)
        finally:
            exporter.close()
    # <facility authpriv (10) * 8 + severity info (6)> = <86>
    assert first == b'<86>secretsd-audit: {"eventName":"GetSecretValue"}'
    assert second.endswith(b'{"eventName":"ListSecrets"}')


@given(
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF) | st.characters())
)
def test_a_record_is_written_whatever_text_a_parameter_holds(text: str) -> None:
    """Lone surrogates (from JSON's \\udXXX escapes) are not UTF-8; the record is still made."""
    record = make_record("1", "us-east-1", 0, {"eventID": "e", "requestParameters": {"p": text}})
    assert orjson.loads(record.line)["requestParameters"]["p"].count("?") >= sum(
        0xD800 <= ord(c) <= 0xDFFF for c in text
    )


def test_event_ids_are_unique_uuid7() -> None:
    ids = EventIds()
    made = [ids.new(1_765_000_000_000 + i // 7) for i in range(3000)]
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert made == sorted(made, key=lambda t: t[:13])  # time first
