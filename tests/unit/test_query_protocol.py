"""The AWS query protocol: botocore's own serializer -> parse_form, and our XML -> botocore's parser."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from botocore.parsers import QueryParser
from botocore.serialize import QuerySerializer
from hypothesis import given
from hypothesis import strategies as st

from secretsd.errors import ServiceError
from secretsd.protocol.model import load_service_model
from secretsd.protocol.query import QueryService, parse_form, read_form, xml_text

IAM = load_service_model("iam")
STS = load_service_model("sts")
IAM_QUERY = QueryService.from_model(IAM)
STS_QUERY = QueryService.from_model(STS)


def _wire(model: Any, operation: str, params: dict[str, Any]) -> dict[str, str]:
    """What boto3 would send for `params`, decoded as the server decodes it."""
    request = QuerySerializer().serialize_to_request(params, model.operation_model(operation))
    body = request["body"]
    assert body["Action"] == operation
    return read_form(urlencode(body).encode(), b"")


def _parsed(model: Any, operation: str, xml: bytes, status: int = 200) -> dict[str, Any]:
    response = {"status_code": status, "headers": {}, "body": xml}
    shape = model.operation_model(operation).output_shape
    parsed: dict[str, Any] = QueryParser().parse(response, shape)
    return parsed


_NAMES = st.text(alphabet="abcXYZ019+=,.@_-", min_size=1, max_size=64)
_TAG_TEXT = st.text(alphabet="abc XYZ09_.:/=+-@", min_size=1, max_size=40)
_TAGS = st.lists(st.fixed_dictionaries({"Key": _TAG_TEXT, "Value": _TAG_TEXT}), max_size=5)


@given(name=_NAMES, tags=_TAGS)
def test_create_user_round_trip(name: str, tags: list[dict[str, str]]) -> None:
    params: dict[str, Any] = {"UserName": name, "Path": "/a/b/"}
    if tags:
        params["Tags"] = tags
    form = _wire(IAM, "CreateUser", params)
    assert IAM_QUERY.parse("CreateUser", form) == params


@given(keys=st.lists(_TAG_TEXT, min_size=0, max_size=6))
def test_string_list_round_trip_including_empty(keys: list[str]) -> None:
    form = _wire(IAM, "UntagUser", {"UserName": "u", "TagKeys": keys})
    assert parse_form(IAM.operation_model("UntagUser"), form) == {"UserName": "u", "TagKeys": keys}


@given(seconds=st.integers(min_value=900, max_value=43200), tags=_TAGS)
def test_assume_role_integers_and_nested_lists(seconds: int, tags: list[dict[str, str]]) -> None:
    params: dict[str, Any] = {
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "RoleSessionName": "s1",
        "DurationSeconds": seconds,
        "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}],
    }
    if tags:
        params["Tags"] = tags
    assert STS_QUERY.parse("AssumeRole", _wire(STS, "AssumeRole", params)) == params


def test_booleans_and_enums() -> None:
    form = _wire(IAM, "ListPolicies", {"Scope": "Local", "OnlyAttached": True, "MaxItems": 5})
    assert IAM_QUERY.parse("ListPolicies", form) == {
        "Scope": "Local",
        "OnlyAttached": True,
        "MaxItems": 5,
    }


def test_validation_error_in_iam_words() -> None:
    with pytest.raises(ServiceError) as exc:
        IAM_QUERY.parse("CreateUser", {"Action": "CreateUser", "UserName": "bad name"})
    assert exc.value.code == "ValidationException"
    status, body = IAM_QUERY.error(exc.value, "rid")
    root = ET.fromstring(body)  # noqa: S314 -- our own output
    ns = "{https://iam.amazonaws.com/doc/2010-05-08/}"
    assert status == 400
    assert root.findtext(f"{ns}Error/{ns}Code") == "ValidationError"
    assert root.findtext(f"{ns}Error/{ns}Type") == "Sender"
    assert root.findtext(f"{ns}Error/{ns}Message") == (
        "1 validation error detected: Value 'bad name' at 'userName' failed to satisfy"
        " constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
    )
    assert root.findtext(f"{ns}RequestId") == "rid"


def test_missing_required_member() -> None:
    with pytest.raises(ServiceError) as exc:
        STS_QUERY.parse("AssumeRole", {"RoleArn": "arn:aws:iam::123456789012:role/r"})
    assert exc.value.message == (
        "1 validation error detected: Value null at 'roleSessionName' failed to satisfy"
        " constraint: Member must not be null"
    )


@pytest.mark.parametrize(
    ("code", "expected", "status"),
    [
        ("NoSuchEntity", "NoSuchEntity", 404),
        ("EntityAlreadyExists", "EntityAlreadyExists", 409),
        ("LimitExceeded", "LimitExceeded", 409),
        ("DeleteConflict", "DeleteConflict", 409),
        ("MalformedPolicyDocument", "MalformedPolicyDocument", 400),
        ("AccessDeniedException", "AccessDenied", 403),
        ("UnrecognizedClientException", "InvalidClientTokenId", 403),
    ],
)
def test_error_codes_and_statuses(code: str, expected: str, status: int) -> None:
    got_status, body = IAM_QUERY.error(ServiceError(code, "m"), "rid")
    parsed = _parsed(IAM, "CreateUser", body, got_status)
    assert got_status == status
    assert parsed["Error"]["Code"] == expected and parsed["Error"]["Message"] == "m"


def test_response_parses_with_botocore() -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    user = {
        "Path": "/",
        "UserName": "a<b&c",
        "UserId": "AIDAAAAAAAAAAAAAAAAAA",
        "Arn": "arn:aws:iam::123456789012:user/a",
        "CreateDate": created,
        "Tags": [{"Key": "k", "Value": "v"}],
    }
    xml = IAM_QUERY.response("GetUser", {"User": user}, "rid")
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<GetUserResponse')
    parsed = _parsed(IAM, "GetUser", xml)
    assert parsed["User"] == user
    assert parsed["ResponseMetadata"]["RequestId"] == "rid"


def test_list_members_and_booleans_parse() -> None:
    xml = IAM_QUERY.response(
        "ListAccessKeys",
        {"AccessKeyMetadata": [{"UserName": "u", "AccessKeyId": "AKIA1", "Status": "Active"}],
         "IsTruncated": True, "Marker": "m"},
        "rid",
    )  # fmt: skip
    assert b"<member>" in xml
    parsed = _parsed(IAM, "ListAccessKeys", xml)
    assert parsed["AccessKeyMetadata"][0]["AccessKeyId"] == "AKIA1"
    assert parsed["IsTruncated"] is True and parsed["Marker"] == "m"


def test_policy_documents_are_url_encoded() -> None:
    document = '{"Version": "2012-10-17", "Statement": []}'
    xml = IAM_QUERY.response(
        "GetUserPolicy", {"UserName": "u", "PolicyName": "p", "PolicyDocument": document}, "r"
    )
    assert b"%7B%22Version%22" in xml
    assert _parsed(IAM, "GetUserPolicy", xml)["PolicyDocument"] != ""


def test_empty_output_operation() -> None:
    xml = IAM_QUERY.response("DeleteUser", None, "rid")
    root = ET.fromstring(xml)  # noqa: S314 -- our own output
    assert root.tag == "{https://iam.amazonaws.com/doc/2010-05-08/}DeleteUserResponse"
    assert [child.tag.split("}")[1] for child in root] == ["ResponseMetadata"]


def test_sts_namespace() -> None:
    xml = STS_QUERY.response("GetCallerIdentity", {"UserId": "u", "Account": "1", "Arn": "a"}, "r")
    assert b'xmlns="https://sts.amazonaws.com/doc/2011-06-15/"' in xml
    assert b"<GetCallerIdentityResult>" in xml


@given(st.text(max_size=30))
def test_any_message_gives_well_formed_xml(message: str) -> None:
    _, body = IAM_QUERY.error(ServiceError("ValidationException", message), "rid")
    ET.fromstring(body)  # noqa: S314 -- our own output; never a broken document
    assert xml_text("plain") == "plain"


def test_read_form_prefers_body_and_first_value() -> None:
    assert read_form(b"Action=GetUser&A=1&A=2", b"Action=X") == {"Action": "GetUser", "A": "1"}
    assert read_form(b"", b"Action=ListUsers&Version=2010-05-08")["Action"] == "ListUsers"


_XML_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF, include_characters="\r\t"),
    min_size=1,
    max_size=20,
)


@given(
    names=st.lists(_XML_TEXT, max_size=4),
    tags=st.lists(st.fixed_dictionaries({"Key": _XML_TEXT, "Value": _XML_TEXT}), max_size=3),
    truncated=st.booleans(),
    created=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
)
def test_responses_round_trip_through_botocore(
    names: list[str], tags: list[dict[str, str]], truncated: bool, created: datetime
) -> None:
    created = created.replace(microsecond=created.microsecond // 1000 * 1000)
    users = [
        {"Path": "/", "UserName": n, "UserId": "AIDA", "Arn": "arn", "CreateDate": created}
        for n in names
    ]
    listing = {"Users": users, "IsTruncated": truncated}
    assert _strip(_parsed(IAM, "ListUsers", IAM_QUERY.response("ListUsers", listing, "r"))) == (
        listing
    )
    tagged = {"Tags": tags, "IsTruncated": False}
    parsed = _parsed(IAM, "ListUserTags", IAM_QUERY.response("ListUserTags", tagged, "r"))
    assert _strip(parsed) == tagged


def _strip(parsed: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in parsed.items() if k != "ResponseMetadata"}
