from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from secretsd.crypto.password_hash import hash_password, verify_password

FAST = 2**10  # the cost parameter is stored with the hash; tests need not pay the full one


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=64), st.text(min_size=1, max_size=64))
def test_only_the_same_password_verifies(password: str, other: str) -> None:
    stored = hash_password(password, n=FAST)
    assert verify_password(password, stored)
    assert verify_password(other, stored) == (other == password)
    assert len(password) < 12 or password not in stored


def test_salted_and_memory_hard_by_default() -> None:
    a, b = hash_password("Same-Passw0rd"), hash_password("Same-Passw0rd")
    assert a != b
    scheme, n, r, _p, _salt, _digest = a.split("$")
    assert scheme == "scrypt" and int(n) >= 2**15 and int(r) == 8


def test_garbage_never_verifies() -> None:
    for stored in ("", "scrypt$x", "bcrypt$1$2$3$4$5", "scrypt$1024$8$1$!!$!!"):
        assert not verify_password("anything", stored)
