from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretsd.arn import (
    SECRET_NAME_ERROR,
    format_partial_secret_arn,
    format_secret_arn,
    has_suffix_shape,
    parse_secret_id,
    validate_secret_name,
)
from secretsd.errors import ServiceError

NAME_CHARS = string.ascii_letters + string.digits + "/_+=.@-"
SUFFIX_CHARS = string.ascii_letters + string.digits

names = st.text(alphabet=NAME_CHARS, min_size=1, max_size=512)
suffixes = st.text(alphabet=SUFFIX_CHARS, min_size=6, max_size=6)
accounts = st.text(alphabet=string.digits, min_size=12, max_size=12)
regions = st.from_regex(re.compile(r"(?:[a-z]{1,10}-){1,3}[0-9]{1,2}"), fullmatch=True)
partitions = st.sampled_from(["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b"])
# Text with at least one character outside the name alphabet.
bad_chars = st.characters(codec="utf-8", exclude_characters=NAME_CHARS + "!")
invalid_names = st.tuples(
    st.text(alphabet=NAME_CHARS, max_size=20), bad_chars, st.text(max_size=20)
).map("".join)


@given(names)
def test_valid_names_pass(name: str) -> None:
    validate_secret_name(name)


@given(invalid_names)
def test_names_with_other_characters_are_rejected(name: str) -> None:
    with pytest.raises(ServiceError) as info:
        validate_secret_name(name)
    assert (info.value.code, info.value.message) == ("ValidationException", SECRET_NAME_ERROR)


@given(invalid_names)
def test_secret_ids_with_other_characters_are_rejected(name: str) -> None:
    with pytest.raises(ServiceError):
        parse_secret_id(name)


@given(names, regions, accounts, suffixes, partitions)
def test_full_arn_round_trip(
    name: str, region: str, account: str, suffix: str, partition: str
) -> None:
    arn = format_secret_arn(region, account, name, suffix, partition)
    ref = parse_secret_id(arn)
    assert ref.kind == "full_arn"
    assert (ref.name, ref.suffix, ref.arn) == (name, suffix, arn)
    assert (ref.region, ref.account, ref.partition) == (region, account, partition)


@given(names, regions, accounts, partitions)
def test_partial_arn_is_full_only_for_suffix_shaped_names(
    name: str, region: str, account: str, partition: str
) -> None:
    ref = parse_secret_id(format_partial_secret_arn(region, account, name, partition))
    if has_suffix_shape(name):
        assert ref.kind == "full_arn"
        assert ref.name + "-" + (ref.suffix or "") == name
    else:
        assert ref.kind == "partial_arn"
        assert ref.name == name
    assert (ref.region, ref.account, ref.partition) == (region, account, partition)


@given(names)
def test_plain_names_parse_as_names(name: str) -> None:
    ref = parse_secret_id(name)
    assert (ref.kind, ref.name, ref.arn, ref.region, ref.account) == (
        "name",
        name,
        None,
        None,
        None,
    )


@given(st.text(alphabet=NAME_CHARS, min_size=1, max_size=30), suffixes)
def test_suffix_shape(name: str, suffix: str) -> None:
    assert has_suffix_shape(f"{name}-{suffix}")
    assert not has_suffix_shape(f"{name}-{suffix[:5]}")
