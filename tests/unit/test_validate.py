"""Model-driven input validation, driven by the real Secrets Manager model from botocore."""

from __future__ import annotations

import base64
import re
import time
from datetime import UTC, datetime
from typing import Any

import botocore.session
import orjson
import pytest
from botocore.model import ShapeResolver, StructureShape
from botocore.serialize import create_serializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretsd.errors import ServiceError
from secretsd.protocol.validate import (
    MAX_REPORTED_ERRORS,
    Validator,
    java_regex_to_python,
    parse_input,
)

SESSION = botocore.session.get_session()
MODEL = SESSION.get_service_model("secretsmanager")
VALIDATOR = Validator(MODEL)
TOKEN = "6b1b4fb0-1a53-4d3b-9a8e-0c5a2c0c7e11"
FILTER_KEYS = "[owning-service, all, tag-value, primary-region, tag-key, name, description]"


def parse(operation: str, params: object) -> dict[str, Any]:
    return VALIDATOR.parse_input(operation, params)


def failure(operation: str, params: object) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        parse(operation, params)
    assert caught.value.status == 400
    return caught.value


def validation_message(operation: str, params: object) -> str:
    error = failure(operation, params)
    assert error.code == "ValidationException", error.message
    return error.message


def serialization_message(operation: str, params: object) -> str:
    error = failure(operation, params)
    assert error.code == "SerializationException", error.message
    return error.message


def one(path: str, constraint: str, value: str | None = None) -> str:
    shown = "" if value is None else f" '{value}'"
    return (
        f"1 validation error detected: Value{shown} at '{path}' "
        f"failed to satisfy constraint: {constraint}"
    )


def synthetic(shapes: dict[str, Any], name: str = "Input") -> StructureShape:
    shape = ShapeResolver(shapes).get_shape_by_name(name)
    assert isinstance(shape, StructureShape)
    return shape


# --- valid input -------------------------------------------------------------------------------


def test_valid_get_secret_value_is_returned_unchanged() -> None:
    params = {"SecretId": "prod/db", "VersionStage": "AWSCURRENT"}
    assert parse("GetSecretValue", params) == params


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        (
            "CreateSecret",
            {
                "Name": "Valid/_+=.@-Name",
                "ClientRequestToken": TOKEN,
                "Description": "d",
                "SecretBinary": b"\x00\xffbinary",
                "Tags": [{"Key": "k", "Value": ""}],
                "ForceOverwriteReplicaSecret": True,
            },
        ),
        ("PutSecretValue", {"SecretId": "s", "SecretString": "v", "VersionStages": ["A", "B"]}),
        (
            "ListSecrets",
            {
                "IncludePlannedDeletion": False,
                "MaxResults": 100,
                "Filters": [{"Key": "name", "Values": ["!/prod", "a b:c_@/+=.-!"]}],
                "SortOrder": "desc",
                "SortBy": "created-date",
            },
        ),
        (
            "RotateSecret",
            {
                "SecretId": "s",
                "ClientRequestToken": TOKEN,
                "RotationRules": {"AutomaticallyAfterDays": 1000, "Duration": "24h"},
                "RotateImmediately": False,
            },
        ),
        ("GetRandomPassword", {"PasswordLength": 4096, "ExcludeCharacters": ""}),
        ("UntagResource", {"SecretId": "s", "TagKeys": ["k" * 128]}),
        ("DeleteSecret", {"SecretId": "s", "RecoveryWindowInDays": 30}),
    ],
)
def test_what_botocore_sends_parses_back_to_the_same_params(
    operation: str, params: dict[str, Any]
) -> None:
    operation_model = MODEL.operation_model(operation)
    body = create_serializer("json").serialize_to_request(params, operation_model)["body"]
    assert parse(operation, orjson.loads(body)) == params


def test_unknown_members_are_ignored_and_dropped() -> None:
    assert parse("GetSecretValue", {"SecretId": "s", "Bogus": [1, {"x": None}]}) == {
        "SecretId": "s"
    }


def test_null_members_are_absent() -> None:
    assert parse("GetSecretValue", {"SecretId": "s", "VersionId": None}) == {"SecretId": "s"}
    message = validation_message("GetSecretValue", {"SecretId": None})
    assert message == one("secretId", "Member must not be null").replace(
        "Value at", "Value null at"
    )


def test_null_list_entries_are_dropped() -> None:
    params = {"SecretId": "s", "TagKeys": [None, "a", None]}
    assert parse("UntagResource", params) == {"SecretId": "s", "TagKeys": ["a"]}


def test_idempotency_token_is_optional() -> None:
    assert parse("CreateSecret", {"Name": "n"}) == {"Name": "n"}


# --- constraints (aws-behaviour.md section 2) -------------------------------------------------


def test_missing_required_member() -> None:
    message = validation_message("GetSecretValue", {})
    assert message == (
        "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_long_name() -> None:
    name = "n" * 513
    assert validation_message("CreateSecret", {"Name": name}) == one(
        "name", "Member must have length less than or equal to 512", name
    )
    assert parse("CreateSecret", {"Name": "n" * 512})


def test_long_description() -> None:
    description = "d" * 2049
    assert validation_message("UpdateSecret", {"SecretId": "s", "Description": description}) == (
        one("description", "Member must have length less than or equal to 2048", description)
    )


def test_short_client_request_token_shows_the_token() -> None:
    token = "t" * 31
    assert validation_message("CreateSecret", {"Name": "n", "ClientRequestToken": token}) == (
        one("clientRequestToken", "Member must have length greater than or equal to 32", token)
    )


def test_long_secret_id() -> None:
    secret_id = "s" * 2049
    assert validation_message("DescribeSecret", {"SecretId": secret_id}) == one(
        "secretId", "Member must have length less than or equal to 2048", secret_id
    )
    assert validation_message("DescribeSecret", {"SecretId": ""}) == one(
        "secretId", "Member must have length greater than or equal to 1", ""
    )


def test_sensitive_values_are_left_out() -> None:
    # The exact text AWS returned to a CDK deployment with an empty SecretString.
    assert validation_message("PutSecretValue", {"SecretId": "s", "SecretString": ""}) == (
        "1 validation error detected: Value at 'secretString' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )
    secret = "hunter2-" * 8193
    message = validation_message("CreateSecret", {"Name": "n", "SecretString": secret})
    assert message == one("secretString", "Member must have length less than or equal to 65536")
    assert "hunter2" not in message


def test_sensitive_pattern_failure_leaves_the_value_out() -> None:
    token = "not a token!" * 4
    message = validation_message("PutSecretValue", {"SecretId": "s", "RotationToken": token})
    assert message == one(
        "rotationToken", r"Member must satisfy regular expression pattern: ^[a-zA-Z0-9\-]+$"
    )


def test_secret_binary_length_counts_decoded_bytes() -> None:
    # Format of the real message quoted in cluster-api-provider-aws #1531 (limit then 10240).
    encoded = base64.b64encode(b"\0" * 65537).decode()
    assert validation_message("PutSecretValue", {"SecretId": "s", "SecretBinary": encoded}) == (
        "1 validation error detected: Value at 'secretBinary' failed to satisfy constraint: "
        "Member must have length less than or equal to 65536"
    )
    exact = base64.b64encode(b"\0" * 65536).decode()
    parsed = parse("PutSecretValue", {"SecretId": "s", "SecretBinary": exact})
    assert parsed["SecretBinary"] == b"\0" * 65536
    assert validation_message("PutSecretValue", {"SecretId": "s", "SecretBinary": ""}) == one(
        "secretBinary", "Member must have length greater than or equal to 1"
    )


def test_string_length_counts_utf16_units_like_java() -> None:
    emoji = "\N{GRINNING FACE}"  # two UTF-16 code units
    assert parse("CreateSecret", {"Name": emoji * 256})
    message = validation_message("CreateSecret", {"Name": emoji * 257})
    assert message == one("name", "Member must have length less than or equal to 512", emoji * 257)
    assert parse("CreateSecret", {"Name": "\N{LATIN SMALL LETTER E WITH ACUTE}" * 512})


def test_version_stages_list_length() -> None:
    assert validation_message("PutSecretValue", {"SecretId": "s", "VersionStages": []}) == one(
        "versionStages", "Member must have length greater than or equal to 1", "[]"
    )
    stages = [f"S{i}" for i in range(21)]
    assert validation_message("PutSecretValue", {"SecretId": "s", "VersionStages": stages}) == (
        one(
            "versionStages",
            "Member must have length less than or equal to 20",
            "[" + ", ".join(stages) + "]",
        )
    )


def test_list_of_strings_is_reported_once_with_every_member_constraint() -> None:
    keys = ["ok", "k" * 129, ""]
    message = validation_message("UntagResource", {"SecretId": "s", "TagKeys": keys})
    assert message == one(
        "tagKeys",
        "Member must satisfy constraint: [Member must have length less than or equal to 128, "
        "Member must have length greater than or equal to 1]",
        f"[ok, {'k' * 129}, ]",
    )


def test_nested_list_entries_use_one_based_member_paths() -> None:
    tags = [{"Key": "a", "Value": "v"}, {"Key": "b", "Value": "v" * 257}]
    message = validation_message("TagResource", {"SecretId": "s", "Tags": tags})
    assert message == one(
        "tags.2.member.value", "Member must have length less than or equal to 256", "v" * 257
    )


def test_filter_key_enum() -> None:
    params = {"Filters": [{"Key": "bogus", "Values": ["x"]}]}
    assert validation_message("ListSecrets", params) == one(
        "filters.1.member.key", f"Member must satisfy enum value set: {FILTER_KEYS}", "bogus"
    )
    # Every enum value of the model is listed, each once.
    enum = MODEL.shape_for("FilterNameStringType").enum
    assert sorted(FILTER_KEYS.strip("[]").split(", ")) == sorted(enum)


def test_filter_value_pattern() -> None:
    params = {"Filters": [{"Key": "name", "Values": ["ok", "a*b"]}]}
    assert validation_message("ListSecrets", params) == one(
        "filters.1.member.values",
        "Member must satisfy constraint: [Member must have length less than or equal to 512, "
        r"Member must satisfy regular expression pattern: ^\!?[a-zA-Z0-9 :_@\/\+\=\.\-\!]*$]",
        "[ok, a*b]",
    )


def test_sort_order_enum() -> None:
    assert validation_message("ListSecrets", {"SortOrder": "up"}) == one(
        "sortOrder", "Member must satisfy enum value set: [asc, desc]", "up"
    )
    assert validation_message("ListSecrets", {"SortBy": "size"}) == one(
        "sortBy",
        "Member must satisfy enum value set: "
        "[last-accessed-date, last-changed-date, name, created-date]",
        "size",
    )


@pytest.mark.parametrize(
    ("operation", "params", "path", "constraint", "shown"),
    [
        ("GetRandomPassword", {"PasswordLength": 0}, "passwordLength", "greater than or equal to 1", "0"),
        ("GetRandomPassword", {"PasswordLength": 4097}, "passwordLength", "less than or equal to 4096", "4097"),
        ("ListSecrets", {"MaxResults": 101}, "maxResults", "less than or equal to 100", "101"),
        ("ListSecrets", {"MaxResults": 0}, "maxResults", "greater than or equal to 1", "0"),
        ("BatchGetSecretValue", {"MaxResults": 21}, "maxResults", "less than or equal to 20", "21"),
        (
            "RotateSecret",
            {"SecretId": "s", "RotationRules": {"AutomaticallyAfterDays": 1001}},
            "rotationRules.automaticallyAfterDays",
            "less than or equal to 1000",
            "1001",
        ),
    ],
)  # fmt: skip
def test_integer_ranges(
    operation: str, params: dict[str, Any], path: str, constraint: str, shown: str
) -> None:
    assert validation_message(operation, params) == one(
        path, f"Member must have value {constraint}", shown
    )


def test_decimals_are_truncated_for_integers() -> None:
    assert parse("GetRandomPassword", {"PasswordLength": 5.9}) == {"PasswordLength": 5}
    assert validation_message("ListSecrets", {"MaxResults": 0.5}) == one(
        "maxResults", "Member must have value greater than or equal to 1", "0"
    )


def test_integers_beyond_32_bits_reach_range_validation() -> None:
    assert validation_message("ListSecrets", {"MaxResults": 2**40}) == one(
        "maxResults", "Member must have value less than or equal to 100", str(2**40)
    )
    assert serialization_message("ListSecrets", {"MaxResults": 1e30}) == ""


def test_duration_pattern_must_match_the_whole_value() -> None:
    rules = {"AutomaticallyAfterDays": 1, "Duration": "2x"}
    message = validation_message("RotateSecret", {"SecretId": "s", "RotationRules": rules})
    assert message == one(
        "rotationRules.duration", "Member must satisfy regular expression pattern: [0-9]+h", "2x"
    )


def test_pattern_is_reported_before_length_for_one_value() -> None:
    # Cognito reports "pattern; length" for one value that breaks both.
    name = "bad name!" * 8
    message = validation_message("GetResourcePolicy", {"SecretId": "s", "PolicyName": name})
    assert message == (
        f"2 validation errors detected: Value '{name}' at 'policyName' failed to satisfy "
        r"constraint: Member must satisfy regular expression pattern: [0-9A-Za-z\-\_]+; "
        f"Value '{name}' at 'policyName' failed to satisfy constraint: "
        "Member must have length less than or equal to 64"
    )


def test_several_errors_in_one_message_in_hash_map_order() -> None:
    # Coral walks members in java.util.HashMap order of their lowerCamel names, which is why
    # clientRequestToken comes first here (see the module docstring for the evidence).
    params = {
        "Name": "n" * 513,
        "ClientRequestToken": "short",
        "Description": "d" * 2049,
        "SecretString": "",
        "Tags": [{"Key": "", "Value": "v"}],
    }
    message = validation_message("CreateSecret", params)
    assert message.startswith("5 validation errors detected: Value 'short' at ")
    parts = message.removeprefix("5 validation errors detected: ").split("; ")
    paths = [part.split(" at '")[1].split("'")[0] for part in parts]
    assert paths == [
        "clientRequestToken",
        "name",
        "description",
        "secretString",
        "tags.1.member.key",
    ]


def test_at_most_ten_errors_are_reported() -> None:
    tags = [{"Key": "", "Value": "v"} for _ in range(15)]
    message = validation_message("TagResource", {"SecretId": "s", "Tags": tags})
    assert message.startswith(f"{MAX_REPORTED_ERRORS} validation errors detected: ")
    assert message.count("failed to satisfy constraint") == MAX_REPORTED_ERRORS
    assert "tags.10.member.key" in message
    assert "tags.11.member.key" not in message


# --- wrong JSON types --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"SecretId": 1}, "NUMBER_VALUE can not be converted to a String"),
        ({"SecretId": 1.5}, "NUMBER_VALUE can not be converted to a String"),
        ({"SecretId": True}, "TRUE_VALUE can not be converted to a String"),
        ({"SecretId": False}, "FALSE_VALUE can not be converted to a String"),
        ({"SecretId": ["s"]}, "Start of list found where not expected"),
        ({"SecretId": {"a": 1}}, "Start of structure or map found where not expected."),
    ],
)
def test_wrong_type_for_a_string(params: dict[str, Any], message: str) -> None:
    assert serialization_message("GetSecretValue", params) == message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("12", "STRING_VALUE can not be converted to a Long"),
        (True, "TRUE_VALUE can not be converted to a Long"),
        ([1], "Start of list found where not expected"),
        ({}, "Start of structure or map found where not expected."),
    ],
)
def test_wrong_type_for_a_long(value: object, message: str) -> None:
    assert serialization_message("GetRandomPassword", {"PasswordLength": value}) == message


def test_wrong_type_for_an_integer() -> None:
    assert serialization_message("ListSecrets", {"MaxResults": "1"}) == (
        "STRING_VALUE can not be converted to an Integer"
    )


TRUE_WORDS = ["true", "YES", "y", "T", "1"]
FALSE_WORDS = ["false", "No", "n", "f", "0"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(word, True) for word in TRUE_WORDS] + [(word, False) for word in FALSE_WORDS],
)
def test_booleans_given_as_strings(value: str, expected: bool) -> None:
    assert parse("GetRandomPassword", {"ExcludeNumbers": value}) == {"ExcludeNumbers": expected}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("maybe", "STRING_VALUE can not be converted to an Boolean"),
        (" true", "STRING_VALUE can not be converted to an Boolean"),
        (1, "NUMBER_VALUE can not be converted to a Boolean"),
        ([], "Start of list found where not expected"),
        ({}, "Start of structure or map found where not expected."),
    ],
)
def test_wrong_type_for_a_boolean(value: object, message: str) -> None:
    assert serialization_message("GetRandomPassword", {"IncludeSpace": value}) == message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("AWSCURRENT", "Expected list or null"),
        (1, "Expected list or null"),
        ({"a": "b"}, "Start of structure or map found where not expected."),
        ([1], "NUMBER_VALUE can not be converted to a String"),
    ],
)
def test_wrong_type_for_a_list(value: object, message: str) -> None:
    assert serialization_message("PutSecretValue", {"SecretId": "s", "VersionStages": value}) == (
        message
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x", "Expected null"),
        (7, "Expected null"),
        ([{"AutomaticallyAfterDays": 1}], "Start of list found where not expected"),
    ],
)
def test_wrong_type_for_a_structure(value: object, message: str) -> None:
    assert serialization_message("RotateSecret", {"SecretId": "s", "RotationRules": value}) == (
        message
    )


@pytest.mark.parametrize("value", ["Zm9", "Zm 9v", "Zm9v!", "ä"])
def test_bad_base64_is_a_serialization_error_without_message(value: str) -> None:
    assert serialization_message("PutSecretValue", {"SecretId": "s", "SecretBinary": value}) == ""


def test_wrong_type_for_a_blob() -> None:
    assert serialization_message("PutSecretValue", {"SecretId": "s", "SecretBinary": 5}) == (
        "NUMBER_VALUE can not be converted to a Blob"
    )


@pytest.mark.parametrize("body", [None, "x", 1, 1.5, True])
def test_top_level_scalars_are_serialization_errors_without_message(body: object) -> None:
    assert serialization_message("GetSecretValue", body) == ""


def test_top_level_list() -> None:
    assert serialization_message("ListSecrets", []) == "Start of list found where not expected"


def test_type_errors_win_over_validation_errors() -> None:
    # Deserialisation fails first: the missing SecretId is never reported.
    assert serialization_message("PutSecretValue", {"VersionStages": "x"}) == (
        "Expected list or null"
    )


def test_unknown_operation() -> None:
    with pytest.raises(KeyError):
        VALIDATOR.parse_input("NoSuchOperation", {})


# --- shapes the Secrets Manager model does not use (KMS uses maps and timestamps) ---------------

SYNTHETIC = {
    "Input": {
        "type": "structure",
        "required": ["Context"],
        "members": {
            "Context": {"shape": "Context"},
            "When": {"shape": "When"},
            "Ratio": {"shape": "Ratio"},
            "Runtime": {"shape": "Runtime"},
            "Hidden": {"shape": "Hidden"},
            "Entries": {"shape": "Entries"},
        },
    },
    "Context": {"type": "map", "key": {"shape": "Key"}, "value": {"shape": "Value"}, "max": 3},
    "Key": {"type": "string", "min": 1, "max": 4, "pattern": "[a-z]+"},
    "Value": {"type": "string", "max": 3},
    "When": {"type": "timestamp"},
    "Ratio": {"type": "double", "min": 0.0, "max": 1.0},
    "Runtime": {
        "type": "string",
        # Lambda's runtimes when AWS printed them as
        # "[nodejs12.x, provided, nodejs16.x, nodejs14.x, ruby2.7, java11, dotnet6, go1.x,
        # provided.al2, java8, java8.al2, dotnetcore3.1, python3.7, python3.8, python3.9]".
        "enum": [
            "nodejs12.x",
            "nodejs14.x",
            "nodejs16.x",
            "java8",
            "java8.al2",
            "java11",
            "python3.7",
            "python3.8",
            "python3.9",
            "dotnetcore3.1",
            "dotnet6",
            "go1.x",
            "ruby2.7",
            "provided",
            "provided.al2",
        ],
    },
    "Hidden": {"type": "structure", "sensitive": True, "members": {"Word": {"shape": "Key"}}},
    "Entries": {"type": "list", "member": {"shape": "Entry"}, "max": 1},
    "Entry": {
        "type": "structure",
        "members": {"Name": {"shape": "Value"}, "Secret": {"shape": "Secret"}},
    },
    "Secret": {"type": "string", "sensitive": True},
}
SYNTHETIC_INPUT = synthetic(SYNTHETIC)


def synthetic_failure(params: object) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        parse_input(SYNTHETIC_INPUT, params)
    return caught.value


def test_timestamps_become_aware_datetimes() -> None:
    parsed = parse_input(SYNTHETIC_INPUT, {"Context": {}, "When": 1700000000.25})
    assert parsed["When"] == datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC)
    assert synthetic_failure({"Context": {}, "When": "2023-01-01"}).message == (
        "STRING_VALUE can not be converted to a Timestamp"
    )


def test_enum_sets_print_in_java_hash_set_order() -> None:
    message = synthetic_failure({"Context": {}, "Runtime": "cobol"}).message
    assert message.endswith(
        "Member must satisfy enum value set: [nodejs12.x, provided, nodejs16.x, nodejs14.x, "
        "ruby2.7, java11, dotnet6, go1.x, provided.al2, java8, java8.al2, dotnetcore3.1, "
        "python3.7, python3.8, python3.9]"
    )


def test_map_keys_and_values() -> None:
    message = synthetic_failure({"Context": {"ok": "v", "BAD": "long"}}).message
    assert message == (
        "2 validation errors detected: Value '{ok=v, BAD=long}' at 'context' failed to satisfy "
        "constraint: Map keys must satisfy constraint: [Member must have length less than or "
        "equal to 4, Member must have length greater than or equal to 1, Member must satisfy "
        "regular expression pattern: [a-z]+]; Value '{ok=v, BAD=long}' at 'context' failed to "
        "satisfy constraint: Map value must satisfy constraint: [Member must have length less "
        "than or equal to 3]"
    )
    assert synthetic_failure({"Context": "x"}).message == "Expected map or null"
    assert synthetic_failure({"Context": ["x"]}).message == "Start of list found where not expected"
    assert parse_input(SYNTHETIC_INPUT, {"Context": {"a": None}}) == {"Context": {}}


def test_double_ranges() -> None:
    assert synthetic_failure({"Context": {}, "Ratio": 1.5}).message == one(
        "ratio", "Member must have value less than or equal to 1.0", "1.5"
    )
    assert parse_input(SYNTHETIC_INPUT, {"Context": {}, "Ratio": 1}) == {
        "Context": {},
        "Ratio": 1.0,
    }
    assert synthetic_failure({"Context": {}, "Ratio": "x"}).message == (
        "STRING_VALUE can not be converted to a Double"
    )


def test_members_of_a_sensitive_structure_are_hidden() -> None:
    assert synthetic_failure({"Context": {}, "Hidden": {"Word": "TOP"}}).message == one(
        "hidden.word", "Member must satisfy regular expression pattern: [a-z]+"
    )


def test_structures_print_without_their_sensitive_members() -> None:
    entries = [{"Name": "a", "Secret": "TOPSECRET"}, {"Name": "b"}]
    message = synthetic_failure({"Context": {}, "Entries": entries}).message
    assert message == one(
        "entries",
        "Member must have length less than or equal to 1",
        "[Entry(Name=a, Secret=*** Sensitive Data Redacted ***), Entry(Name=b)]",
    )


def test_nested_structure_members_in_lists() -> None:
    entries = [{"Name": "long", "Secret": "TOPSECRET"}]
    message = synthetic_failure({"Context": {}, "Entries": entries}).message
    assert message == one(
        "entries.1.member.name", "Member must have length less than or equal to 3", "long"
    )


# --- Java regular expressions ------------------------------------------------------------------


def no_categories(name: str) -> list[tuple[int, int]]:
    raise AssertionError(name)


def test_filter_value_pattern_translation() -> None:
    pattern = MODEL.shape_for("FilterValueStringType").metadata["pattern"]
    compiled = re.compile(java_regex_to_python(pattern, no_categories), re.ASCII)
    for good in ["", "abc", "!abc", "a b:c_@/+=.-!", "!!x", "tag-key:Value/1"]:
        assert compiled.fullmatch(good), good
    for bad in ["a*b", "a,b", "ä", "a\nb", "(x)"]:
        assert not compiled.fullmatch(bad), bad


def test_java_specific_escapes() -> None:
    assert java_regex_to_python(r"a\z", no_categories) == r"a\Z"
    assert re.fullmatch(java_regex_to_python(r"\e", no_categories), "\x1b")


def test_java_dot_stops_at_every_java_line_terminator() -> None:
    compiled = re.compile(java_regex_to_python("a.b", no_categories), re.ASCII)
    assert compiled.fullmatch("a-b")
    for terminator in "\n\r\u0085\u2028\u2029":
        assert not compiled.fullmatch(f"a{terminator}b")


@pytest.mark.parametrize("pattern", [r"\Qx\E", r"[a-z&&[def]]", r"\x{41}", r"[a[b]]", r"\R", "[ab"])
def test_untranslatable_java_regexes_fail_loudly(pattern: str) -> None:
    with pytest.raises(ValueError):
        java_regex_to_python(pattern, no_categories)


@pytest.mark.parametrize("service", ["secretsmanager", "kms", "sts"])
def test_every_model_pattern_compiles(service: str) -> None:
    Validator(SESSION.get_service_model(service))


def test_unicode_properties() -> None:
    # STS tag keys use \p{L}\p{Z}\p{N}, the one place these models need Unicode classes.
    sts = Validator(SESSION.get_service_model("sts"))
    params = {
        "RoleArn": "a" * 20,
        "RoleSessionName": "session",
        "Tags": [{"Key": "Ünï 9", "Value": ""}],
    }
    assert sts.parse_input("AssumeRole", params)["Tags"] == [{"Key": "Ünï 9", "Value": ""}]
    params["Tags"] = [{"Key": "no*star", "Value": ""}]
    with pytest.raises(ServiceError, match=r"tags\.1\.member\.key"):
        sts.parse_input("AssumeRole", params)


# --- properties --------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def member_names(shape: Any) -> list[str]:
    return list(shape.members) if shape is not None else []


ALL_MEMBER_NAMES = sorted(
    {
        name
        for shape_name in MODEL.shape_names
        for name in member_names(
            MODEL.shape_for(shape_name)
            if MODEL.shape_for(shape_name).type_name == "structure"
            else None
        )
    }
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, object]:
    operation = draw(st.sampled_from(MODEL.operation_names))
    keys = st.sampled_from(ALL_MEMBER_NAMES) | st.text(max_size=8)
    nested = st.recursive(
        json_values,
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=4)
        ),
        max_leaves=10,
    )
    body = draw(st.dictionaries(keys, nested, max_size=6) | json_values)
    return operation, body


KNOWN_SERIALIZATION_MESSAGES = {
    "",
    "Start of list found where not expected",
    "Start of structure or map found where not expected.",
    "Expected list or null",
    "Expected map or null",
    "Expected null",
}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_any_json_yields_a_result_or_a_service_error(request: tuple[str, object]) -> None:
    operation, body = request
    members = set(MODEL.operation_model(operation).input_shape.members)
    try:
        parsed = parse(operation, body)
    except ServiceError as error:
        assert error.code in ("SerializationException", "ValidationException")
        assert error.status == 400
        if error.code == "SerializationException":
            assert error.message in KNOWN_SERIALIZATION_MESSAGES or re.fullmatch(
                r"(STRING|NUMBER|TRUE|FALSE)_VALUE can not be converted to an? [A-Z][a-z]+",
                error.message,
            ), error.message
        if error.code == "ValidationException":
            count = int(error.message.split(" ", 1)[0])
            assert 1 <= count <= MAX_REPORTED_ERRORS
            assert error.message.count("; Value ") == count - 1
    else:
        assert set(parsed) <= members


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=4).map(lambda s: s * 65537) | st.just(""))
def test_secret_strings_never_appear_in_messages(secret: str) -> None:
    message = validation_message("PutSecretValue", {"SecretId": "s", "SecretString": secret})
    bound = "greater than or equal to 1" if secret == "" else "less than or equal to 65536"
    assert message == one("secretString", f"Member must have length {bound}")


def test_get_secret_value_validates_in_microseconds() -> None:
    params = {
        "SecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
        "VersionStage": "AWSCURRENT",
    }
    rounds = 20000
    start = time.perf_counter()
    for _ in range(rounds):
        VALIDATOR.parse_input("GetSecretValue", params)
    per_call = (time.perf_counter() - start) / rounds
    assert per_call < 20e-6  # about 2.5 µs on the development machine; generous for CI
