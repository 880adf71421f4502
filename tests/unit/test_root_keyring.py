"""Versioned root key sealing, protectors and NextTokens across root key versions."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from secretsd.crypto import aead
from secretsd.crypto.protectors import (
    Argon2Params,
    KeyFileProtector,
    PassphraseProtector,
    ProtectorMismatch,
)
from secretsd.crypto.rootkey import (
    HEADER_BYTES,
    LEGACY_VERSION,
    MAGIC,
    RootKeyring,
    UnknownRootKeyVersion,
    header,
    version_of,
)
from secretsd.errors import ServiceError
from secretsd.service.pagination import TokenCodec

CHEAP = Argon2Params(iterations=1, memory_kib=64, lanes=1)


def _ring(**versions: bytes) -> RootKeyring:
    keys = {int(v[1:]): k for v, k in versions.items()}
    return RootKeyring(keys, max(keys))


@given(
    plaintext=st.binary(max_size=300),
    aad=st.binary(max_size=100),
    version=st.integers(min_value=1, max_value=2**32 - 1),
)
def test_seal_names_its_version_and_round_trips(plaintext: bytes, aad: bytes, version: int) -> None:
    ring = RootKeyring({version: aead.new_key()}, version)
    sealed = ring.seal(plaintext, aad)
    assert sealed.startswith(header(version)) and version_of(sealed) == version
    assert ring.open(sealed, aad) == plaintext
    with pytest.raises(aead.SealError):
        ring.open(sealed, aad + b"x")


@given(st.binary(min_size=0, max_size=40))
def test_header_is_authenticated(aad: bytes) -> None:
    key = aead.new_key()
    ring = RootKeyring({1: key, 2: key}, 2)
    sealed = ring.seal(b"value", aad)
    # Same key under another version number: the header is part of the additional data.
    relabelled = header(1) + sealed[HEADER_BYTES:]
    with pytest.raises(aead.SealError):
        ring.open(relabelled, aad)


def test_legacy_blobs_open_only_while_the_legacy_key_is_held() -> None:
    legacy = aead.new_key()
    blob = aead.seal(legacy, b"old", b"arn")
    assert version_of(blob) == LEGACY_VERSION
    ring = RootKeyring({LEGACY_VERSION: legacy, 1: aead.new_key()}, 1)
    assert ring.open(blob, b"arn") == b"old"
    ring.forget(LEGACY_VERSION)
    with pytest.raises(UnknownRootKeyVersion):
        ring.open(blob, b"arn")


def test_legacy_blob_whose_nonce_looks_like_a_header_still_opens() -> None:
    legacy = aead.new_key()
    nonce = MAGIC + os.urandom(aead.NONCE_BYTES - len(MAGIC))
    blob = nonce + AESGCM(legacy).encrypt(nonce, b"old", b"aad")
    ring = RootKeyring({LEGACY_VERSION: legacy, 1: aead.new_key()}, 1)
    assert ring.open(blob, b"aad") == b"old"


def test_unknown_versions_are_loaded_and_the_current_one_followed() -> None:
    keys = {1: aead.new_key(), 2: aead.new_key()}
    loads: list[int] = []
    current = [1]

    def load(version: int) -> bytes | None:
        loads.append(version)
        return keys.get(version)

    writer = RootKeyring({2: keys[2]}, 2)
    reader = RootKeyring({1: keys[1]}, 1, loader=load, current_reader=lambda: current[0])
    assert reader.open(writer.seal(b"v", b"a"), b"a") == b"v"
    assert loads == [2]
    with pytest.raises(UnknownRootKeyVersion):
        reader.open(RootKeyring({3: aead.new_key()}, 3).seal(b"v", b"a"), b"a")
    assert reader.current_version == 1
    current[0] = 2
    assert version_of(reader.seal(b"x", b"a")) == 2
    current[0] = 9
    with pytest.raises(UnknownRootKeyVersion):
        reader.seal(b"x", b"a")


def test_ring_refuses_a_legacy_or_missing_current_version() -> None:
    with pytest.raises(ValueError, match="current"):
        RootKeyring({LEGACY_VERSION: aead.new_key()}, LEGACY_VERSION)
    with pytest.raises(ValueError, match="current"):
        RootKeyring({1: aead.new_key()}, 2)


def test_key_file_protector_binds_versions_and_keys() -> None:
    file_key = aead.new_key()
    protector = KeyFileProtector(file_key)
    root = aead.new_key()
    wrapped = protector.wrap(3, root)
    assert KeyFileProtector(file_key).unwrap(3, wrapped) == root
    with pytest.raises(ProtectorMismatch):
        protector.unwrap(4, wrapped)
    with pytest.raises(ProtectorMismatch):
        KeyFileProtector(aead.new_key()).unwrap(3, wrapped)
    # The wrapping key is derived: the raw file bytes (the legacy root key) do not open it.
    with pytest.raises(aead.SealError):
        aead.open_sealed(file_key, wrapped, b"secretsd/root-key/3")


def test_passphrase_protector_round_trips_through_its_params() -> None:
    protector = PassphraseProtector.new("correct horse", CHEAP)
    params = protector.params()
    assert params["kdf"] == "argon2id" and "correct horse" not in str(params)
    root = aead.new_key()
    wrapped = protector.wrap(1, root)
    assert PassphraseProtector.from_params("correct horse", params).unwrap(1, wrapped) == root
    same = PassphraseProtector.from_wrapping_key(protector.wrapping_key, params)
    assert same.unwrap(1, wrapped) == root
    with pytest.raises(ProtectorMismatch):
        PassphraseProtector.from_params("wrong horse", params).unwrap(1, wrapped)
    with pytest.raises(ValueError, match="empty"):
        PassphraseProtector.new("", CHEAP)


def test_next_tokens_survive_a_new_current_version_until_theirs_is_retired() -> None:
    ring = RootKeyring({1: aead.new_key()}, 1)
    codec = TokenCodec(ring)
    token = codec.encode("scope", {"after": "x"})
    ring.add(2, aead.new_key(), current=True)
    assert codec.decode("scope", token) == {"after": "x"}
    newer = codec.encode("scope", [1, 2])
    assert codec.decode("scope", newer) == [1, 2]
    with pytest.raises(ServiceError, match="NextToken"):
        codec.decode("other scope", newer)
    ring.forget(1)
    # A fresh codec (another worker) no longer derives version 1's key.
    with pytest.raises(ServiceError, match="NextToken"):
        TokenCodec(ring).decode("scope", token)
