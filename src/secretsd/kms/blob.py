"""KMS ciphertext blobs: opaque to clients, authenticated, bound to key, material and context.

    blob = 0x01 | key id (16-byte UUID) | u32 material version | nonce(12) | ciphertext | tag(16)

The header is part of the additional authenticated data together with the canonical encryption
context, so changing the named key or version, any bit, or the context makes decryption fail.
"""

from __future__ import annotations

import os
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secretsd.crypto import aead

FORMAT_V1 = 1
_HEADER = struct.Struct(">B16sI")
_MIN_BYTES = _HEADER.size + aead.NONCE_BYTES + 16


class BlobError(ValueError):
    """Not a ciphertext blob this server made, or it fails authentication."""


@dataclass(frozen=True, slots=True)
class BlobHeader:
    key_id: str
    material_version: int
    raw: bytes


def parse_header(blob: bytes) -> BlobHeader:
    if len(blob) < _MIN_BYTES or blob[0] != FORMAT_V1:
        raise BlobError("not a ciphertext blob")
    _, key_bytes, version = _HEADER.unpack_from(blob)
    return BlobHeader(str(uuid.UUID(bytes=key_bytes)), version, blob[: _HEADER.size])


def seal(
    material: AESGCM, key_id: str, version: int, plaintext: bytes, context: Mapping[str, str]
) -> bytes:
    header = _HEADER.pack(FORMAT_V1, uuid.UUID(key_id).bytes, version)
    nonce = os.urandom(aead.NONCE_BYTES)
    aad = header + aead.canonical_context(context)
    return header + nonce + material.encrypt(nonce, plaintext, aad)


def open_blob(
    material: AESGCM, header: BlobHeader, blob: bytes, context: Mapping[str, str]
) -> bytes:
    try:
        return aead.open_with(
            material, blob[len(header.raw) :], header.raw + aead.canonical_context(context)
        )
    except aead.SealError as exc:
        raise BlobError("authentication failed") from exc
