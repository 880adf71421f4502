"""KMS-style keys: the per-account `aws/secretsmanager` key and data-key wrapping.

Key material is sealed by a root key version (bound to the key ARN) and only ever unsealed in
memory.
Unsealed material is cached per process: keys are immutable once created, so the cache never
needs invalidating for correctness (state changes such as disabling are read from the store).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secretsd.clock import Clock
from secretsd.crypto import aead
from secretsd.crypto.envelope import Envelope
from secretsd.crypto.rootkey import RootKeyring
from secretsd.errors import ServiceError
from secretsd.store.kms_repository import KmsRepository
from secretsd.store.records import KeyRecord
from secretsd.store.repository import Repository

DEFAULT_ALIAS = "alias/aws/secretsmanager"
DATA_KEY_CACHE_MAX = 4096

# (key id, material version) -> that version's sealed material, or None if there is no such version.
MaterialLoader = Callable[[str, int], bytes | None]


def material_aad(arn: str, version: int) -> bytes:
    """What a key's sealed material version is bound to (version 1 predates versioning)."""
    return (arn if version == 1 else f"{arn}#{version}").encode()


@dataclass(frozen=True, slots=True)
class SealedValue:
    envelope: bytes
    key_arn: str


class Keyring:
    def __init__(
        self, root_keys: RootKeyring, clock: Clock, data_key_cache_seconds: float = 60.0
    ) -> None:
        self._root_keys = root_keys
        self._clock = clock
        self._material: dict[str, AESGCM] = {}
        # Unwrapped data keys, by wrapped key: a cached "Decrypt result" in KMS terms. Memory
        # only, bounded in size and age; the key's state is still checked on every use.
        self._data_keys: dict[bytes, tuple[int, AESGCM]] = {}
        self._data_key_ttl_ms = int(data_key_cache_seconds * 1000)

    def _unseal(self, key: KeyRecord) -> AESGCM:
        return self._unseal_arn(key.arn, key.material_sealed)

    def material(self, arn: str, version: int, sealed: bytes) -> AESGCM:
        """A key's material version, unsealed (cached: each version is immutable)."""
        if version == 1:
            return self._unseal_arn(arn, sealed)
        name = f"{arn}#{version}"
        material = self._material.get(name)
        if material is None:
            aad = material_aad(arn, version)
            material = aead.cipher(self._root_keys.open(sealed, aad))
            self._material[name] = material
        return material

    def new_material(self, arn: str, version: int) -> bytes:
        """Fresh random key material, sealed by the root key and bound to the key and version."""
        return self._root_keys.seal(aead.new_key(), material_aad(arn, version))

    def _unseal_arn(self, arn: str, sealed: bytes) -> AESGCM:
        material = self._material.get(arn)
        if material is None:
            material = aead.cipher(self._root_keys.open(sealed, arn.encode()))
            self._material[arn] = material
        return material

    def _material_of(self, key: KeyRecord, version: int, load: MaterialLoader | None) -> AESGCM:
        if version == 1:
            return self._unseal(key)
        cached = self._material.get(f"{key.arn}#{version}")
        if cached is not None:
            return cached
        sealed = None if load is None else load(key.key_id, version)
        if sealed is None:
            raise _cannot_decrypt()
        return self.material(key.arn, version, sealed)

    def _data_key(
        self, key: KeyRecord, env: Envelope, aad: bytes, load: MaterialLoader | None
    ) -> AESGCM:
        now = self._clock.now_ms()
        wrapped = env.wrapped_key
        hit = self._data_keys.get(wrapped)
        if hit is not None and hit[0] > now:
            return hit[1]
        material = self._material_of(key, env.material_version, load)
        data_key = aead.cipher(aead.open_with(material, wrapped, aad))
        if self._data_key_ttl_ms > 0:
            if len(self._data_keys) >= DATA_KEY_CACHE_MAX:
                self._data_keys.clear()
            self._data_keys[wrapped] = (now + self._data_key_ttl_ms, data_key)
        return data_key

    def default_key(self, repo: Repository, account_id: str, region: str) -> KeyRecord:
        """`aws/secretsmanager` for the account and region, created on first use."""
        key = repo.key_by_alias(account_id, region, DEFAULT_ALIAS)
        if key is not None:
            return key
        key_id = str(uuid.uuid4())
        arn = f"arn:aws:kms:{region}:{account_id}:key/{key_id}"
        now = self._clock.now_ms()
        record = KeyRecord(
            key_id=key_id,
            arn=arn,
            account_id=account_id,
            region=region,
            manager="AWS",
            description="Default key that protects my Secrets Manager data when no other key is"
            " defined",
            key_state="Enabled",
            material_sealed=self._root_keys.seal(aead.new_key(), arn.encode()),
            created_ms=now,
        )
        repo.insert_key(record)
        repo.insert_alias_if_absent(account_id, region, DEFAULT_ALIAS, key_id, now)
        # Another node may have won the race for the alias: use whichever key it points at.
        winner = repo.key_by_alias(account_id, region, DEFAULT_ALIAS)
        assert winner is not None
        return winner

    def resolve(
        self, repo: Repository, account_id: str, region: str, key_ref: str | None
    ) -> KeyRecord:
        if key_ref is None:
            return self.default_key(repo, account_id, region)
        if key_ref.startswith("arn:"):
            if ":alias/" in key_ref:
                parts = key_ref.split(":", 5)
                key = repo.key_by_alias(parts[4], parts[3], parts[5])
            else:
                key = repo.key_by_arn(key_ref)
        elif key_ref.startswith("alias/"):
            key = (
                self.default_key(repo, account_id, region)
                if key_ref == DEFAULT_ALIAS
                else repo.key_by_alias(account_id, region, key_ref)
            )
        else:
            key = repo.key_by_id(key_ref)
            if key is not None and (key.account_id, key.region) != (account_id, region):
                key = None
        if key is None:
            raise ServiceError(
                "ResourceNotFoundException", "Secrets Manager can't find the specified KMS key."
            )
        return key

    def seal(
        self,
        key: KeyRecord,
        plaintext: bytes,
        context: Mapping[str, str],
        load: MaterialLoader | None = None,
    ) -> SealedValue:
        """Seal under the key's current material version (`load` fetches versions after the
        first, e.g. `Repository.key_material`)."""
        if key.key_state != "Enabled":
            raise ServiceError("EncryptionFailure", _state_message(key))
        aad = aead.canonical_context(context)
        data_key = aead.new_key()
        nonce = os.urandom(aead.NONCE_BYTES)
        material = self._material_of(key, key.material_version, load)
        wrapped = nonce + material.encrypt(nonce, data_key, aad)
        sealed = aead.seal(data_key, plaintext, aad)
        envelope = Envelope(key.arn, wrapped, sealed, key.material_version)
        return SealedValue(envelope.to_bytes(), key.arn)

    def open(self, repo: Repository, envelope: bytes, context: Mapping[str, str]) -> bytes:
        env = Envelope.from_bytes(envelope)
        return self.open_with_key(
            env,
            self._key_for(repo, env.key_arn),
            context,
            lambda key_id, version: KmsRepository(repo.tx).material(key_id, version),
        )

    def open_with_key(
        self,
        env: Envelope,
        key: KeyRecord | None,
        context: Mapping[str, str],
        load: MaterialLoader | None = None,
    ) -> bytes:
        """Open an envelope whose key record the caller already read (e.g. in the same query);
        `load` fetches a material version after the first that this process has not seen yet."""
        if key is None or key.arn != env.key_arn:
            raise _cannot_decrypt()
        if key.key_state != "Enabled":
            raise ServiceError("DecryptionFailure", _state_message(key))
        aad = aead.canonical_context(context)
        try:
            # The wrapped key is bound to the same context, so a cache hit by wrapped bytes is
            # still only usable for this secret version (the value's tag checks the context).
            data_key = self._data_key(key, env, aad, load)
            return aead.open_with(data_key, env.sealed_value, aad)
        except aead.SealError as exc:
            raise _cannot_decrypt() from exc

    def _key_for(self, repo: Repository, key_arn: str) -> KeyRecord:
        key = repo.key_by_arn(key_arn)
        if key is None:
            raise _cannot_decrypt()
        return key


def _cannot_decrypt() -> ServiceError:
    return ServiceError(
        "DecryptionFailure",
        "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
    )


def _state_message(key: KeyRecord) -> str:
    state = "pending deletion" if key.key_state == "PendingDeletion" else key.key_state.lower()
    return f"Access to KMS is not allowed. The KMS key {key.arn} is {state}."
