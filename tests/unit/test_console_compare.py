"""Comparing two versions of a secret without showing values (console/compare.py)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from secretsd.console.compare import KeyChange, compare, reveal


def test_key_value_changes_named_without_values() -> None:
    old = json.dumps({"username": "admin", "password": "hunter2", "port": 5432, "old": "x"})
    new = json.dumps({"username": "admin", "password": "s3cret!", "port": "5432", "host": "db"})
    diff = compare(old, new)
    assert diff.keys == (
        KeyChange("host", "added"),
        KeyChange("old", "removed"),
        KeyChange("password", "changed"),
        KeyChange("port", "changed"),  # 5432 and "5432" are different JSON values
        KeyChange("username", "unchanged"),
    )
    assert not diff.same and not diff.binary
    # Nothing in the comparison itself carries a value.
    assert "hunter2" not in repr(diff) and "s3cret!" not in repr(diff)
    shown = {r.key: (r.change, r.old, r.new) for r in reveal(diff, old, new)}
    assert shown == {
        "host": ("added", None, "db"),
        "old": ("removed", "x", None),
        "password": ("changed", "hunter2", "s3cret!"),
        "port": ("changed", "5432", "5432"),
    }


def test_plaintext_binary_and_mixed() -> None:
    assert compare("a", "a").same and compare("a", "a").keys is None
    changed = compare("a", "b")
    assert not changed.same and changed.keys is None
    assert [(r.old, r.new) for r in reveal(changed, "a", "b")] == [("a", "b")]
    assert reveal(compare("a", "a"), "a", "a") == ()
    # A JSON object on one side only, or a JSON array: plaintext comparison.
    assert compare('{"a": 1}', "[1]").keys is None
    assert compare("[1]", "[1]").same
    binary = compare(b"\x00\x01", b"\x00\x02")
    assert binary.binary and not binary.same and reveal(binary, b"\x00\x01", b"\x00\x02") == ()
    assert compare(b"x", b"x").same
    # The same text as a string and as bytes is not the same value.
    assert not compare("x", b"x").same
    # Same keys and values, different spacing: no key changed, the text did.
    spaced = compare('{"a": 1}', '{"a":1}')
    assert not spaced.same and spaced.changed == ()


values = st.one_of(st.text(max_size=5), st.integers(), st.booleans(), st.none())
objects = st.dictionaries(st.text(max_size=4), values, max_size=6)


@given(objects, objects)
def test_changes_partition_the_keys(before: dict[str, object], after: dict[str, object]) -> None:
    old, new = json.dumps(before), json.dumps(after)
    diff = compare(old, new)
    assert diff.keys is not None
    by_change: dict[str, set[str]] = {}
    for k in diff.keys:
        by_change.setdefault(k.change, set()).add(k.key)
    assert by_change.get("added", set()) == after.keys() - before.keys()
    assert by_change.get("removed", set()) == before.keys() - after.keys()
    common = before.keys() & after.keys()
    assert by_change.get("changed", set()) == {
        k for k in common if json.dumps(before[k]) != json.dumps(after[k])
    }
    assert diff.same == (old == new)
    assert {r.key for r in reveal(diff, old, new)} == {k.key for k in diff.changed}
