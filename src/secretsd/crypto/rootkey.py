"""The root key: seals KMS key material and access-key secrets; never stored in the database."""

from __future__ import annotations

import os
from pathlib import Path

from secretsd.crypto.aead import KEY_BYTES, new_key


def load_or_create_root_key(path: Path) -> bytes:
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise PermissionError(f"{path} must not be readable by group or others (mode {mode:o})")
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise ValueError(f"{path} does not hold a {KEY_BYTES}-byte key")
        return key
    key = new_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two processes initialising at once must not each write a different key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    return key
