"""Secret envelope formats: v2 names the key material version; v1 (no version) still reads."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretsd.clock import FixedClock
from secretsd.crypto import aead
from secretsd.crypto.envelope import Envelope
from secretsd.crypto.rootkey import LEGACY_VERSION, RootKeyring
from secretsd.errors import ServiceError
from secretsd.kms.keyring import Keyring, material_aad
from secretsd.store.records import KeyRecord


def _root_keys(root: bytes) -> RootKeyring:
    """Material here is sealed directly by `root`, as before root keys were versioned (the
    legacy root key); new material gets version 1."""
    return RootKeyring({LEGACY_VERSION: root, 1: aead.new_key()}, 1)


ARN = "arn:aws:kms:us-east-1:111122223333:key/6f1d9a1e-0000-4000-8000-000000000001"
CTX = {"SecretARN": "arn:aws:secretsmanager:us-east-1:111122223333:secret:x-AbCdEf", "V": "1"}


@given(
    st.text(min_size=1, max_size=80),
    st.binary(max_size=80),
    st.binary(max_size=200),
    st.integers(1, 2**32 - 1),
)
def test_v2_round_trip(arn: str, wrapped: bytes, sealed: bytes, version: int) -> None:
    env = Envelope(arn, wrapped, sealed, version)
    blob = env.to_bytes()
    assert blob[0] == 2
    assert Envelope.from_bytes(blob) == env


def test_v1_still_reads_as_material_version_1() -> None:
    arn = ARN.encode()
    wrapped, sealed = b"w" * 60, b"s" * 40
    v1 = b"\x01" + struct.pack(">H", len(arn)) + arn + struct.pack(">H", len(wrapped))
    assert Envelope.from_bytes(v1 + wrapped + sealed) == Envelope(ARN, wrapped, sealed, 1)


def _rotated_key(root: bytes, versions: int) -> tuple[KeyRecord, dict[int, bytes]]:
    sealed = {
        v: aead.seal(root, aead.new_key(), material_aad(ARN, v)) for v in range(1, versions + 1)
    }
    key = KeyRecord(
        key_id="k1",
        arn=ARN,
        account_id="111122223333",
        region="us-east-1",
        manager="CUSTOMER",
        description="",
        key_state="Enabled",
        material_sealed=sealed[1],
        created_ms=0,
        material_version=versions,
    )
    return key, sealed


def test_seals_with_current_material_and_opens_older_versions() -> None:
    root = aead.new_key()
    key_v1, materials = _rotated_key(root, 1)
    old = Keyring(_root_keys(root), FixedClock(0)).seal(key_v1, b"old", CTX).envelope
    key_v3, materials = _rotated_key(root, 3)
    key_v3 = dataclasses.replace(key_v3, material_sealed=key_v1.material_sealed)
    materials[1] = key_v1.material_sealed
    loads: list[int] = []

    def load(key_id: str, version: int) -> bytes | None:
        loads.append(version)
        return materials.get(version)

    new = Keyring(_root_keys(root), FixedClock(0)).seal(key_v3, b"new", CTX, load).envelope
    assert Envelope.from_bytes(new).material_version == 3
    assert Envelope.from_bytes(old).material_version == 1
    # A fresh process (no cached material) opens both: version 3 is loaded, version 1 is not.
    ring = Keyring(_root_keys(root), FixedClock(0))
    loads.clear()
    assert ring.open_with_key(Envelope.from_bytes(new), key_v3, CTX, load) == b"new"
    assert ring.open_with_key(Envelope.from_bytes(old), key_v3, CTX, load) == b"old"
    assert loads == [3]


def test_other_material_version_is_refused() -> None:
    root = aead.new_key()
    key, materials = _rotated_key(root, 2)
    env = Envelope.from_bytes(
        Keyring(_root_keys(root), FixedClock(0))
        .seal(key, b"x", CTX, lambda k, v: materials.get(v))
        .envelope
    )
    for version in (1, 3):
        forged = Envelope(env.key_arn, env.wrapped_key, env.sealed_value, version)
        with pytest.raises(ServiceError) as err:
            Keyring(_root_keys(root), FixedClock(0)).open_with_key(
                forged, key, CTX, lambda k, v: materials.get(v)
            )
        assert err.value.code == "DecryptionFailure"
    # Without a way to load version 2, a process that has not seen it cannot open it.
    with pytest.raises(ServiceError):
        Keyring(_root_keys(root), FixedClock(0)).open_with_key(env, key, CTX)
