"""KMS-style keys: the per-account `aws/secretsmanager` key and data-key wrapping.

Key material is sealed by the root key (bound to the key ARN) and only ever unsealed in memory.
Unsealed material is cached per process: keys are immutable once created, so the cache never
needs invalidating for correctness (state changes such as disabling are read from the store).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from secretsd.clock import Clock
from secretsd.crypto import aead
from secretsd.crypto.envelope import Envelope
from secretsd.errors import ServiceError
from secretsd.store.records import KeyRecord
from secretsd.store.repository import Repository

DEFAULT_ALIAS = "alias/aws/secretsmanager"


@dataclass(frozen=True, slots=True)
class SealedValue:
    envelope: bytes
    key_arn: str


class Keyring:
    def __init__(self, root_key: bytes, clock: Clock) -> None:
        self._root_key = root_key
        self._clock = clock
        self._material: dict[str, bytes] = {}

    def _unseal(self, key: KeyRecord) -> bytes:
        material = self._material.get(key.arn)
        if material is None:
            material = aead.open_sealed(self._root_key, key.material_sealed, key.arn.encode())
            self._material[key.arn] = material
        return material

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
            material_sealed=aead.seal(self._root_key, aead.new_key(), arn.encode()),
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

    def seal(self, key: KeyRecord, plaintext: bytes, context: Mapping[str, str]) -> SealedValue:
        if key.key_state != "Enabled":
            raise ServiceError(
                "EncryptionFailure",
                f"Access to KMS is not allowed. The KMS key {key.arn} is {key.key_state.lower()}.",
            )
        aad = aead.canonical_context(context)
        data_key = aead.new_key()
        wrapped = aead.seal(self._unseal(key), data_key, aad)
        sealed = aead.seal(data_key, plaintext, aad)
        return SealedValue(Envelope(key.arn, wrapped, sealed).to_bytes(), key.arn)

    def open(self, repo: Repository, envelope: bytes, context: Mapping[str, str]) -> bytes:
        env = Envelope.from_bytes(envelope)
        return self.open_with_key(env, self._key_for(repo, env.key_arn), context)

    def open_with_key(
        self, env: Envelope, key: KeyRecord | None, context: Mapping[str, str]
    ) -> bytes:
        """Open an envelope whose key record the caller already read (e.g. in the same query)."""
        if key is None or key.arn != env.key_arn:
            raise _cannot_decrypt()
        if key.key_state != "Enabled":
            raise ServiceError(
                "DecryptionFailure",
                f"Access to KMS is not allowed. The KMS key {key.arn} is {key.key_state.lower()}.",
            )
        aad = aead.canonical_context(context)
        try:
            data_key = aead.open_sealed(self._unseal(key), env.wrapped_key, aad)
            return aead.open_sealed(data_key, env.sealed_value, aad)
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
