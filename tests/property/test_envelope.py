"""Envelope encryption: round trips, and any change to ciphertext, context or key is refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretsd.clock import FixedClock
from secretsd.crypto import aead
from secretsd.crypto.envelope import Envelope
from secretsd.crypto.rootkey import LEGACY_VERSION, RootKeyring
from secretsd.errors import ServiceError
from secretsd.kms.keyring import Keyring
from secretsd.store.records import KeyRecord


def _root_keys(root: bytes) -> RootKeyring:
    """Material here is sealed directly by `root`, as before root keys were versioned (the
    legacy root key); new material gets version 1."""
    return RootKeyring({LEGACY_VERSION: root, 1: aead.new_key()}, 1)


CONTEXTS = st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=4)


def _key(root: bytes, arn: str = "arn:aws:kms:us-east-1:111122223333:key/k1") -> KeyRecord:
    return KeyRecord(
        key_id="k1",
        arn=arn,
        account_id="111122223333",
        region="us-east-1",
        manager="AWS",
        description="",
        key_state="Enabled",
        material_sealed=aead.seal(root, aead.new_key(), arn.encode()),
        created_ms=0,
    )


class _Repo:
    """Just enough of Repository for Keyring.open."""

    def __init__(self, *keys: KeyRecord) -> None:
        self._keys = {k.arn: k for k in keys}

    def key_by_arn(self, arn: str) -> KeyRecord | None:
        return self._keys.get(arn)


@given(st.binary(max_size=70_000), CONTEXTS)
def test_aead_round_trip(plaintext: bytes, context: dict[str, str]) -> None:
    key = aead.new_key()
    aad = aead.canonical_context(context)
    assert aead.open_sealed(key, aead.seal(key, plaintext, aad), aad) == plaintext


@given(CONTEXTS, CONTEXTS)
def test_canonical_context_is_injective(a: dict[str, str], b: dict[str, str]) -> None:
    assert (aead.canonical_context(a) == aead.canonical_context(b)) == (a == b)


def test_ambiguous_joins_differ() -> None:
    assert aead.canonical_context({"a": "b=c"}) != aead.canonical_context({"a=b": "c"})


@settings(max_examples=200)
@given(st.binary(min_size=1, max_size=512), st.data())
def test_keyring_refuses_any_flipped_bit(plaintext: bytes, data: st.DataObject) -> None:
    root = aead.new_key()
    key = _key(root)
    ring = Keyring(_root_keys(root), FixedClock(0))
    ctx = {
        "SecretARN": "arn:aws:secretsmanager:us-east-1:111122223333:secret:x-AbCdEf",
        "SecretVersionId": "v1",
    }
    blob = ring.seal(key, plaintext, ctx).envelope
    assert ring.open(_Repo(key), blob, ctx) == plaintext  # type: ignore[arg-type]
    env = Envelope.from_bytes(blob)
    header = len(blob) - len(env.wrapped_key) - len(env.sealed_value)
    index = data.draw(st.integers(min_value=header, max_value=len(blob) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    mutated = bytearray(blob)
    mutated[index] ^= 1 << bit
    with pytest.raises(ServiceError) as err:
        ring.open(_Repo(key), bytes(mutated), ctx)  # type: ignore[arg-type]
    assert err.value.code == "DecryptionFailure"


def test_keyring_refuses_other_context_and_other_key() -> None:
    root = aead.new_key()
    key = _key(root)
    ring = Keyring(_root_keys(root), FixedClock(0))
    ctx = {"SecretARN": "a", "SecretVersionId": "v1"}
    blob = ring.seal(key, b"canary", ctx).envelope
    with pytest.raises(ServiceError):
        ring.open(_Repo(key), blob, {"SecretARN": "a", "SecretVersionId": "v2"})  # type: ignore[arg-type]
    other = _key(root)  # same ARN, different material
    with pytest.raises(ServiceError):
        Keyring(_root_keys(root), FixedClock(0)).open(_Repo(other), blob, ctx)  # type: ignore[arg-type]
