"""Protectors: what wraps the root keys stored in the database.

- `key-file`: a 32-byte file (mode 0600) in the data directory; the wrapping key is derived from
  it with HKDF, so it is never the same key as the legacy root key (the file's raw bytes).
- `passphrase`: Argon2id (RFC 9106) of a passphrase and a random salt; the parameters and salt
  are stored with the protector, never the derived key.
- `aws-kms`: an external AWS KMS key (or anything speaking that API, e.g. an HSM front end or
  another secretsd), called with Encrypt/Decrypt and an encryption context naming the version.

Every wrapped root key is bound to its version, so rows cannot be swapped.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from secretsd.crypto import aead

KEY_FILE = "key-file"
PASSPHRASE = "passphrase"
AWS_KMS = "aws-kms"
KINDS = (KEY_FILE, PASSPHRASE, AWS_KMS)


class ProtectorMismatch(Exception):
    """The protector does not open the stored root keys (wrong file, passphrase or KMS key)."""


class ProtectorUnavailable(Exception):
    """The protector could not be used at all (e.g. the external KMS could not be reached)."""


def wrap_aad(version: int) -> bytes:
    return f"secretsd/root-key/{version}".encode()


class Protector(Protocol):
    kind: str

    def params(self) -> dict[str, Any]:
        """What is stored with the protector so it can be used again (never secret)."""
        ...

    def wrap(self, version: int, root_key: bytes) -> bytes: ...

    def unwrap(self, version: int, wrapped: bytes) -> bytes: ...


class _AeadProtector:
    kind = ""

    def __init__(self, wrapping_key: bytes) -> None:
        self._cipher = aead.cipher(wrapping_key)

    def wrap(self, version: int, root_key: bytes) -> bytes:
        nonce = os.urandom(aead.NONCE_BYTES)
        return nonce + self._cipher.encrypt(nonce, root_key, wrap_aad(version))

    def unwrap(self, version: int, wrapped: bytes) -> bytes:
        try:
            return aead.open_with(self._cipher, wrapped, wrap_aad(version))
        except aead.SealError as exc:
            raise ProtectorMismatch(
                f"the {self.kind} protector does not open the root keys"
            ) from exc


class KeyFileProtector(_AeadProtector):
    kind = KEY_FILE

    def __init__(self, file_key: bytes) -> None:
        super().__init__(
            HKDF(
                algorithm=hashes.SHA256(),
                length=aead.KEY_BYTES,
                salt=None,
                info=b"secretsd/root-key-protector/key-file",
            ).derive(file_key)
        )

    def params(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class Argon2Params:
    """RFC 9106's second recommended option by default (t=3, 64 MiB, p=4)."""

    iterations: int = 3
    memory_kib: int = 65536
    lanes: int = 4


class PassphraseProtector(_AeadProtector):
    kind = PASSPHRASE

    def __init__(self, wrapping_key: bytes, kdf: Argon2Params, salt: bytes) -> None:
        """From an already derived key; use `derive` to start from the passphrase."""
        super().__init__(wrapping_key)
        self.wrapping_key = wrapping_key
        self._kdf = kdf
        self._salt = salt

    @classmethod
    def derive(cls, passphrase: str, kdf: Argon2Params, salt: bytes) -> PassphraseProtector:
        if not passphrase:
            raise ValueError("the passphrase must not be empty")
        key = Argon2id(
            salt=salt,
            length=aead.KEY_BYTES,
            iterations=kdf.iterations,
            lanes=kdf.lanes,
            memory_cost=kdf.memory_kib,
        ).derive(passphrase.encode())
        return cls(key, kdf, salt)

    @classmethod
    def new(cls, passphrase: str, kdf: Argon2Params) -> PassphraseProtector:
        return cls.derive(passphrase, kdf, os.urandom(16))

    @staticmethod
    def _parse(params: dict[str, Any]) -> tuple[Argon2Params, bytes]:
        kdf = Argon2Params(
            int(params["iterations"]), int(params["memory_kib"]), int(params["lanes"])
        )
        return kdf, base64.b64decode(params["salt"])

    @classmethod
    def from_params(cls, passphrase: str, params: dict[str, Any]) -> PassphraseProtector:
        return cls.derive(passphrase, *cls._parse(params))

    @classmethod
    def from_wrapping_key(cls, key: bytes, params: dict[str, Any]) -> PassphraseProtector:
        return cls(key, *cls._parse(params))

    def params(self) -> dict[str, Any]:
        return {
            "kdf": "argon2id",
            "iterations": self._kdf.iterations,
            "memory_kib": self._kdf.memory_kib,
            "lanes": self._kdf.lanes,
            "salt": base64.b64encode(self._salt).decode(),
        }


class AwsKmsProtector:
    """Root keys wrapped by an external KMS key. Credentials come from botocore's usual chain
    (environment, shared files, instance metadata), never from the database."""

    kind = AWS_KMS

    def __init__(self, key_id: str, region: str, endpoint_url: str | None = None) -> None:
        self.key_id = key_id
        self.region = region
        self.endpoint_url = endpoint_url or None
        self._client: Any = None

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> AwsKmsProtector:
        return cls(str(params["key_id"]), str(params["region"]), params.get("endpoint_url"))

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key_id": self.key_id, "region": self.region}
        if self.endpoint_url:
            out["endpoint_url"] = self.endpoint_url
        return out

    def _kms(self) -> Any:
        if self._client is None:
            # Imported here: only this protector needs botocore, and it is slow to import.
            import botocore.session
            from botocore.config import Config

            self._client = botocore.session.get_session().create_client(
                "kms",
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}),
            )
        return self._client

    @staticmethod
    def _context(version: int) -> dict[str, str]:
        return {"secretsd:purpose": "root-key", "secretsd:root-key-version": str(version)}

    def wrap(self, version: int, root_key: bytes) -> bytes:
        try:
            out = self._kms().encrypt(
                KeyId=self.key_id, Plaintext=root_key, EncryptionContext=self._context(version)
            )
        except Exception as exc:
            raise ProtectorUnavailable(f"external KMS Encrypt failed: {_describe(exc)}") from exc
        return bytes(out["CiphertextBlob"])

    def unwrap(self, version: int, wrapped: bytes) -> bytes:
        try:
            out = self._kms().decrypt(
                KeyId=self.key_id, CiphertextBlob=wrapped, EncryptionContext=self._context(version)
            )
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("InvalidCiphertextException", "IncorrectKeyException"):
                raise ProtectorMismatch(
                    f"the external KMS key {self.key_id} does not open the root keys"
                ) from exc
            raise ProtectorUnavailable(f"external KMS Decrypt failed: {_describe(exc)}") from exc
        return bytes(out["Plaintext"])


def _describe(exc: Exception) -> str:
    # botocore's messages name the operation and the error code, never the plaintext.
    return f"{type(exc).__name__}: {exc}"
