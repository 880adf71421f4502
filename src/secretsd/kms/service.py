"""The KMS key service (TrentService subset): customer managed symmetric keys, aliases, crypto.

Every call is authorized as KMS does it: the key policy is required (identity policies count only
where it delegates to the account: `evaluate(..., require_resource_policy=True)`); actions
without a key (CreateKey, ListKeys, ListAliases, GenerateRandom) are decided by identity policies
alone.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from secretsd.clock import Clock
from secretsd.errors import ServiceError
from secretsd.kms import blob
from secretsd.kms.keyring import DEFAULT_ALIAS, Keyring
from secretsd.kms.policies import default_key_policy, key_policy
from secretsd.policy import ContextValue
from secretsd.service.authorization import Authorizer
from secretsd.service.context import CallContext
from secretsd.store.database import Database
from secretsd.store.kms_repository import AliasRecord, KmsKey, KmsRepository
from secretsd.store.repository import Repository

DAY_MS = 86_400_000
DEFAULT_ROTATION_DAYS = 365
RESERVED_ALIAS_PREFIX = "alias/aws/"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


# AWS's default key policy for keys created through the API, as GetKeyPolicy returns it
# (KMS developer guide, "Default key policy"), including its " : " spacing.
_POLICY_ACTIONS = frozenset({"kms:GetKeyPolicy", "kms:PutKeyPolicy"})


def _err(code: str, message: str = "") -> ServiceError:
    return ServiceError(code, message)


def _validation(message: str) -> ServiceError:
    return _err("ValidationException", message)


@dataclass(frozen=True, slots=True)
class CryptoResult:
    key_arn: str
    ciphertext: bytes | None = None
    plaintext: bytes | None = None
    source_key_arn: str | None = None


class KmsService:
    def __init__(
        self, db: Database, keyring: Keyring, clock: Clock, authorizer: Authorizer
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._clock = clock
        self._auth = authorizer

    # -- permissions ----------------------------------------------------------------------------
    def _allow(
        self,
        ctx: CallContext,
        action: str,
        key: KmsKey,
        context: Mapping[str, str] | None = None,
        alias: str | None = None,
    ) -> None:
        keys: dict[str, ContextValue] = {"kms:CallerAccount": ctx.account_id}
        if context is not None:
            keys["kms:EncryptionContextKeys"] = list(context)
            for name, value in context.items():
                keys[f"kms:EncryptionContext:{name}"] = value
        if alias is not None:
            keys["kms:RequestAlias"] = alias
        policy = self.key_policy_text(key)
        if action in _POLICY_ACTIONS and ctx.identity.is_root and ctx.account_id == key.account_id:
            # secretsd's rule for emergency access: the account's root user can always read and
            # replace a key policy, so a policy naming nobody cannot make a key unmanageable.
            policy = default_key_policy(key.account_id)
        self._auth.require(
            ctx,
            action,
            key.arn,
            resource_account=key.account_id,
            resource_policy=policy,
            condition_keys=keys,
            require_resource_policy=True,
        )

    @staticmethod
    def key_policy_text(key: KmsKey) -> str:
        return key_policy(key.manager, key.account_id, key.region, key.policy)

    def require_unscoped(self, ctx: CallContext) -> None:
        """Actions without a key resource (CreateKey, ListKeys, ListAliases, GenerateRandom)."""
        self._auth.require(ctx, "kms:" + ctx.operation)

    # -- lookups ------------------------------------------------------------------------------
    def _find(
        self,
        repo: KmsRepository,
        ctx: CallContext,
        ref: str,
        action: str | None = None,
        context: Mapping[str, str] | None = None,
    ) -> KmsKey:
        """A key by key id, key ARN, alias name or alias ARN, in the caller's account/region,
        once the caller may perform `action` on it (default: the operation's own action)."""
        key = self._lookup(repo, ctx, ref)
        alias = ref if ref.startswith("alias/") else None
        self._allow(ctx, action or "kms:" + ctx.operation, key, context, alias)
        return key

    def _lookup(self, repo: KmsRepository, ctx: CallContext, ref: str) -> KmsKey:
        if ref.startswith("arn:"):
            parts = ref.split(":", 5)
            if len(parts) != 6 or (parts[3], parts[4]) != (ctx.region, ctx.account_id):
                raise _err("NotFoundException", f"Invalid arn {ref}")
            resource = parts[5]
            if resource.startswith("key/"):
                return self._by_id(repo, ctx, resource[4:])
            if resource.startswith("alias/"):
                return self._by_alias(repo, ctx, resource)
            raise _err("NotFoundException", f"Invalid arn {ref}")
        if ref.startswith("alias/"):
            return self._by_alias(repo, ctx, ref)
        return self._by_id(repo, ctx, ref)

    def _by_id(self, repo: KmsRepository, ctx: CallContext, key_id: str) -> KmsKey:
        if not _UUID.match(key_id):
            raise _err("NotFoundException", f"Invalid keyId '{key_id}'")
        key = repo.key(ctx.account_id, ctx.region, key_id.lower())
        if key is None:
            raise _err("NotFoundException", f"Key '{self._key_arn(ctx, key_id)}' does not exist")
        return key

    def _by_alias(self, repo: KmsRepository, ctx: CallContext, alias_name: str) -> KmsKey:
        if alias_name == DEFAULT_ALIAS:
            # AWS creates the AWS managed key on first use, from any service.
            self._keyring.default_key(Repository(repo.tx), ctx.account_id, ctx.region)
        key = repo.key_by_alias(ctx.account_id, ctx.region, alias_name)
        if key is None:
            raise _err(
                "NotFoundException", f"Alias {self._alias_arn(ctx, alias_name)} is not found."
            )
        return key

    @staticmethod
    def _key_arn(ctx: CallContext, key_id: str) -> str:
        return f"arn:aws:kms:{ctx.region}:{ctx.account_id}:key/{key_id}"

    @staticmethod
    def _alias_arn(ctx: CallContext, alias_name: str) -> str:
        return f"arn:aws:kms:{ctx.region}:{ctx.account_id}:{alias_name}"

    @staticmethod
    def _not_pending(key: KmsKey) -> None:
        if key.key_state == "PendingDeletion":
            raise _err("KMSInvalidStateException", f"{key.arn} is pending deletion.")

    def _usable(self, key: KmsKey) -> None:
        self._not_pending(key)
        if key.key_state == "Disabled":
            raise _err("DisabledException", f"{key.arn} is disabled.")

    @staticmethod
    def _customer_managed(key: KmsKey) -> None:
        if key.manager != "CUSTOMER":
            raise _err(
                "UnsupportedOperationException",
                f"{key.arn} is an AWS managed key; this operation is not supported for it.",
            )

    # -- keys ---------------------------------------------------------------------------------
    def create_key(
        self,
        ctx: CallContext,
        *,
        description: str,
        key_usage: str,
        key_spec: str,
        origin: str,
        multi_region: bool,
        policy: str | None,
        tags: Sequence[tuple[str, str]],
    ) -> KmsKey:
        self.require_unscoped(ctx)
        if key_spec != "SYMMETRIC_DEFAULT" or key_usage != "ENCRYPT_DECRYPT":
            raise _err(
                "UnsupportedOperationException",
                f"KeySpec {key_spec} with KeyUsage {key_usage} is not supported by this server;"
                " only SYMMETRIC_DEFAULT ENCRYPT_DECRYPT keys are.",
            )
        if origin != "AWS_KMS" or multi_region:
            raise _err(
                "UnsupportedOperationException",
                "Only single-Region keys with Origin AWS_KMS are supported by this server.",
            )
        key_id = str(uuid.uuid4())
        arn = self._key_arn(ctx, key_id)
        key = KmsKey(
            key_id=key_id,
            arn=arn,
            account_id=ctx.account_id,
            region=ctx.region,
            manager="CUSTOMER",
            description=description,
            key_state="Enabled",
            material_sealed=self._keyring.new_material(arn, 1),
            created_ms=self._clock.now_ms(),
            material_version=1,
            deletion_ms=None,
            policy=policy if policy is not None else default_key_policy(ctx.account_id),
            rotation_period_days=None,
            next_rotation_ms=None,
            tags=tuple(tags),
        )
        with self._db.transaction(write=True) as tx:
            KmsRepository(tx).insert_key(key)
        return key

    def describe_key(self, ctx: CallContext, key_ref: str) -> KmsKey:
        with self._db.transaction(write=key_ref.endswith(DEFAULT_ALIAS)) as tx:
            return self._find(KmsRepository(tx), ctx, key_ref)

    def list_keys(
        self, ctx: CallContext, limit: int, marker: str | None
    ) -> tuple[list[KmsKey], str | None]:
        self.require_unscoped(ctx)
        with self._db.transaction() as tx:
            keys = KmsRepository(tx).keys(ctx.account_id, ctx.region, marker or "", limit + 1)
        if len(keys) > limit:
            return keys[:limit], keys[limit - 1].key_id
        return keys, None

    def _change(self, ctx: CallContext, key_ref: str, check: str, **changes: object) -> KmsKey:
        with self._db.transaction(write=True) as tx:
            repo = KmsRepository(tx)
            key = self._find(repo, ctx, key_ref)
            self._customer_managed(key)
            if check == "usable":
                self._usable(key)
            elif check == "not-pending":
                self._not_pending(key)
            if changes:
                repo.update_key(key.key_id, **changes)
            return key

    def enable_key(self, ctx: CallContext, key_ref: str) -> None:
        self._change(ctx, key_ref, "not-pending", key_state="Enabled")

    def disable_key(self, ctx: CallContext, key_ref: str) -> None:
        self._change(ctx, key_ref, "not-pending", key_state="Disabled")

    def schedule_key_deletion(
        self, ctx: CallContext, key_ref: str, days: int | None
    ) -> tuple[KmsKey, int, int]:
        window = 30 if days is None else days
        if window < 7:
            raise _validation(
                f"1 validation error detected: Value '{window}' at 'pendingWindowInDays' failed to"
                " satisfy constraint: Member must have value greater than or equal to 7"
            )
        if window > 30:
            raise _validation(
                f"1 validation error detected: Value '{window}' at 'pendingWindowInDays' failed to"
                " satisfy constraint: Member must have value less than or equal to 30"
            )
        deletion_ms = self._clock.now_ms() + window * DAY_MS
        key = self._change(
            ctx, key_ref, "not-pending", key_state="PendingDeletion", deletion_ms=deletion_ms
        )
        return key, deletion_ms, window

    def cancel_key_deletion(self, ctx: CallContext, key_ref: str) -> KmsKey:
        with self._db.transaction(write=True) as tx:
            repo = KmsRepository(tx)
            key = self._find(repo, ctx, key_ref)
            self._customer_managed(key)
            if key.key_state != "PendingDeletion":
                raise _err("KMSInvalidStateException", f"{key.arn} is not pending deletion.")
            # As AWS: a key whose deletion is cancelled comes back disabled.
            repo.update_key(key.key_id, key_state="Disabled", deletion_ms=None)
            return key

    def purge_expired(self, batch: int = 100) -> int:
        """Delete keys whose waiting period has ended; returns how many were deleted."""
        return self._db.delete_in_batches(
            lambda tx, n: KmsRepository(tx).expired_key_ids(self._clock.now_ms(), n),
            lambda tx, key_id: KmsRepository(tx).delete_key(key_id),
            batch,
        )

    # -- tags, policies, rotation --------------------------------------------------------------
    def tag_resource(self, ctx: CallContext, key_ref: str, tags: Sequence[tuple[str, str]]) -> None:
        with self._db.transaction(write=True) as tx:
            repo = KmsRepository(tx)
            key = self._find(repo, ctx, key_ref)
            self._customer_managed(key)
            self._not_pending(key)
            merged = dict(key.tags)
            merged.update(tags)
            repo.update_key(key.key_id, tags=tuple(merged.items()))

    def untag_resource(self, ctx: CallContext, key_ref: str, keys: Sequence[str]) -> None:
        with self._db.transaction(write=True) as tx:
            repo = KmsRepository(tx)
            key = self._find(repo, ctx, key_ref)
            self._customer_managed(key)
            self._not_pending(key)
            repo.update_key(key.key_id, tags=tuple(t for t in key.tags if t[0] not in keys))

    def get_key_policy(self, ctx: CallContext, key_ref: str, name: str) -> str:
        _policy_name(name)
        return self.key_policy_text(self.describe_key(ctx, key_ref))

    def put_key_policy(self, ctx: CallContext, key_ref: str, name: str, policy: str) -> None:
        _policy_name(name)
        self._change(ctx, key_ref, "not-pending", policy=policy)

    def enable_key_rotation(self, ctx: CallContext, key_ref: str, days: int | None) -> None:
        period = DEFAULT_ROTATION_DAYS if days is None else days
        if not 90 <= period <= 2560:
            raise _validation(
                f"1 validation error detected: Value '{period}' at 'rotationPeriodInDays' failed"
                " to satisfy constraint: Member must have value between 90 and 2560"
            )
        self._change(
            ctx,
            key_ref,
            "usable",
            rotation_period_days=period,
            next_rotation_ms=self._clock.now_ms() + period * DAY_MS,
        )

    def disable_key_rotation(self, ctx: CallContext, key_ref: str) -> None:
        self._change(ctx, key_ref, "usable", rotation_period_days=None, next_rotation_ms=None)

    def rotate_key_on_demand(self, ctx: CallContext, key_ref: str) -> KmsKey:
        with self._db.transaction(write=True) as tx:
            repo = KmsRepository(tx)
            key = self._find(repo, ctx, key_ref)
            self._customer_managed(key)
            self._usable(key)
            self._add_material(repo, key)
            return key

    def _add_material(self, repo: KmsRepository, key: KmsKey, **changes: object) -> None:
        version = key.material_version + 1
        repo.insert_material(
            key.key_id, version, self._keyring.new_material(key.arn, version), self._clock.now_ms()
        )
        repo.update_key(key.key_id, material_version=version, **changes)

    def rotate_due(self, batch: int = 100) -> int:
        """Automatic rotation: keys whose NextRotationDate has passed get new material and their
        next date one period later. Old material stays, so old ciphertexts still decrypt."""
        rotated = 0
        now = self._clock.now_ms()
        with self._db.transaction() as tx:
            due = KmsRepository(tx).rotation_due(now, batch)
        for key_id in due:
            with self._db.transaction(write=True) as tx:
                repo = KmsRepository(tx)
                key = repo.key_by_id(key_id)
                # Re-checked inside the write: another worker or node may have rotated it.
                if key is None or key.next_rotation_ms is None or key.next_rotation_ms > now:
                    continue
                if key.key_state != "Enabled" or key.rotation_period_days is None:
                    continue
                self._add_material(
                    repo, key, next_rotation_ms=now + key.rotation_period_days * DAY_MS
                )
                rotated += 1
        return rotated

    # -- aliases ------------------------------------------------------------------------------
    def _check_alias_name(self, alias_name: str) -> None:
        if not alias_name.startswith("alias/"):
            # Message as AWS returns it for a name without the prefix.
            raise _err(
                "ValidationException",
                'Alias must start with the prefix "alias/". Please see'
                " https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html",
            )
        if alias_name.startswith(RESERVED_ALIAS_PREFIX):
            raise _err("NotAuthorizedException")
        if ":" in alias_name or not re.fullmatch(r"alias/[a-zA-Z0-9/_-]+", alias_name):
            raise _err(
                "InvalidAliasNameException",
                f"{alias_name} contains invalid characters for an alias",
            )

    def _alias_target(self, repo: KmsRepository, ctx: CallContext, target: str) -> KmsKey:
        if target.startswith("alias/") or ":alias/" in target:
            raise _validation("Aliases must refer to keys. Not aliases")
        key = self._find(repo, ctx, target)
        self._not_pending(key)
        if key.manager != "CUSTOMER":
            raise _err("NotAuthorizedException")
        return key

    def _allow_alias(self, ctx: CallContext, alias_name: str) -> None:
        """Alias actions need permission on the alias too (identity policies only)."""
        self._auth.require(ctx, "kms:" + ctx.operation, self._alias_arn(ctx, alias_name))

    def create_alias(self, ctx: CallContext, alias_name: str, target: str) -> None:
        self._check_alias_name(alias_name)
        self._allow_alias(ctx, alias_name)
        with self._db.transaction(write=True) as tx:
            repo = KmsRepository(tx)
            key = self._alias_target(repo, ctx, target)
            if repo.alias(ctx.account_id, ctx.region, alias_name) is not None:
                raise _err(
                    "AlreadyExistsException",
                    f"An alias with the name {self._alias_arn(ctx, alias_name)} already exists",
                )
            repo.insert_alias(
                ctx.account_id, ctx.region, alias_name, key.key_id, self._clock.now_ms()
            )

    def update_alias(self, ctx: CallContext, alias_name: str, target: str) -> None:
        self._check_alias_name(alias_name)
        self._allow_alias(ctx, alias_name)
        with self._db.transaction(write=True) as tx:
            repo = KmsRepository(tx)
            current = repo.alias(ctx.account_id, ctx.region, alias_name)
            if current is None:
                raise _err(
                    "NotFoundException", f"Alias {self._alias_arn(ctx, alias_name)} is not found."
                )
            # UpdateAlias needs permission on the key the alias leaves as well.
            self._find(repo, ctx, current.key_id)
            key = self._alias_target(repo, ctx, target)
            repo.retarget_alias(
                ctx.account_id, ctx.region, alias_name, key.key_id, self._clock.now_ms()
            )

    def delete_alias(self, ctx: CallContext, alias_name: str) -> None:
        self._check_alias_name(alias_name)
        self._allow_alias(ctx, alias_name)
        with self._db.transaction(write=True) as tx:
            repo = KmsRepository(tx)
            current = repo.alias(ctx.account_id, ctx.region, alias_name)
            if current is None:
                raise _err(
                    "NotFoundException", f"Alias {self._alias_arn(ctx, alias_name)} is not found."
                )
            self._find(repo, ctx, current.key_id)
            repo.delete_alias(ctx.account_id, ctx.region, alias_name)

    def list_aliases(
        self, ctx: CallContext, key_ref: str | None, limit: int, marker: str | None
    ) -> tuple[list[AliasRecord], str | None]:
        self.require_unscoped(ctx)
        with self._db.transaction() as tx:
            repo = KmsRepository(tx)
            key_id = None if key_ref is None else self._lookup(repo, ctx, key_ref).key_id
            found = repo.aliases(ctx.account_id, ctx.region, key_id, marker or "", limit + 1)
        if len(found) > limit:
            return found[:limit], found[limit - 1].alias_name
        return found, None

    def alias_arn(self, ctx: CallContext, alias_name: str) -> str:
        return self._alias_arn(ctx, alias_name)

    # -- cryptography --------------------------------------------------------------------------
    def _seal(self, key: KmsKey, plaintext: bytes, context: Mapping[str, str]) -> bytes:
        material = self._keyring.material(key.arn, key.material_version, self._current(key))
        return blob.seal(material, key.key_id, key.material_version, plaintext, context)

    def _current(self, key: KmsKey) -> bytes:
        if key.material_version == 1:
            return key.material_sealed
        with self._db.statement() as tx:
            sealed = KmsRepository(tx).material(key.key_id, key.material_version)
        assert sealed is not None
        return sealed

    def _encrypt_with(
        self,
        ctx: CallContext,
        key_ref: str,
        plaintext: bytes,
        context: Mapping[str, str],
        action: str | None = None,
    ) -> CryptoResult:
        with self._db.transaction(write=key_ref.endswith(DEFAULT_ALIAS)) as tx:
            key = self._find(KmsRepository(tx), ctx, key_ref, action, context)
        self._usable(key)
        return CryptoResult(key.arn, ciphertext=self._seal(key, plaintext, context))

    def encrypt(
        self, ctx: CallContext, key_ref: str, plaintext: bytes, context: Mapping[str, str]
    ) -> CryptoResult:
        return self._encrypt_with(ctx, key_ref, plaintext, context)

    def decrypt(
        self,
        ctx: CallContext,
        ciphertext: bytes,
        context: Mapping[str, str],
        key_ref: str | None,
        action: str = "kms:Decrypt",
    ) -> CryptoResult:
        try:
            header = blob.parse_header(ciphertext)
        except (blob.BlobError, ValueError) as exc:
            raise _err("InvalidCiphertextException") from exc
        with self._db.transaction() as tx:
            repo = KmsRepository(tx)
            key = repo.key(ctx.account_id, ctx.region, header.key_id)
            if key is None:
                raise _err("InvalidCiphertextException")
            self._allow(ctx, action, key, context)
            if key_ref is not None and self._lookup(repo, ctx, key_ref).key_id != key.key_id:
                raise _err(
                    "IncorrectKeyException",
                    "The key ID in the request does not identify a CMK that can perform this"
                    " operation.",
                )
            sealed = (
                key.material_sealed
                if header.material_version == 1
                else repo.material(key.key_id, header.material_version)
            )
        self._usable(key)
        if sealed is None:
            raise _err("InvalidCiphertextException")
        material = self._keyring.material(key.arn, header.material_version, sealed)
        try:
            plaintext = blob.open_blob(material, header, ciphertext, context)
        except blob.BlobError as exc:
            raise _err("InvalidCiphertextException") from exc
        return CryptoResult(key.arn, plaintext=plaintext)

    def re_encrypt(
        self,
        ctx: CallContext,
        ciphertext: bytes,
        source_context: Mapping[str, str],
        source_key_ref: str | None,
        destination_key_ref: str,
        destination_context: Mapping[str, str],
    ) -> CryptoResult:
        source = self.decrypt(
            ctx, ciphertext, source_context, source_key_ref, action="kms:ReEncryptFrom"
        )
        assert source.plaintext is not None
        out = self._encrypt_with(
            ctx, destination_key_ref, source.plaintext, destination_context, "kms:ReEncryptTo"
        )
        return CryptoResult(out.key_arn, ciphertext=out.ciphertext, source_key_arn=source.key_arn)

    def generate_data_key(
        self,
        ctx: CallContext,
        key_ref: str,
        context: Mapping[str, str],
        key_spec: str | None,
        number_of_bytes: int | None,
    ) -> CryptoResult:
        if (key_spec is None) == (number_of_bytes is None):
            raise _validation("Please specify either number of bytes or key spec.")
        size = (
            number_of_bytes
            if number_of_bytes is not None
            else (16 if key_spec == "AES_128" else 32)
        )
        data_key = os.urandom(size)
        out = self._encrypt_with(ctx, key_ref, data_key, context)
        return CryptoResult(out.key_arn, ciphertext=out.ciphertext, plaintext=data_key)


def _policy_name(name: str) -> None:
    if name != "default":
        raise _err("NotFoundException", "No such policy exists")
