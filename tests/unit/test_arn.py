from __future__ import annotations

import re

import pytest

from secretsd.arn import (
    SECRET_NAME_ERROR,
    SecretRef,
    format_partial_secret_arn,
    format_secret_arn,
    has_suffix_shape,
    new_suffix,
    parse_secret_id,
    validate_secret_name,
)
from secretsd.errors import ServiceError

ARN_PREFIX = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"


def test_message_is_aws_wording() -> None:
    assert SECRET_NAME_ERROR == (
        "Invalid name. Must be a valid name containing alphanumeric characters, "
        "or any of the following: -/_+=.@!"
    )


@pytest.mark.parametrize(
    "name",
    # The three names AWS accepted in test_create_and_update_secret.
    ["Valid/_+=.@-Name", "Valid/_+=.@-Name-a1b2", "Valid/_+=.@-Name-a1b2c3-", "a", "x" * 512],
)
def test_valid_names(name: str) -> None:
    validate_secret_name(name)


@pytest.mark.parametrize(
    "name",
    # The four names AWS rejected in test_invalid_secret_name, plus length and "!" cases.
    ["Inv Name", " Inv Name", " Inv*Name? ", " Inv *?!]Name\\-", "", "x" * 513, "rds!db", "a:b"],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(ServiceError) as info:
        validate_secret_name(name)
    assert info.value.code == "ValidationException"
    assert info.value.message == SECRET_NAME_ERROR
    assert info.value.status == 400


def test_service_prefix_allows_exclamation_only_when_asked() -> None:
    validate_secret_name("rds!cluster-1a96bebc", allow_service_prefix=True)
    with pytest.raises(ServiceError):
        validate_secret_name("rds!cluster 1", allow_service_prefix=True)


def test_new_suffix_shape_and_variety() -> None:
    suffixes = {new_suffix() for _ in range(50)}
    assert all(re.fullmatch(r"[A-Za-z0-9]{6}", suffix) for suffix in suffixes)
    assert len(suffixes) > 45


def test_format_secret_arn() -> None:
    assert (
        format_secret_arn("us-east-1", "123456789012", "a/b", "AbC123")
        == "arn:aws:secretsmanager:us-east-1:123456789012:secret:a/b-AbC123"
    )
    assert (
        format_secret_arn("cn-north-1", "123456789012", "x", "AbC123", partition="aws-cn")
        == "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x-AbC123"
    )
    assert format_partial_secret_arn("us-east-1", "123456789012", "x") == ARN_PREFIX + "x"


def test_parse_name() -> None:
    assert parse_secret_id("prod/db") == SecretRef(kind="name", name="prod/db")


def test_parse_service_owned_name() -> None:
    ref = parse_secret_id("rds!cluster-1a96bebc-86c1")
    assert ref.kind == "name"
    assert ref.name == "rds!cluster-1a96bebc-86c1"


def test_parse_full_arn() -> None:
    arn = ARN_PREFIX + "prod/db-AbC123"
    ref = parse_secret_id(arn)
    assert ref == SecretRef(
        kind="full_arn",
        name="prod/db",
        arn=arn,
        suffix="AbC123",
        region="us-east-1",
        account="123456789012",
        partition="aws",
    )
    assert ref.is_arn


def test_parse_partial_arn() -> None:
    ref = parse_secret_id(ARN_PREFIX + "prod/db")
    assert ref == SecretRef(
        kind="partial_arn",
        name="prod/db",
        region="us-east-1",
        account="123456789012",
        partition="aws",
    )


def test_partial_arn_of_ambiguous_name_is_read_as_full() -> None:
    # AWS: the partial ARN of `Invalid/_+=.@-Name-a1b2c3` is not found (aws-behaviour.md §2).
    ref = parse_secret_id(ARN_PREFIX + "Invalid/_+=.@-Name-a1b2c3")
    assert ref.kind == "full_arn"
    assert ref.name == "Invalid/_+=.@-Name"
    assert ref.suffix == "a1b2c3"


@pytest.mark.parametrize(
    "rest",
    ["Valid/_+=.@-Name-a1b2", "Valid/_+=.@-Name-a1b2c3-", "x-abcde", "x-abcdefg", "-AbC123"],
)
def test_names_without_suffix_shape_stay_partial(rest: str) -> None:
    ref = parse_secret_id(ARN_PREFIX + rest)
    assert ref.kind == "partial_arn"
    assert ref.name == rest


def test_full_arn_of_ambiguous_name() -> None:
    ref = parse_secret_id(ARN_PREFIX + "name-a1b2c3-ZZZZZZ")
    assert (ref.kind, ref.name, ref.suffix) == ("full_arn", "name-a1b2c3", "ZZZZZZ")


@pytest.mark.parametrize(
    ("partition", "region"),
    [("aws", "us-east-1"), ("aws-cn", "cn-north-1"), ("aws-us-gov", "us-gov-west-1")],
)
def test_partitions(partition: str, region: str) -> None:
    ref = parse_secret_id(f"arn:{partition}:secretsmanager:{region}:123456789012:secret:x")
    assert (ref.partition, ref.region) == (partition, region)


@pytest.mark.parametrize(
    "secret_id",
    [
        # Truncated ARN: AWS answered with the name error (kubernetes-external-secrets#84).
        "arn:aws:secretsmanager:eu-west-2:111111111110:secret",
        "arn:aws:secretsmanager:eu-west-2:111111111110:secret:",
        "arn:aws:secretsmanager:us-east-1:12345678901:secret:x",
        "arn:aws:ssm:us-east-1:123456789012:secret:x",
        "arn:aws:secretsmanager:US-EAST-1:123456789012:secret:x",
        "arn:aws:secretsmanager:us-east-1:123456789012:key:x",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:a b",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:a b-AbC123",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:a:b",
        "Inv Name",
        "",
    ],
)
def test_malformed_ids_raise_name_error(secret_id: str) -> None:
    with pytest.raises(ServiceError) as info:
        parse_secret_id(secret_id)
    assert (info.value.code, info.value.message) == ("ValidationException", SECRET_NAME_ERROR)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a-AbC123", True), ("-AbC123", False), ("a-AbC12", False), ("a_AbC123", False)],
)
def test_has_suffix_shape(text: str, expected: bool) -> None:
    assert has_suffix_shape(text) is expected
