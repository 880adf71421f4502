"""KMS ciphertext blobs: round trip; any flipped bit, other context or other key is refused."""

from __future__ import annotations

import uuid

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from secretsd.kms import blob

KEY_ID = str(uuid.uuid4())
MATERIAL = AESGCM(AESGCM.generate_key(256))
OTHER = AESGCM(AESGCM.generate_key(256))
contexts = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=64), contexts, st.integers(1, 5), st.data())
def test_round_trip_and_tampering(
    plaintext: bytes, context: dict[str, str], version: int, data: st.DataObject
) -> None:
    sealed = blob.seal(MATERIAL, KEY_ID, version, plaintext, context)
    header = blob.parse_header(sealed)
    assert (header.key_id, header.material_version) == (KEY_ID, version)
    assert blob.open_blob(MATERIAL, header, sealed, context) == plaintext
    with pytest.raises(blob.BlobError):
        blob.open_blob(OTHER, header, sealed, context)
    with pytest.raises(blob.BlobError):
        blob.open_blob(MATERIAL, header, sealed, {**context, "extra": "x"})
    bit = data.draw(st.integers(0, len(sealed) * 8 - 1))
    flipped = bytearray(sealed)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises((blob.BlobError, ValueError)):
        tampered = blob.parse_header(bytes(flipped))
        blob.open_blob(MATERIAL, tampered, bytes(flipped), context)
