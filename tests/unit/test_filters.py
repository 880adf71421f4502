from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from secretsd.errors import ServiceError
from secretsd.service.filters import (
    Filter,
    FilterTarget,
    matches,
    split_words,
    validate_filters,
)


def secret(
    name: str,
    description: str | None = None,
    tags: Sequence[tuple[str, str]] = (),
    primary_region: str | None = None,
    owning_service: str | None = None,
) -> FilterTarget:
    return FilterTarget(name, description, tuple(tags), primary_region, owning_service)


def select(targets: Sequence[FilterTarget], filters: Sequence[Filter]) -> list[str]:
    return [target.name for target in targets if matches(target, filters)]


# LocalStack test_list_secrets_filtering, validated against AWS on 2024-04-10.
VALIDATED = [
    secret("testing1/one-1", "a secret"),
    secret("/testing2/two-2", "an secret"),
    secret("testing3/three-3", "asecret"),
    secret("/testing4/four-4", "thesecret"),
]
T1, T2, T3, T4 = (target.name for target in VALIDATED)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([("name", ("/",))], [T2, T4]),
        ([("name", ("!/",))], [T1, T3]),
        ([("name", ("testing1 one",))], []),
        ([("description", ("a",))], [T1, T2, T3]),
        ([("description", ("!a",))], [T4]),
        ([("description", ("a secret",))], [T1, T2]),
        ([("description", ("!c",))], [T1, T2, T3, T4]),
        ([("description", ("a",)), ("name", ("secret",))], []),
        ([("description", ("a",)), ("name", ("an",))], []),
    ],
)
def test_validated_table(filters: list[Filter], expected: list[str]) -> None:
    assert select(VALIDATED, filters) == expected


# moto test_with_all_filter_special_characters (verified against AWS, marked flaky).
U = "7f3e9a"
SEPARATED = [secret(f"prod{sep}AppBeta{sep}{U}") for sep in "/_+=.@-"]
FULL_UPPER = secret(f"uat/COMPANY/{U}")
PARTIAL_UPPER = secret(f"uat/COMPANYthings/{U}")
SPECIAL = [*SEPARATED, FULL_UPPER, PARTIAL_UPPER]
SEPARATED_NAMES = [target.name for target in SEPARATED]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("AppBeta",), SEPARATED_NAMES),
        (("Beta",), SEPARATED_NAMES),
        (("AppBeta", "prod"), SEPARATED_NAMES),
        (("+",), []),
        ((U,), [target.name for target in SPECIAL]),
        (("company",), [FULL_UPPER.name]),
        (("things",), []),
        (("Ythings",), [PARTIAL_UPPER.name]),
        (("N",), []),
        (("pany",), []),
    ],
)
def test_all_filter_special_characters(values: tuple[str, ...], expected: list[str]) -> None:
    assert select(SPECIAL, [("all", values)]) == expected


# moto test_with_all_filter (verified against AWS, marked flaky).
FIRST = secret(f"SecretOne{U}")
SECOND = secret(f"SecretTwo{U}", description="DescTwo")
THIRD = secret(f"Thirdsecret{U}")
FOO_TAG_VALUE = secret(f"SecretFTag{U}", tags=[("1", "foo")])
FOO_TAG_KEY = secret(f"SecretFValue{U}", tags=[("foo", "v")])
NO_MATCH = secret(f"none{U}")
ALL_CASE = [FIRST, SECOND, THIRD, FOO_TAG_VALUE, FOO_TAG_KEY, NO_MATCH]
SECRET_WORD = [FIRST.name, SECOND.name, FOO_TAG_VALUE.name, FOO_TAG_KEY.name]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("SecretOne", [FIRST.name]),
        ("foo", [FOO_TAG_VALUE.name, FOO_TAG_KEY.name]),
        ("Secret", SECRET_WORD),
        ("secret", SECRET_WORD),
        ("ret", []),
        ("sec", SECRET_WORD),
        ("SomeSecret", []),
        ("d", [SECOND.name]),
        ("d t", [SECOND.name]),
        ("t", [SECOND.name, THIRD.name, FOO_TAG_VALUE.name]),
    ],
)
def test_all_filter_attributes(value: str, expected: list[str]) -> None:
    assert select(ALL_CASE, [("all", (value,))]) == expected


# moto test_with_duplicate_filter_keys and test_with_filter_with_value_with_multiple_words
# (both verified against AWS, marked flaky).
WORDS = [
    secret("foo", "one two"),
    secret("bar", "one and two"),
    secret("baz", "one"),
    secret("qux", "two"),
    secret("none", "unrelated"),
]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([("description", ("one",)), ("description", ("two",))], ["foo", "bar"]),
        ([("description", ("one two",))], ["foo", "bar"]),
        ([("description", ("o t",))], ["foo", "bar"]),
        ([("description", ("t",))], ["foo", "bar", "qux"]),
    ],
)
def test_description_words(filters: list[Filter], expected: list[str]) -> None:
    assert select(WORDS, filters) == expected


def test_description_is_case_insensitive_and_any_word_order() -> None:
    # User guide: `My Description` matches "Description of my secret".
    targets = [
        secret("a", "My Description"),
        secret("b", "my description"),
        secret("c", "My basic description"),
        secret("d", "Description of my secret"),
        secret("e", "Mine"),
        secret("f"),
    ]
    assert select(targets, [("description", ("My Description",))]) == ["a", "b", "c", "d"]


def test_values_of_one_filter_or_together() -> None:
    targets = [secret("foo"), secret("bar"), secret("baz")]
    assert select(targets, [("name", ("foo", "bar"))]) == ["foo", "bar"]
    assert select(WORDS, [("description", ("one", "!two"))]) == ["foo", "bar", "baz", "none"]


def test_name_is_case_sensitive_prefix() -> None:
    # User guide: `Data` matches DatabaseSecret, not databaseSecret or MyData.
    targets = [secret("DatabaseSecret"), secret("databaseSecret"), secret("MyData")]
    assert select(targets, [("name", ("Data",))]) == ["DatabaseSecret"]


def test_tag_filters_are_case_sensitive_prefixes() -> None:
    targets = [
        secret("one", tags=[("Env", "Prod"), ("team", "blue")]),
        secret("two", tags=[("env", "prod")]),
        secret("three"),
    ]
    assert select(targets, [("tag-key", ("En",))]) == ["one"]
    assert select(targets, [("tag-key", ("te",))]) == ["one"]
    assert select(targets, [("tag-value", ("pro",))]) == ["two"]
    assert select(targets, [("tag-value", ("!pro",))]) == ["one", "three"]
    assert select(targets, [("tag-key", ("Env",)), ("tag-value", ("blue",))]) == ["one"]


def test_primary_region_and_owning_service() -> None:
    targets = [
        secret("replicated", primary_region="us-east-1"),
        secret("plain"),
        secret("rds!cluster-1", owning_service="rds"),
    ]
    assert select(targets, [("primary-region", ("us-east",))]) == ["replicated"]
    assert select(targets, [("primary-region", ("US",))]) == []
    assert select(targets, [("primary-region", ("!us",))]) == ["plain", "rds!cluster-1"]
    assert select(targets, [("owning-service", ("rd",))]) == ["rds!cluster-1"]
    assert select(targets, [("owning-service", ("RDS",))]) == []


def test_all_is_case_insensitive_and_searches_description_and_tags() -> None:
    targets = [
        secret("alpha", description="Payments database"),
        secret("beta", tags=[("Owner", "PaymentsTeam")]),
        secret("gamma"),
    ]
    assert select(targets, [("all", ("payments",))]) == ["alpha", "beta"]
    assert select(targets, [("all", ("TEAM",))]) == ["beta"]
    assert select(targets, [("all", ("!payments",))]) == ["gamma"]


def test_word_values_without_words_match_nothing() -> None:
    targets = [secret("a/b", "a b")]
    assert select(targets, [("all", ("",))]) == []
    assert select(targets, [("description", ("-",))]) == []


def test_no_filters_match_everything() -> None:
    assert matches(secret("x"), [])


def test_unknown_key_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown filter key"):
        matches(secret("x"), [("nope", ("x",))])


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("test", ["test"]),
        ("my test", ["my", "test"]),
        ("Mytest", ["Mytest"]),
        ("MyTest", ["My", "Test"]),
        ("MyTestPhrase", ["My", "Test", "Phrase"]),
        ("myTest", ["my", "Test"]),
        ("my/test", ["my", "test"]),
        ("prod-AppBeta/x", ["prod", "App", "Beta", "x"]),
        ("COMPANYthings", ["COMPAN", "Ythings"]),
        ("COMPANY", ["COMPANY"]),
        ("+", []),
    ],
)
def test_split_words(text: str, words: list[str]) -> None:
    assert split_words(text) == words


def test_validate_filters_returns_plain_tuples() -> None:
    raw: list[Mapping[str, Any]] = [
        {"Key": "name", "Values": ["a", "!b"]},
        {"Key": "all", "Values": ["c"]},
    ]
    assert validate_filters(raw) == [("name", ("a", "!b")), ("all", ("c",))]
    assert validate_filters([]) == []


def test_validate_filters_missing_key() -> None:
    with pytest.raises(ServiceError) as info:
        validate_filters([{"Key": "name", "Values": ["x"]}, {"Values": ["foo"]}])
    assert (info.value.code, info.value.message) == (
        "InvalidParameterException",
        "Invalid filter key",
    )


def test_validate_filters_missing_values() -> None:
    with pytest.raises(ServiceError) as info:
        validate_filters([{"Key": "description"}])
    assert (info.value.code, info.value.message) == (
        "InvalidParameterException",
        "Invalid filter values for key: description",
    )


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ([], "Member must have length greater than or equal to 1"),
        ([str(i) for i in range(11)], "Member must have length less than or equal to 10"),
    ],
)
def test_validate_filters_value_count(values: list[str], constraint: str) -> None:
    with pytest.raises(ServiceError) as info:
        validate_filters([{"Key": "name", "Values": ["x"]}, {"Key": "name", "Values": values}])
    assert info.value.code == "ValidationException"
    assert "at 'filters.2.member.values'" in info.value.message
    assert info.value.message.endswith(constraint)


def test_validate_filters_accepts_ten_values() -> None:
    values = [str(i) for i in range(10)]
    assert validate_filters([{"Key": "name", "Values": values}]) == [("name", tuple(values))]
