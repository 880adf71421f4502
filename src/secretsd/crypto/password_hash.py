"""Console passwords: scrypt (memory-hard), parameters and salt kept with the hash."""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

# 2**15 * 8 * 128 bytes = 32 MiB of memory per guess; about 0.1 s on the project's machine.
_N, _R, _P = 2**15, 8, 1
_LENGTH = 32
_SCHEME = "scrypt"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str, *, n: int = _N) -> str:
    salt = os.urandom(16)
    digest = Scrypt(salt=salt, length=_LENGTH, n=n, r=_R, p=_P).derive(password.encode())
    return f"{_SCHEME}${n}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != _SCHEME:
            return False
        kdf = Scrypt(salt=base64.b64decode(salt), length=_LENGTH, n=int(n), r=int(r), p=int(p))
        kdf.verify(password.encode(), base64.b64decode(digest))
    except (ValueError, InvalidKey):
        return False
    return True


# A hash to verify against when the user has no login profile, so that a wrong user name costs
# as long as a wrong password (no user enumeration by timing).
def decoy_hash() -> str:
    return hash_password(_b64(os.urandom(12)))


__all__ = ["decoy_hash", "hash_password", "verify_password"]
