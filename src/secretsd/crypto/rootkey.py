"""Versioned root keys: seal KMS key material, access-key secrets and the check value.

A sealed blob names the root key version that sealed it:

    MAGIC(5) || version (u32, big-endian) || nonce(12) || ciphertext || tag(16)

with the 9-byte header bound into the additional authenticated data. Blobs written before root
keys were versioned have no header; they belong to version 0, the *legacy* key (the contents of
`root.key`). A legacy blob's first bytes are a random nonce, so one could start with MAGIC by
chance (2^-40): opening then falls back to the legacy key when the versioned reading fails,
which keeps that case correct rather than merely unlikely.

Root keys themselves are never stored in the clear: see `crypto/protectors.py` and
`kms/root_keys.py`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Mapping
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secretsd.crypto import aead
from secretsd.crypto.aead import KEY_BYTES, new_key

MAGIC = b"SDRK\x01"
HEADER_BYTES = len(MAGIC) + 4
LEGACY_VERSION = 0

# version -> that root key, or None if no such version exists (any more).
RootKeyLoader = Callable[[int], bytes | None]
# -> the version new blobs must be sealed with, as the database says now.
CurrentVersionReader = Callable[[], int]


class UnknownRootKeyVersion(aead.SealError):
    """A blob names a root key version this process does not have and cannot load."""


def header(version: int) -> bytes:
    return MAGIC + struct.pack(">I", version)


def version_of(sealed: bytes) -> int:
    """The root key version a blob names (0 for a legacy blob)."""
    if len(sealed) >= HEADER_BYTES and sealed.startswith(MAGIC):
        return int(struct.unpack(">I", sealed[len(MAGIC) : HEADER_BYTES])[0])
    return LEGACY_VERSION


class RootKeyring:
    """The root key versions one process holds, the current one, and how to learn more.

    `loader` fetches (and unwraps) a version this process has not seen yet, e.g. one another
    process created by rotating; `current_reader` is asked before every seal (seals are rare:
    new KMS key material, new access keys and STS sessions), so no process keeps sealing with a
    version that a rotation is about to retire. Neither may use a connection that is inside a
    transaction, as seals happen within callers' transactions.
    """

    def __init__(
        self,
        keys: Mapping[int, bytes],
        current: int,
        *,
        loader: RootKeyLoader | None = None,
        current_reader: CurrentVersionReader | None = None,
        close: Callable[[], None] | None = None,
    ) -> None:
        if current not in keys or current == LEGACY_VERSION:
            raise ValueError("the current root key version must be a held, versioned key")
        self._keys = {v: k for v, k in keys.items()}
        self._ciphers = {v: AESGCM(k) for v, k in keys.items()}
        self._current = current
        self._loader = loader
        self._current_reader = current_reader
        self._close = close

    def close(self) -> None:
        """Release what the loader holds (its database connection)."""
        if self._close is not None:
            self._close()

    @property
    def current_version(self) -> int:
        return self._current

    @property
    def versions(self) -> frozenset[int]:
        return frozenset(self._keys)

    def add(self, version: int, key: bytes, *, current: bool = False) -> None:
        """A version this process created (rotation) rather than loaded."""
        self._keys[version] = key
        self._ciphers[version] = AESGCM(key)
        if current:
            self._current = version

    def forget(self, version: int) -> None:
        """Drop a retired version from memory (never the current one)."""
        if version != self._current:
            self._keys.pop(version, None)
            self._ciphers.pop(version, None)

    def _cipher(self, version: int) -> AESGCM | None:
        found = self._ciphers.get(version)
        if found is None and self._loader is not None:
            key = self._loader(version)
            if key is not None:
                self._keys[version] = key
                found = self._ciphers[version] = AESGCM(key)
        return found

    def refresh_current(self) -> int:
        """Follow the database's current version (loading it if new to this process)."""
        if self._current_reader is None:
            return self._current
        latest = self._current_reader()
        if latest != self._current:
            if self._cipher(latest) is None:
                raise UnknownRootKeyVersion(f"root key version {latest} cannot be loaded")
            self._current = latest
        return self._current

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        version = self.refresh_current()
        return self.seal_with(version, plaintext, aad)

    def seal_with(self, version: int, plaintext: bytes, aad: bytes) -> bytes:
        cipher = self._ciphers[version]
        head = header(version)
        nonce = os.urandom(aead.NONCE_BYTES)
        return head + nonce + cipher.encrypt(nonce, plaintext, head + aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        if len(sealed) >= HEADER_BYTES and sealed.startswith(MAGIC):
            version = version_of(sealed)
            cipher = self._cipher(version) if version != LEGACY_VERSION else None
            if cipher is not None:
                try:
                    return aead.open_with(
                        cipher, sealed[HEADER_BYTES:], sealed[:HEADER_BYTES] + aad
                    )
                except aead.SealError:
                    if LEGACY_VERSION not in self._ciphers:
                        raise
            elif LEGACY_VERSION not in self._ciphers:
                raise UnknownRootKeyVersion(f"root key version {version} is not available")
        legacy = self._ciphers.get(LEGACY_VERSION)
        if legacy is None:
            raise UnknownRootKeyVersion("the legacy root key is retired")
        return aead.open_with(legacy, sealed, aad)

    def derived_key(self, version: int, label: bytes) -> bytes | None:
        """A key for one purpose (e.g. NextTokens) derived from a root key version."""
        cipher = self._cipher(version)
        if cipher is None:
            return None
        return hmac.digest(self._keys[version], label, hashlib.sha256)


def load_or_create_root_key(path: Path) -> bytes:
    """The key file protector's key (and, for databases older than versioned root keys, the
    legacy root key). Created with O_EXCL and mode 0600."""
    if path.exists():
        return read_key_file(path)
    key = new_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two processes initialising at once must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_key_file(path)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(f"{path} must not be readable by group or others (mode {mode:o})")
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise ValueError(f"{path} does not hold a {KEY_BYTES}-byte key")
    return key
