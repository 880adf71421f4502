"""AES-256-GCM sealing with a canonical encoding of the encryption context.

Every ciphertext here is `nonce(12) || ciphertext || tag(16)`. The context is bound as additional
authenticated data; it is encoded with sorted keys and length prefixes so two different contexts
can never produce the same bytes (a plain `k=v&k=v` join could).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
KEY_BYTES = 32


class SealError(Exception):
    """Authentication failed: wrong key, wrong context or tampered ciphertext."""


def canonical_context(context: Mapping[str, str]) -> bytes:
    out = bytearray(struct.pack(">I", len(context)))
    for key in sorted(context):
        for part in (key.encode(), context[key].encode()):
            out += struct.pack(">I", len(part))
            out += part
    return bytes(out)


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    return open_with(AESGCM(key), sealed, aad)


def cipher(key: bytes) -> AESGCM:
    """A reusable cipher object, for keys used on many requests (building one costs more than
    decrypting a small value)."""
    return AESGCM(key)


def seal_with(aesgcm: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + aesgcm.encrypt(nonce, plaintext, aad)


def open_with(aesgcm: AESGCM, sealed: bytes, aad: bytes) -> bytes:
    if len(sealed) < NONCE_BYTES + 16:
        raise SealError("ciphertext too short")
    try:
        return aesgcm.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise SealError("authentication failed") from exc
