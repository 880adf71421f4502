"""The canary test's multi-needle scanner finds a needle at any offset (it only looks up aligned
8-byte chunks, so the offsets around chunk boundaries are the ones that matter)."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from support.canary import MIN_NEEDLE, Scanner


@given(
    offset=st.integers(0, 64),
    length=st.integers(MIN_NEEDLE, 64),
    tail=st.integers(0, 17),
)
def test_finds_needle_at_any_offset(offset: int, length: int, tail: int) -> None:
    needle = os.urandom(length)
    data = os.urandom(offset) + needle + os.urandom(tail)
    scanner = Scanner()
    scanner.add(needle, "n")
    scanner.add(os.urandom(32), "other")
    hits = scanner.scan_bytes(data, Path("x"))
    assert [(h.offset, h.label) for h in hits] == [(offset, "n")]


def test_no_hit_in_unrelated_bytes() -> None:
    scanner = Scanner()
    for _ in range(100):
        scanner.add(os.urandom(32), "key")
    assert scanner.scan_bytes(os.urandom(1 << 16), Path("x")) == []
