"""A passphrase-sealed byte stream: how backups are written, chunk by chunk, and read back.

    MAGIC(8) | u32 preamble length | preamble (JSON: KDF name, parameters, salt, chunk size,
    passphrase check) | chunk* ;  chunk = u32 (final flag << 31 | sealed length) | sealed

The key is Argon2id(passphrase, salt) (never stored), split with HKDF into an encryption key and a
16-byte check value that tells a wrong passphrase apart from a damaged file. Each chunk is
AES-256-GCM under the encryption key with the nonce `chunk index (11 bytes) | final flag (1)`
(the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár) and the whole preamble as
additional data. So a changed byte anywhere, chunks swapped, dropped or repeated, a stream cut off
(no chunk flagged final) or extended (bytes after the final chunk) all fail authentication. A
fresh salt per stream gives a fresh key, so nonces never repeat under one key.
"""

from __future__ import annotations

import base64
import hmac
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from secretsd.crypto.aead import KEY_BYTES
from secretsd.crypto.protectors import Argon2Params

MAGIC = b"SDBACKUP"
FORMAT = 1
CHUNK_BYTES = 1 << 16
_TAG_BYTES = 16
_FINAL = 1 << 31
_LENGTH = struct.Struct(">I")
# A tampered preamble must not make the reader allocate or compute without bound.
_MAX_PREAMBLE = 4096
_MAX_CHUNK = 1 << 24
_MAX_KDF = Argon2Params(iterations=64, memory_kib=4 << 20, lanes=64)


class StreamError(Exception):
    """The stream cannot be opened: not a backup, damaged, altered, or cut off."""


class WrongPassphrase(StreamError):
    """The passphrase does not open this stream."""


@dataclass(frozen=True)
class _Keys:
    cipher: AESGCM
    check: bytes


def _derive(passphrase: str, kdf: Argon2Params, salt: bytes) -> _Keys:
    if not passphrase:
        raise ValueError("the passphrase must not be empty")
    master = Argon2id(
        salt=salt,
        length=KEY_BYTES,
        iterations=kdf.iterations,
        lanes=kdf.lanes,
        memory_cost=kdf.memory_kib,
    ).derive(passphrase.encode())

    def expand(info: bytes, length: int) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(master)

    return _Keys(
        AESGCM(expand(b"secretsd/backup/v1/encryption", KEY_BYTES)),
        expand(b"secretsd/backup/v1/check", 16),
    )


def _nonce(index: int, final: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


class SealedWriter:
    """Seals what is written to it onto `out`; `close()` writes the final chunk (required)."""

    def __init__(
        self, out: IO[bytes], passphrase: str, kdf: Argon2Params, chunk_bytes: int = CHUNK_BYTES
    ) -> None:
        salt = os.urandom(16)
        keys = _derive(passphrase, kdf, salt)
        preamble = orjson.dumps(
            {
                "format": FORMAT,
                "cipher": "AES-256-GCM/STREAM",
                "kdf": "argon2id",
                "iterations": kdf.iterations,
                "memory_kib": kdf.memory_kib,
                "lanes": kdf.lanes,
                "salt": base64.b64encode(salt).decode(),
                "chunk_bytes": chunk_bytes,
                "check": base64.b64encode(keys.check).decode(),
            },
            option=orjson.OPT_SORT_KEYS,
        )
        self._aad = MAGIC + _LENGTH.pack(len(preamble)) + preamble
        self._out = out
        self._cipher = keys.cipher
        self._chunk = chunk_bytes
        self._buffer = bytearray()
        self._index = 0
        self._closed = False
        self.bytes_written = 0
        self._emit_raw(self._aad)

    def _emit_raw(self, data: bytes) -> None:
        self._out.write(data)
        self.bytes_written += len(data)

    def _emit(self, plaintext: bytes, final: bool) -> None:
        sealed = self._cipher.encrypt(_nonce(self._index, final), plaintext, self._aad)
        self._index += 1
        self._emit_raw(_LENGTH.pack(len(sealed) | (_FINAL if final else 0)) + sealed)

    def write(self, data: bytes) -> None:
        if self._closed:
            raise ValueError("write to a closed stream")
        self._buffer += data
        while len(self._buffer) > self._chunk:
            self._emit(bytes(self._buffer[: self._chunk]), final=False)
            del self._buffer[: self._chunk]

    def close(self) -> None:
        if not self._closed:
            self._emit(bytes(self._buffer), final=True)
            self._buffer.clear()
            self._closed = True


def _read_exactly(source: IO[bytes], n: int) -> bytes:
    data = source.read(n)
    return data if data is not None else b""


def _preamble(source: IO[bytes]) -> tuple[bytes, dict[str, Any]]:
    head = _read_exactly(source, len(MAGIC) + _LENGTH.size)
    if len(head) < len(MAGIC) + _LENGTH.size or not head.startswith(MAGIC):
        raise StreamError("not a secretsd backup (no SDBACKUP header)")
    (length,) = _LENGTH.unpack(head[len(MAGIC) :])
    if length > _MAX_PREAMBLE:
        raise StreamError("the backup header is damaged")
    raw = _read_exactly(source, length)
    if len(raw) != length:
        raise StreamError("the backup is cut off inside its header")
    try:
        fields = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise StreamError("the backup header is damaged") from exc
    if not isinstance(fields, dict) or fields.get("format") != FORMAT:
        raise StreamError("unsupported backup format (made by a newer secretsd?)")
    return head + raw, fields


def _kdf(fields: dict[str, Any]) -> tuple[Argon2Params, bytes, bytes, int]:
    try:
        kdf = Argon2Params(
            int(fields["iterations"]), int(fields["memory_kib"]), int(fields["lanes"])
        )
        salt = base64.b64decode(fields["salt"], validate=True)
        check = base64.b64decode(fields["check"], validate=True)
        chunk = int(fields["chunk_bytes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StreamError("the backup header is damaged") from exc
    within = (
        fields.get("kdf") == "argon2id"
        and 1 <= kdf.iterations <= _MAX_KDF.iterations
        and 8 * kdf.lanes <= kdf.memory_kib <= _MAX_KDF.memory_kib
        and 1 <= kdf.lanes <= _MAX_KDF.lanes
        and 0 < chunk <= _MAX_CHUNK
        and len(salt) >= 16
    )
    if not within:
        raise StreamError("the backup header is damaged")
    return kdf, salt, check, chunk


def open_sealed_stream(source: IO[bytes], passphrase: str) -> Iterator[bytes]:
    """The plaintext of `source`, chunk by chunk, each authenticated before it is yielded.

    Raises WrongPassphrase before yielding anything, StreamError at the first damaged chunk (so
    callers that must not act on a damaged stream read it through once before using it)."""
    aad, fields = _preamble(source)
    kdf, salt, check, chunk_bytes = _kdf(fields)
    keys = _derive(passphrase, kdf, salt)
    if not hmac.compare_digest(keys.check, check):
        raise WrongPassphrase("the passphrase does not open this backup")
    return _chunks(source, keys.cipher, aad, chunk_bytes)


def _chunks(source: IO[bytes], cipher: AESGCM, aad: bytes, chunk_bytes: int) -> Iterator[bytes]:
    index = 0
    while True:
        prefix = _read_exactly(source, _LENGTH.size)
        if len(prefix) < _LENGTH.size:
            raise StreamError(f"the backup is cut off (chunk {index} missing)")
        (word,) = _LENGTH.unpack(prefix)
        final = bool(word & _FINAL)
        length = word & ~_FINAL
        if length < _TAG_BYTES or length > chunk_bytes + _TAG_BYTES:
            raise StreamError(f"the backup is damaged (chunk {index})")
        sealed = _read_exactly(source, length)
        if len(sealed) != length:
            raise StreamError(f"the backup is cut off (inside chunk {index})")
        try:
            plaintext = cipher.decrypt(_nonce(index, final), sealed, aad)
        except InvalidTag as exc:
            raise StreamError(
                f"the backup is damaged or was altered (chunk {index} fails authentication)"
            ) from exc
        index += 1
        yield plaintext
        if final:
            if _read_exactly(source, 1):
                raise StreamError("the backup has bytes after its final chunk")
            return
