"""Comparing two versions of a secret: which keys were added, removed or changed.

The result names keys and their change, never a value: the details page shows it as is, and
values only come into a page when the user explicitly retrieves them for this comparison
(`VersionDiff.revealed`)."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any, Literal

Change = Literal["added", "removed", "changed", "unchanged"]


@dataclass(frozen=True, slots=True)
class KeyChange:
    key: str
    change: Change


@dataclass(frozen=True, slots=True)
class RevealedKey:
    key: str
    change: Change
    old: str | None
    new: str | None


@dataclass(frozen=True, slots=True)
class VersionDiff:
    """`keys` is None when either version is not a JSON object: then only `same` is known."""

    keys: tuple[KeyChange, ...] | None
    same: bool
    binary: bool

    @property
    def changed(self) -> tuple[KeyChange, ...]:
        return tuple(k for k in self.keys or () if k.change != "unchanged")


Value = str | bytes | None


def _object(value: Value) -> dict[str, Any] | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _equal(a: Any, b: Any) -> bool:
    # Constant-time for strings, so the comparison's timing says nothing about the values.
    if isinstance(a, str) and isinstance(b, str):
        return hmac.compare_digest(a.encode(), b.encode())
    return type(a) is type(b) and bool(a == b)


def _bytes(value: Value) -> bytes:
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else value


def compare(old: Value, new: Value) -> VersionDiff:
    """Old and new are one version's SecretString (str) or SecretBinary (bytes)."""
    binary = isinstance(old, bytes) or isinstance(new, bytes)
    same = type(old) is type(new) and hmac.compare_digest(_bytes(old), _bytes(new))
    before, after = _object(old), _object(new)
    if before is None or after is None:
        return VersionDiff(None, same, binary)
    changes: list[KeyChange] = []
    for key in sorted(before.keys() | after.keys()):
        if key not in after:
            changes.append(KeyChange(key, "removed"))
        elif key not in before:
            changes.append(KeyChange(key, "added"))
        elif _equal(before[key], after[key]):
            changes.append(KeyChange(key, "unchanged"))
        else:
            changes.append(KeyChange(key, "changed"))
    return VersionDiff(tuple(changes), same, binary)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def reveal(diff: VersionDiff, old: Value, new: Value) -> tuple[RevealedKey, ...]:
    """The values behind a comparison, for the page that retrieves them on request: each
    added, removed or changed key's old and new value, or the whole text of both versions when
    they are not key/value secrets. Binary values are not shown (as on the details page)."""
    if diff.binary:
        return ()
    if diff.keys is None:
        if diff.same:
            return ()
        return (
            RevealedKey(
                "",
                "changed",
                old if isinstance(old, str) else None,
                new if isinstance(new, str) else None,
            ),
        )
    before, after = _object(old) or {}, _object(new) or {}
    return tuple(
        RevealedKey(
            k.key,
            k.change,
            _shown(before[k.key]) if k.key in before else None,
            _shown(after[k.key]) if k.key in after else None,
        )
        for k in diff.changed
    )
