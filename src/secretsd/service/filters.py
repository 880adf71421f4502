"""ListSecrets / BatchGetSecretValue filters: validation the service does and the matching rules.

Rules (aws-behaviour.md section 11):
- filters AND together, also when two filters share a key [A, M];
- the values of one filter OR together (moto's `test_with_filter_with_multiple_values`; the
  Jenkins AWS Secrets Manager credentials plugin documents the same for the real service);
- a leading "!" negates a value: it matches exactly the secrets the bare value does not;
- `name`, `tag-key`, `tag-value`, `primary-region` and `owning-service` are case-sensitive
  prefix matches on the whole attribute;
- `description` and `all` are case-insensitive word matches: the value is split into words and
  each word must be the prefix of some word of the attribute(s). `all` searches the name, the
  description, tag keys and tag values. A value with no words (`"+"`) matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from secretsd.errors import ServiceError

Filter = tuple[str, tuple[str, ...]]

MAX_FILTER_VALUES = 10

# [U] moto placeholders (moto/secretsmanager/responses.py `_validate_filters`); AWS's wording
# for a filter without Key or Values has not been recorded.
MISSING_KEY_MESSAGE = "Invalid filter key"
MISSING_VALUES_MESSAGE = "Invalid filter values for key: {key}"

# Words are separated by anything that is not a letter or digit (covers the name separators
# / _ + = . @ - and spaces) and inside a run of letters before an upper-case letter followed by
# a lower-case one. That reproduces AWS's verified splits: `AppBeta` -> App, Beta and
# `COMPANYthings` -> COMPAN, Ythings (moto `test_with_all_filter_special_characters`).
_NON_WORD = re.compile(r"[\W_]+")
_CAMEL_BOUNDARY = re.compile(r"(?<=.)(?=[A-Z][a-z])")


@dataclass(frozen=True)
class FilterTarget:
    """The attributes of one secret that filters look at."""

    name: str
    description: str | None
    tags: tuple[tuple[str, str], ...]
    primary_region: str | None
    owning_service: str | None


def validate_filters(filters: Sequence[Mapping[str, Any]]) -> list[Filter]:
    """Check what the service (not the model validator) checks and return plain filters.

    The model validator has already checked the key enum, value patterns and lengths and the
    number of filters; the value-count check here only guards callers that skip it.
    """
    result: list[Filter] = []
    for position, item in enumerate(filters, start=1):
        key = item.get("Key")
        if key is None:
            raise ServiceError("InvalidParameterException", MISSING_KEY_MESSAGE)
        values = item.get("Values")
        if values is None:
            raise ServiceError("InvalidParameterException", MISSING_VALUES_MESSAGE.format(key=key))
        _check_value_count(position, values)
        result.append((str(key), tuple(str(value) for value in values)))
    return result


def _check_value_count(position: int, values: Sequence[Any]) -> None:
    if 1 <= len(values) <= MAX_FILTER_VALUES:
        return
    if values:
        constraint = f"Member must have length less than or equal to {MAX_FILTER_VALUES}"
    else:
        constraint = "Member must have length greater than or equal to 1"
    shown = "[" + ", ".join(str(value) for value in values) + "]"
    raise ServiceError(
        "ValidationException",
        f"1 validation error detected: Value '{shown}' at 'filters.{position}.member.values' "
        f"failed to satisfy constraint: {constraint}",
    )


def matches(target: FilterTarget, filters: Sequence[Filter]) -> bool:
    """True if `target` passes every filter (an empty filter list passes everything)."""
    return all(_matches_filter(target, key, values) for key, values in filters)


def _matches_filter(target: FilterTarget, key: str, values: Sequence[str]) -> bool:
    return any(_matches_value(target, key, value) for value in values)


def _matches_value(target: FilterTarget, key: str, value: str) -> bool:
    if value.startswith("!"):
        return not _matches_term(target, key, value[1:])
    return _matches_term(target, key, value)


def _matches_term(target: FilterTarget, key: str, term: str) -> bool:
    if key == "name":
        return target.name.startswith(term)
    if key == "tag-key":
        return any(tag_key.startswith(term) for tag_key, _ in target.tags)
    if key == "tag-value":
        return any(tag_value.startswith(term) for _, tag_value in target.tags)
    if key == "primary-region":
        return target.primary_region is not None and target.primary_region.startswith(term)
    if key == "owning-service":
        return target.owning_service is not None and target.owning_service.startswith(term)
    if key == "description":
        return _words_match(term, [target.description] if target.description else [])
    if key == "all":
        return _words_match(term, _all_attributes(target))
    # The model validator rejects unknown keys before we get here.
    raise ValueError(f"unknown filter key {key!r}")


def _all_attributes(target: FilterTarget) -> list[str]:
    attributes = [target.name]
    if target.description:
        attributes.append(target.description)
    attributes.extend(tag_key for tag_key, _ in target.tags)
    attributes.extend(tag_value for _, tag_value in target.tags)
    return attributes


def _words_match(term: str, attributes: Iterable[str]) -> bool:
    wanted = [word.lower() for word in split_words(term)]
    if not wanted:
        return False
    available = {word.lower() for attribute in attributes for word in split_words(attribute)}
    return all(any(word.startswith(prefix) for word in available) for prefix in wanted)


def split_words(text: str) -> list[str]:
    """Split `text` into the words the `description` and `all` filters search."""
    return [
        word
        for chunk in _NON_WORD.split(text)
        if chunk
        for word in _CAMEL_BOUNDARY.split(chunk)
        if word
    ]
