"""The Secrets Manager domain: secrets, versions, staging labels, deletion, tags and policies.

Typed arguments in, records out; one store transaction per operation. AWS's rules and messages
live here (and in staging.py); the store knows nothing of them.
"""

from __future__ import annotations

import hmac
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from secretsd import arn as arns
from secretsd.clock import DAY_MS, Clock, day_start_ms
from secretsd.crypto.envelope import Envelope
from secretsd.errors import ServiceError, invalid_parameter, invalid_request, not_found, validation
from secretsd.kms.keyring import DEFAULT_ALIAS, Keyring
from secretsd.kms.policies import key_policy
from secretsd.policy import ContextValue, Policy, PolicySyntaxError, analysis, request_tag_keys
from secretsd.policy import parse_policy as parse_resource_policy
from secretsd.service import staging
from secretsd.service.authorization import Authorizer
from secretsd.service.context import CallContext
from secretsd.service.filters import FilterTarget, matches, validate_filters
from secretsd.service.pagination import TokenCodec
from secretsd.service.views import (
    BatchError,
    DeleteResult,
    Page,
    SecretValue,
    SecretView,
    VersionView,
    WriteResult,
)
from secretsd.store.cross_account import CrossAccountRepository
from secretsd.store.database import Database, StoreConflict
from secretsd.store.group_commit import unawaited_commits
from secretsd.store.kms_repository import KmsRepository
from secretsd.store.records import KeyRecord, SecretRecord, VersionRecord
from secretsd.store.replicas import ReplicaRepository
from secretsd.store.repository import (
    READ_BY_ARN,
    READ_BY_NAME,
    SORT_COLUMNS,
    Repository,
    WriteTarget,
)

MAX_TAGS = 50
MAX_VALUE_BYTES = 65_536
MIN_RECOVERY_DAYS = 7
MAX_RECOVERY_DAYS = 30
DEFAULT_RECOVERY_DAYS = 30
# Versions are only worth scanning for retention once a secret could have more than AWS keeps.
RETENTION_KEEP = 100
# ... and every version younger than a day (aws-behaviour.md, retention).
RETENTION_AGE_MS = DAY_MS

MSG_TOKEN_REQUIRED = "You must provide a ClientRequestToken value. We recommend a UUID-type value."
MSG_MARKED_FOR_DELETION = (
    "You can't perform this operation on the secret because it was marked for deletion."
)
MSG_BOTH_VALUES = (
    "You can't specify both a binary secret value and a string secret value in the same secret."
)


def _token_in_use(token: str, arn: str) -> ServiceError:
    return ServiceError(
        "ResourceExistsException",
        f"You can't use ClientRequestToken {token} because that value is already in use for a"
        f" version of secret {arn}.",
    )


# Decrypted values kept per worker, least recently read first out. On the realistic benchmark's
# reads (10,000 secrets, Zipf s = 1.1, 30 s lifetime) a served worker answered 84% from it when a
# full cache emptied itself, 92% with least-recently-read eviction at this size. 8,192 entries
# answered 95% but cost 13 MiB more resident memory and measured slower (3,075-4,067 against
# 4,200-4,448 req/s; why is not known: the garbage collector is 2.5% of the loop's CPU).
VALUE_CACHE_MAX = 4096

SM_BATCH_GET = "secretsmanager:BatchGetSecretValue"
SM_CREATE = "secretsmanager:CreateSecret"
SM_DELETE = "secretsmanager:DeleteSecret"
SM_DELETE_POLICY = "secretsmanager:DeleteResourcePolicy"
SM_DESCRIBE = "secretsmanager:DescribeSecret"
SM_GET_POLICY = "secretsmanager:GetResourcePolicy"
SM_GET_VALUE = "secretsmanager:GetSecretValue"
SM_LIST = "secretsmanager:ListSecrets"
SM_LIST_VERSIONS = "secretsmanager:ListSecretVersionIds"
SM_PUT = "secretsmanager:PutSecretValue"
SM_PUT_POLICY = "secretsmanager:PutResourcePolicy"
SM_RESTORE = "secretsmanager:RestoreSecret"
SM_TAG = "secretsmanager:TagResource"
SM_UNTAG = "secretsmanager:UntagResource"
SM_UPDATE = "secretsmanager:UpdateSecret"
SM_UPDATE_STAGE = "secretsmanager:UpdateSecretVersionStage"
SM_VALIDATE_POLICY = "secretsmanager:ValidateResourcePolicy"
_POLICY_ACTIONS = frozenset({SM_GET_POLICY, SM_PUT_POLICY, SM_DELETE_POLICY})
# What a replica refuses: every change is made on its primary and replicated (moto's replication
# tests, which also refuse GetResourcePolicy on a replica).
REPLICA_REFUSED = frozenset(
    {
        SM_UPDATE,
        SM_PUT,
        SM_UPDATE_STAGE,
        SM_TAG,
        SM_UNTAG,
        SM_PUT_POLICY,
        SM_GET_POLICY,
        SM_DELETE_POLICY,
        SM_DELETE,
        SM_RESTORE,
        "secretsmanager:RotateSecret",
        "secretsmanager:CancelRotateSecret",
        "secretsmanager:ReplicateSecretToRegions",
        "secretsmanager:RemoveRegionsFromReplication",
    }
)
# A cross-account replica has its own tags, resource policy and lifecycle (AWS: "an independent
# secret that has its own access policies, KMS key, and lifecycle"); only its value comes from
# the primary, so what would change the value (or end the replica) is refused.
CROSS_ACCOUNT_REFUSED = frozenset(
    {
        SM_UPDATE,
        SM_PUT,
        SM_UPDATE_STAGE,
        SM_DELETE,
        SM_RESTORE,
        "secretsmanager:RotateSecret",
        "secretsmanager:CancelRotateSecret",
        "secretsmanager:ReplicateSecretToRegions",
        "secretsmanager:RemoveRegionsFromReplication",
    }
)
MSG_REPLICA_REFUSED = (
    "Operation not permitted on a replica secret. Call must be made in primary secret's region."
)
KMS_DECRYPT = "kms:Decrypt"
# "kms:GenerateDataKey and kms:Decrypt" to write with a customer managed key (AWS's
# "Secret encryption and decryption in AWS Secrets Manager").
KMS_WRITE_ACTIONS = ("kms:GenerateDataKey", KMS_DECRYPT)

# Recorded (shared/reference/aws-behaviour.md, cross-account section).
MSG_DEFAULT_KEY_CROSS_ACCOUNT = (
    "You can't access a secret from a different AWS account if you encrypt the secret with the"
    " default KMS service key."
)
# What Secrets Manager answers when KMS refuses the caller (many public reports, e.g.
# github.com/aws-samples/aws-secrets-manager-rotation-lambdas issue 53; HTTP 400).
MSG_KMS_DENIED = "Access to KMS is not allowed"


# (how the secret is found, the values it is found by, stage, version id)
_CacheKey = tuple[str, tuple[str, ...], str | None, str | None]


@dataclass(frozen=True, slots=True)
class _Cached:
    token: tuple[int, int]
    # Database.scope_version of the secret when it was read: its own writes declared as only
    # its own (a PutSecretValue, say) invalidate this entry, and no other secret's.
    scope_version: int
    expires_ms: int
    value: SecretValue


def _name_exists(name: str) -> ServiceError:
    return ServiceError(
        "ResourceExistsException", f"The operation failed because the secret {name} already exists."
    )


def encryption_context(arn: str, version_id: str) -> dict[str, str]:
    return {"SecretARN": arn, "SecretVersionId": version_id}


class SecretsService:
    def __init__(
        self,
        db: Database,
        keyring: Keyring,
        clock: Clock,
        tokens: TokenCodec,
        authorizer: Authorizer,
        value_cache_seconds: float = 0.0,
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._clock = clock
        self._tokens = tokens
        self._auth = authorizer
        # Decrypted reads, valid only while the database is unchanged (Database.change_token)
        # and for at most value_cache_seconds: memory only, never on disk.
        self._value_cache: OrderedDict[_CacheKey, _Cached] = OrderedDict()
        self._value_cache_ms = int(value_cache_seconds * 1000)

    # -- lookups ------------------------------------------------------------------------------
    def _where(self, ctx: CallContext, secret_id: str) -> tuple[str, tuple[str, ...]] | None:
        """How to find `secret_id` (name, full or partial ARN); None when it cannot be here."""
        ref = arns.parse_secret_id(secret_id)
        if ref.kind == "name":
            return READ_BY_NAME, (ctx.account_id, ctx.region, ref.name)
        if ref.region != ctx.region:
            return None
        # Another account's secret is looked up too: its resource policy decides (_allow).
        if ref.kind == "full_arn":
            assert ref.arn is not None
            return READ_BY_ARN, (ref.arn,)
        assert ref.account is not None and ref.region is not None
        return READ_BY_NAME, (ref.account, ref.region, ref.name)

    def _find(
        self, repo: Repository, ctx: CallContext, secret_id: str, *, for_update: bool = False
    ) -> SecretRecord | None:
        where = self._where(ctx, secret_id)
        if where is None:
            return None
        if where[0] == READ_BY_ARN:
            found = repo.secret_by_arn(where[1][0], for_update=for_update)
        else:
            account, region, name = where[1]
            found = repo.secret_by_name(account, region, name, for_update=for_update)
        if found is not None:
            ctx.resolved.append(found.arn)
        return found

    def _get(
        self,
        repo: Repository,
        ctx: CallContext,
        secret_id: str,
        action: str,
        *,
        keys: Mapping[str, ContextValue] | None = None,
        for_update: bool = False,
        allow_deleted: bool = False,
    ) -> SecretRecord:
        """The secret, once the caller is allowed `action` on it (AccessDenied first, then
        not-found and deletion errors, as AWS orders them)."""
        secret = self._find(repo, ctx, secret_id, for_update=for_update)
        if secret is None:
            self._allow_missing(ctx, action, secret_id, keys)
            raise not_found()
        self._admit(repo, ctx, action, secret, keys, allow_deleted=allow_deleted)
        return secret

    def _admit(
        self,
        repo: Repository,
        ctx: CallContext,
        action: str,
        secret: SecretRecord,
        keys: Mapping[str, ContextValue] | None,
        *,
        allow_deleted: bool = False,
        cross_account_replica: bool | None = None,
    ) -> None:
        """May the caller do `action` on the secret, in its state? (`cross_account_replica`:
        whether it is one, when the caller already read it.)"""
        self._allow(ctx, action, secret, keys)
        if action in REPLICA_REFUSED:
            refuse_on_replica(secret)
        if action in CROSS_ACCOUNT_REFUSED:
            if cross_account_replica is None:
                refuse_on_cross_account_replica(repo, secret)
            elif cross_account_replica:
                raise invalid_parameter(MSG_REPLICA_REFUSED)
        if secret.deletion_ms is not None and not allow_deleted:
            raise invalid_request(MSG_MARKED_FOR_DELETION)

    def _get_for_write(
        self, repo: Repository, ctx: CallContext, secret_id: str, action: str, token: str
    ) -> WriteTarget:
        """`_get` (locking the secret) for a new version with id `token`, with what that needs
        read in the same statement (Repository.write_target)."""
        where = self._where(ctx, secret_id)
        target = (
            None
            if where is None
            else repo.write_target(
                where[0], where[1], token=token, default_alias=DEFAULT_ALIAS, lock=True
            )
        )
        if target is None:
            self._allow_missing(ctx, action, secret_id)
            raise not_found()
        ctx.resolved.append(target.secret.arn)
        self._admit(
            repo,
            ctx,
            action,
            target.secret,
            None,
            cross_account_replica=target.cross_account_replica,
        )
        return target

    def locate(
        self,
        repo: Repository,
        ctx: CallContext,
        secret_id: str,
        action: str,
        *,
        keys: Mapping[str, ContextValue] | None = None,
        for_update: bool = False,
    ) -> SecretRecord:
        """The secret `secret_id` names, once the caller may do `action` on it (for the other
        services of the Secrets Manager API: replication, rotation)."""
        return self._get(repo, ctx, secret_id, action, keys=keys, for_update=for_update)

    # -- permissions ----------------------------------------------------------------------------
    def authorize(
        self, ctx: CallContext, action: str, secret_id: str, keys: Mapping[str, ContextValue]
    ) -> None:
        """Only the permission check of `action` on a secret (existing or not)."""
        with self._db.transaction() as tx:
            secret = self._find(Repository(tx), ctx, secret_id)
        if secret is None:
            self._allow_missing(ctx, action, secret_id, keys)
        else:
            self._allow(ctx, action, secret, keys)

    def require_on(self, ctx: CallContext, action: str, resource: str) -> None:
        """Another service's permission Secrets Manager needs of the caller (iam:PassRole)."""
        self._auth.require(ctx, action, resource, resource_account=resource.split(":")[4])

    def require_unscoped(self, ctx: CallContext, action: str) -> None:
        """For actions without a resource (their Resource element must be "*")."""
        self._auth.require(ctx, action)

    def _allow(
        self,
        ctx: CallContext,
        action: str,
        secret: SecretRecord,
        keys: Mapping[str, ContextValue] | None = None,
    ) -> None:
        def context() -> dict[str, ContextValue]:
            built = _secret_condition_keys(secret)
            if keys:
                built.update(keys)
            return built

        policy = secret.resource_policy
        if (
            action in _POLICY_ACTIONS
            and ctx.identity.is_root
            and ctx.account_id == secret.account_id
        ):
            # secretsd's rule for emergency access (`secretsd emergency-access`): the account's
            # root user can always read, replace or delete a resource policy, so no policy can
            # lock an account out of its own secret for good.
            policy = None
        self._auth.require(
            ctx,
            action,
            secret.arn,
            resource_account=secret.account_id,
            resource_policy=policy,
            condition_keys=context,
        )

    def _allow_missing(
        self,
        ctx: CallContext,
        action: str,
        secret_id: str,
        keys: Mapping[str, ContextValue] | None = None,
    ) -> None:
        """A secret that does not exist: the caller learns that only if allowed to ask."""
        ref = arns.parse_secret_id(secret_id)
        account = ref.account or ctx.account_id
        arn = ref.arn or arns.format_partial_secret_arn(ref.region or ctx.region, account, ref.name)
        context: dict[str, ContextValue] = {"secretsmanager:SecretId": arn}
        if keys:
            context.update(keys)
        self._auth.require(ctx, action, arn, resource_account=account, condition_keys=context)

    def allow_kms(
        self,
        ctx: CallContext,
        secret: SecretRecord,
        key: KeyRecord | None,
        actions: Sequence[str],
        version_id: str,
    ) -> None:
        """The KMS permissions Secrets Manager asks on the caller's behalf (replication)."""
        self._allow_kms(ctx, secret, key, actions, version_id)

    def _allow_kms(
        self,
        ctx: CallContext,
        secret: SecretRecord,
        key: KeyRecord | None,
        actions: Sequence[str],
        version_id: str,
    ) -> None:
        """What Secrets Manager asks KMS on the caller's behalf for a customer managed key.

        With `aws/secretsmanager` nothing is asked of the caller, but such a secret cannot be
        used from another account (its key policy cannot be shared).
        """
        if key is None or key.manager == "AWS":
            if secret.account_id != ctx.account_id:
                raise invalid_request(MSG_DEFAULT_KEY_CROSS_ACCOUNT)
            return
        keys: dict[str, ContextValue] = {
            "kms:ViaService": f"secretsmanager.{secret.region}.amazonaws.com",
            "kms:CallerAccount": ctx.account_id,
            "kms:EncryptionContext:SecretARN": secret.arn,
            "kms:EncryptionContext:SecretVersionId": version_id,
            "kms:EncryptionContextKeys": ("SecretARN", "SecretVersionId"),
        }
        for action in actions:
            decision = self._auth.check(
                ctx,
                action,
                key.arn,
                resource_account=key.account_id,
                resource_policy=key_policy(key.manager, key.account_id, key.region, key.policy),
                condition_keys=keys,
                require_resource_policy=True,
            )
            if not decision.allowed:
                raise ServiceError("AccessDeniedException", MSG_KMS_DENIED)

    def _changed_ms(self, secret: SecretRecord) -> int:
        # Two changes in the same millisecond must still be ordered.
        return max(self._clock.now_ms(), secret.last_changed_ms + 1)

    # -- values -------------------------------------------------------------------------------
    @staticmethod
    def _value(string: str | None, binary: bytes | None) -> tuple[str, bytes] | None:
        if string is not None and binary is not None:
            raise invalid_parameter(MSG_BOTH_VALUES)
        if string is not None:
            encoded = string.encode("utf-8", "surrogatepass")
            # The model counts characters; AWS's quota is 65,536 bytes of the stored value.
            if len(encoded) > MAX_VALUE_BYTES:
                raise validation(
                    "1 validation error detected: Value at 'secretString' failed to satisfy"
                    f" constraint: Member must have length less than or equal to {MAX_VALUE_BYTES}"
                )
            return "string", encoded
        if binary is not None:
            return "binary", binary
        return None

    def _decrypt(self, repo: Repository, version: VersionRecord) -> bytes:
        assert version.envelope is not None
        return self._keyring.open(
            repo, version.envelope, encryption_context(version.secret_arn, version.version_id)
        )

    def _same_value(
        self, repo: Repository, version: VersionRecord, kind: str, value: bytes
    ) -> bool:
        if version.value_kind != kind or version.envelope is None:
            return False
        return hmac.compare_digest(self._decrypt(repo, version), value)

    def _store_version(
        self,
        repo: Repository,
        ctx: CallContext,
        secret: SecretRecord,
        version_id: str,
        kind: str,
        value: bytes,
        now_ms: int,
    ) -> None:
        repo.insert_version(self._seal_version(repo, ctx, secret, version_id, kind, value, now_ms))

    def _seal_version(
        self,
        repo: Repository,
        ctx: CallContext,
        secret: SecretRecord,
        version_id: str,
        kind: str,
        value: bytes,
        now_ms: int,
        key: KeyRecord | None = None,
    ) -> VersionRecord:
        """The secret's next version, its value sealed under a fresh data key bound to the
        secret's ARN and the version id. `key`: the secret's key, when the caller read it."""
        if key is None:
            key = self._keyring.resolve(repo, secret.account_id, secret.region, secret.kms_key_id)
        self._allow_kms(ctx, secret, key, KMS_WRITE_ACTIONS, version_id)
        sealed = self._keyring.seal(
            key, value, encryption_context(secret.arn, version_id), KmsRepository(repo.tx).material
        )
        return VersionRecord(
            secret_arn=secret.arn,
            version_id=version_id,
            seq=secret.version_seq + 1,
            created_ms=now_ms,
            last_accessed_ms=None,
            value_kind=kind,
            envelope=sealed.envelope,
            kms_key_arn=sealed.key_arn,
        )

    def _new_version(
        self,
        repo: Repository,
        ctx: CallContext,
        target: WriteTarget,
        token: str,
        kind: str,
        value: bytes,
        requested_stages: Sequence[str] | None,
        now_ms: int,
    ) -> list[str]:
        """Store a version (idempotently by token) and move labels; returns the version's labels."""
        secret, existing = target.secret, target.existing
        # The AWSPENDING placeholder that RotateSecret adds before createSecret: the rotation
        # function's PutSecretValue with the rotation's token gives it its value.
        placeholder = existing is not None and existing.value_kind == "none"
        if existing is not None and not placeholder:
            if not self._same_value(repo, existing, kind, value):
                raise _token_in_use(token, secret.arn)
            return staging.labels_by_version(target.stages).get(token, [])
        version = self._seal_version(repo, ctx, secret, token, kind, value, now_ms, target.key)
        new = staging.add_version(
            target.stages, token, requested_stages, first_version=secret.version_seq == 0
        )
        repo.write_new_version(
            version,
            fill=placeholder,
            old_stages=target.stages,
            new_stages=new,
            last_changed_ms=self._changed_ms(secret),
            # AWS keeps the newest 100 versions and every one younger than a day; only worth
            # looking once there are more than 100.
            retention=(
                (self._clock.now_ms() - RETENTION_AGE_MS, RETENTION_KEEP)
                if version.seq > RETENTION_KEEP
                else None
            ),
        )
        return staging.labels_by_version(new).get(token, [])

    # -- tags ---------------------------------------------------------------------------------
    @staticmethod
    def _merge_tags(
        existing: Sequence[tuple[str, str]], new: Sequence[tuple[str, str]]
    ) -> tuple[tuple[str, str], ...]:
        merged = dict(existing)
        for key, value in new:
            if key.lower().startswith("aws:"):
                raise invalid_parameter(
                    "Invalid tag key. The 'aws:' prefix is reserved for AWS use and can't be used"
                    " in tag keys."
                )
            merged[key] = value
        if len(merged) > MAX_TAGS:
            # TagResource does not model LimitExceededException, so the quota is a parameter error.
            raise invalid_parameter(
                f"The request failed because it would exceed the quota of {MAX_TAGS} tags per"
                " secret."
            )
        return tuple(merged.items())

    # -- operations ---------------------------------------------------------------------------
    def create_secret(
        self,
        ctx: CallContext,
        *,
        name: str,
        token: str | None,
        description: str | None,
        kms_key_id: str | None,
        secret_string: str | None,
        secret_binary: bytes | None,
        tags: Sequence[tuple[str, str]] | None,
        secret_type: str | None = None,
        cross_account_primary: str | None = None,
    ) -> WriteResult:
        """`cross_account_primary`: the replica of another account's primary secret
        (CrossAccountPrimaryARN; checked by the caller, service/cross_account.py)."""
        arns.validate_secret_name(name)
        value = self._value(secret_string, secret_binary)
        if value is not None and token is None:
            raise invalid_request(MSG_TOKEN_REQUIRED)
        merged_tags = self._merge_tags((), tags) if tags else None
        try:
            return self._create_secret(
                ctx,
                name,
                token,
                description,
                kms_key_id,
                value,
                merged_tags,
                secret_type,
                cross_account_primary,
            )
        except StoreConflict:
            # Another node created the same name between our check and our insert.
            raise _name_exists(name) from None

    def _create_secret(
        self,
        ctx: CallContext,
        name: str,
        token: str | None,
        description: str | None,
        kms_key_id: str | None,
        value: tuple[str, bytes] | None,
        merged_tags: tuple[tuple[str, str], ...] | None,
        secret_type: str | None,
        cross_account_primary: str | None = None,
    ) -> WriteResult:
        now = self._clock.now_ms()
        arn = arns.format_secret_arn(ctx.region, ctx.account_id, name, arns.new_suffix())
        keys: dict[str, ContextValue] = {"secretsmanager:Name": name}
        if description is not None:
            keys["secretsmanager:Description"] = description
        if kms_key_id is not None:
            keys["secretsmanager:KmsKeyId"] = kms_key_id
        keys.update(request_tag_keys(merged_tags or ()))
        context = {"secretsmanager:SecretId": arn, **keys}
        self._auth.require(ctx, SM_CREATE, arn, condition_keys=context)
        if merged_tags:
            # AWS: "To add tags to a secret when you create it, you also need TagResource".
            self._auth.require(ctx, SM_TAG, arn, condition_keys=context)
        managed_policy = None
        if cross_account_primary is not None:
            # AWS attaches the managed `cross-account-replication` policy to the replica, "which
            # is why secretsmanager:PutResourcePolicy is required".
            self._auth.require(ctx, SM_PUT_POLICY, arn, condition_keys=context)
            managed_policy = cross_account_policy(cross_account_primary)
        with self._db.transaction(write=True) as tx:
            repo = Repository(tx)
            existing = repo.secret_by_name(ctx.account_id, ctx.region, name, for_update=True)
            if existing is not None:
                if existing.deletion_ms is not None:
                    raise invalid_request(
                        "You can't create this secret because a secret with this name is already"
                        " scheduled for deletion."
                    )
                if token is not None and value is not None:
                    version = repo.version(existing.arn, token)
                    if version is not None:
                        if self._same_value(repo, version, *value):
                            return WriteResult(existing.arn, existing.name, token)
                        raise _token_in_use(token, existing.arn)
                raise _name_exists(name)
            key_ref = self._key_ref(repo, ctx, kms_key_id)
            secret = SecretRecord(
                arn=arn,
                account_id=ctx.account_id,
                region=ctx.region,
                name=name,
                description=description or None,
                kms_key_id=key_ref,
                secret_type=secret_type,
                created_ms=now,
                last_changed_ms=now,
                last_accessed_ms=None,
                deleted_ms=None,
                deletion_ms=None,
                tags=merged_tags,
                resource_policy=managed_policy,
                owning_service=None,
                primary_region=None,
                version_seq=0,
            )
            repo.insert_secret(secret)
            if cross_account_primary is not None:
                CrossAccountRepository(tx).add(arn, cross_account_primary, now)
            if value is None or token is None:
                return WriteResult(secret.arn, name, None)
            self._store_version(repo, ctx, secret, token, value[0], value[1], now)
            repo.replace_stages(secret.arn, {}, {staging.CURRENT: token})
            repo.update_secret(secret.arn, version_seq=1)
            return WriteResult(secret.arn, name, token)

    def _key_ref(self, repo: Repository, ctx: CallContext, kms_key_id: str | None) -> str | None:
        """The key ARN to store for a secret; None stands for `aws/secretsmanager`."""
        if kms_key_id is None or kms_key_id in (DEFAULT_ALIAS, ""):
            return None
        key = self._keyring.resolve(repo, ctx.account_id, ctx.region, kms_key_id)
        return None if key.manager == "AWS" else key.arn

    def put_secret_value(
        self,
        ctx: CallContext,
        *,
        secret_id: str,
        token: str | None,
        secret_string: str | None,
        secret_binary: bytes | None,
        version_stages: Sequence[str] | None,
    ) -> WriteResult:
        if token is None:
            raise invalid_request(MSG_TOKEN_REQUIRED)
        value = self._value(secret_string, secret_binary)
        if value is None:
            # InvalidRequestException, as AWS answers (quoted by Terraform users); moto says
            # InvalidParameterException.
            raise invalid_request("You must provide either SecretString or SecretBinary.")
        # Pipelined: on PostgreSQL, BEGIN goes with the read and the writes with the COMMIT.
        with self._db.transaction(write=True, pipelined=True) as tx:
            repo = Repository(tx)
            target = self._get_for_write(repo, ctx, secret_id, SM_PUT, token)
            # A new version and its labels: the secret's own rows (and the replication outbox
            # and event rows, which no cache holds).
            tx.changes_only(target.secret.arn)
            labels = self._new_version(
                repo, ctx, target, token, value[0], value[1], version_stages, self._clock.now_ms()
            )
            return WriteResult(target.secret.arn, target.secret.name, token, labels)

    def update_secret(
        self,
        ctx: CallContext,
        *,
        secret_id: str,
        token: str | None,
        description: str | None,
        kms_key_id: str | None,
        secret_string: str | None,
        secret_binary: bytes | None,
        secret_type: str | None = None,
    ) -> WriteResult:
        value = self._value(secret_string, secret_binary)
        if value is not None and token is None:
            raise invalid_request(MSG_TOKEN_REQUIRED)
        with self._db.transaction(write=True, pipelined=True) as tx:
            repo = Repository(tx)
            keys: dict[str, ContextValue] = {}
            if description is not None:
                keys["secretsmanager:Description"] = description
            if kms_key_id is not None:
                keys["secretsmanager:KmsKeyId"] = kms_key_id
            secret = self._get(repo, ctx, secret_id, SM_UPDATE, keys=keys, for_update=True)
            # The secret's own rows (its re-encrypted versions too) and, with a value, the
            # replication outbox: ADR 0008.
            tx.changes_only(secret.arn)
            changes: dict[str, Any] = {}
            if description is not None:
                changes["description"] = description or None
            if secret_type is not None:
                changes["secret_type"] = secret_type
            if kms_key_id is not None:
                new_key = self._key_ref(repo, ctx, kms_key_id)
                if new_key != secret.kms_key_id:
                    changes["kms_key_id"] = new_key
            if changes:
                changes["last_changed_ms"] = self._changed_ms(secret)
                repo.update_secret(secret.arn, **changes)
                secret = repo.secret_by_arn(secret.arn) or secret
                if "kms_key_id" in changes:
                    self._reencrypt_labelled(repo, ctx, secret)
            if value is None or token is None:
                return WriteResult(secret.arn, secret.name, None)
            # The secret is locked already (for_update above).
            target = repo.write_target(
                READ_BY_ARN, (secret.arn,), token=token, default_alias=DEFAULT_ALIAS, lock=False
            )
            assert target is not None
            self._new_version(
                repo, ctx, target, token, value[0], value[1], None, self._clock.now_ms()
            )
            return WriteResult(secret.arn, secret.name, token)

    def _reencrypt_labelled(self, repo: Repository, ctx: CallContext, secret: SecretRecord) -> None:
        """AWS re-encrypts AWSCURRENT, AWSPENDING and AWSPREVIOUS under a secret's new key."""
        stages = repo.stages(secret.arn)
        key = self._keyring.resolve(repo, secret.account_id, secret.region, secret.kms_key_id)
        for stage in (staging.CURRENT, staging.PENDING, staging.PREVIOUS):
            version_id = stages.get(stage)
            version = repo.version(secret.arn, version_id) if version_id else None
            if version is None or version.envelope is None:
                continue
            old_key = repo.key_by_arn(version.kms_key_arn) if version.kms_key_arn else None
            self._allow_kms(ctx, secret, old_key, (KMS_DECRYPT,), version.version_id)
            self._allow_kms(ctx, secret, key, KMS_WRITE_ACTIONS, version.version_id)
            plaintext = self._decrypt(repo, version)
            sealed = self._keyring.seal(
                key,
                plaintext,
                encryption_context(secret.arn, version.version_id),
                KmsRepository(repo.tx).material,
            )
            repo.tx.execute(
                "UPDATE secret_versions SET envelope = ?, kms_key_arn = ?"
                " WHERE secret_arn = ? AND version_id = ?",
                (sealed.envelope, sealed.key_arn, secret.arn, version.version_id),
            )

    def get_secret_value(
        self,
        ctx: CallContext,
        *,
        secret_id: str,
        version_id: str | None,
        version_stage: str | None,
    ) -> SecretValue:
        keys: dict[str, ContextValue] = {}
        if version_id is not None:
            keys["secretsmanager:VersionId"] = version_id
        if version_stage is not None:
            keys["secretsmanager:VersionStage"] = version_stage
        where = self._where(ctx, secret_id)
        if where is None:
            self._allow_missing(ctx, SM_GET_VALUE, secret_id, keys)
            raise not_found()
        stage = version_stage or staging.CURRENT if version_id is None else None
        cache_key = (where[0], where[1], stage, version_id)
        token = self._db.change_token() if self._value_cache_ms else None
        if token is not None:
            hit = self._value_cache.get(cache_key)
            if (
                hit is not None
                and hit.token == token
                and hit.scope_version == self._db.scope_version(hit.value.secret.arn)
                and hit.expires_ms > self._clock.now_ms()
                and version_stage in (None, *hit.value.stages)
            ):
                # Cached values are answered only after the same checks as a fresh read.
                self._value_cache.move_to_end(cache_key)
                value = hit.value
                self._allow(ctx, SM_GET_VALUE, value.secret, keys)
                self._allow_kms(
                    ctx, value.secret, value.key, (KMS_DECRYPT,), value.version.version_id
                )
                self._note_access(value)
                return value
        result = self._read(ctx, secret_id, keys, where, stage, version_id, version_stage)
        if token is not None:
            cache = self._value_cache
            if cache_key in cache:
                cache.move_to_end(cache_key)
            elif len(cache) >= VALUE_CACHE_MAX:
                cache.popitem(last=False)
            # Read after the token and within this synchronous call: nothing of this process
            # committed between the read and this look at the secret's own writes.
            cache[cache_key] = _Cached(
                token,
                self._db.scope_version(result.secret.arn),
                self._clock.now_ms() + self._value_cache_ms,
                result,
            )
        self._note_access(result)
        return result

    def _read(
        self,
        ctx: CallContext,
        secret_id: str,
        keys: Mapping[str, ContextValue],
        where: tuple[str, tuple[str, ...]],
        stage: str | None,
        version_id: str | None,
        version_stage: str | None,
    ) -> SecretValue:
        # One statement: atomic on both backends without an explicit transaction.
        with self._db.statement() as tx:
            found = Repository(tx).read_value(
                where[0], where[1], stage=stage, version_id=version_id
            )
        if found is None:
            self._allow_missing(ctx, SM_GET_VALUE, secret_id, keys)
            raise not_found()
        secret, version, key, labels = found
        self._allow(ctx, SM_GET_VALUE, secret, keys)
        if secret.deletion_ms is not None:
            raise invalid_request(MSG_MARKED_FOR_DELETION)
        if version is None or version.value_kind == "none" or version.envelope is None:
            if version_id is not None:
                raise not_found(
                    "Secrets Manager can't find the specified secret value for VersionId:"
                    f" {version_id}"
                )
            raise not_found(
                f"Secrets Manager can't find the specified secret value for staging label: {stage}"
            )
        if version_id is not None and version_stage is not None and version_stage not in labels:
            raise invalid_request(
                "You provided a VersionStage that is not associated to the provided VersionId."
            )
        self._allow_kms(ctx, secret, key, (KMS_DECRYPT,), version.version_id)
        plaintext = self._keyring.open_with_key(
            Envelope.from_bytes(version.envelope),
            key,
            encryption_context(secret.arn, version.version_id),
            self._key_material,
        )
        if version.value_kind == "string":
            return SecretValue(
                secret, version, labels, plaintext.decode("utf-8", "surrogatepass"), None, key
            )
        return SecretValue(secret, version, labels, None, plaintext, key)

    def _key_material(self, key_id: str, version: int) -> bytes | None:
        # Only on the first read of a rotated key's newer material in this process (it is cached).
        with self._db.statement() as tx:
            return KmsRepository(tx).material(key_id, version)

    def _note_access(self, value: SecretValue) -> None:
        """LastAccessedDate has day granularity, so at most one write per secret per day."""
        today = day_start_ms(self._clock.now_ms())
        if (value.secret.last_accessed_ms or -1) >= today and (
            value.version.last_accessed_ms or -1
        ) >= today:
            return
        # Not waited for: the read is answered without an fsync of its own (a power cut in the
        # next few milliseconds could lose the day's first access, never a secret's data).
        with unawaited_commits(), self._db.transaction(write=True) as tx:
            tx.changes_only(value.secret.arn)
            Repository(tx).touch_accessed(value.secret.arn, value.version.version_id, today)

    def batch_get_secret_value(
        self,
        ctx: CallContext,
        *,
        secret_ids: Sequence[str] | None,
        filters: Sequence[Any] | None,
        max_results: int | None,
        next_token: str | None,
    ) -> tuple[Page[SecretValue], list[BatchError]]:
        if (secret_ids is None) == (filters is None):
            raise invalid_parameter(
                "Either 'SecretIdList' or 'Filters' must be provided, but not both."
            )
        if max_results is not None and filters is None:
            raise invalid_parameter(
                "'Filters' not specified. 'Filters' must also be specified when 'MaxResults' is"
                " provided."
            )
        self._auth.require(ctx, SM_BATCH_GET)
        values: list[SecretValue] = []
        errors: list[BatchError] = []
        if secret_ids is not None:
            ids: list[str] = list(dict.fromkeys(secret_ids))
            token_out = None
        else:
            page = self.list_secrets(
                ctx,
                filters=filters,
                max_results=max_results or 20,
                next_token=next_token,
                include_planned_deletion=False,
                sort_by=None,
                sort_order=None,
                token_scope="BatchGetSecretValue",
            )
            ids = [view.secret.arn for view in page.items]
            token_out = page.next_token
        for secret_id in ids:
            try:
                values.append(
                    self.get_secret_value(
                        ctx, secret_id=secret_id, version_id=None, version_stage=None
                    )
                )
            except ServiceError as exc:
                if exc.code == "ValidationException":
                    raise
                errors.append(BatchError(secret_id, exc.code, exc.message))
        return Page(values, token_out), errors

    def describe_secret(self, ctx: CallContext, *, secret_id: str) -> SecretView:
        with self._db.transaction() as tx:
            repo = Repository(tx)
            secret = self._get(repo, ctx, secret_id, SM_DESCRIBE, allow_deleted=True)
            return SecretView(secret, repo.stages(secret.arn))

    def list_secrets(
        self,
        ctx: CallContext,
        *,
        filters: Sequence[Any] | None,
        max_results: int | None,
        next_token: str | None,
        include_planned_deletion: bool,
        sort_by: str | None,
        sort_order: str | None,
        token_scope: str = "ListSecrets",
    ) -> Page[SecretView]:
        parsed = validate_filters(filters or [])
        self._auth.require(ctx, SM_LIST)
        sort_column = SORT_COLUMNS[sort_by or "created-date"]
        descending = (sort_order or "asc") == "desc"
        limit = max_results or 100
        scope = "|".join(
            (
                token_scope,
                ctx.account_id,
                ctx.region,
                sort_column,
                str(descending),
                str(include_planned_deletion),
                json.dumps(parsed),
            )
        )
        after = None
        if next_token is not None:
            position = self._tokens.decode(scope, next_token)
            after = (position[0], position[1])
        found: list[SecretRecord] = []
        more = False
        with self._db.transaction() as tx:
            repo = Repository(tx)
            # Filters are applied here, not in SQL: read in batches until a page is full. One
            # row beyond the page tells whether a NextToken is needed.
            batch = limit + 1 if not parsed else max(limit * 4, 200)
            while True:
                rows = repo.list_secrets(
                    ctx.account_id,
                    ctx.region,
                    include_deleted=include_planned_deletion,
                    sort_column=sort_column,
                    descending=descending,
                    after=after,
                    limit=batch,
                )
                for row in rows:
                    if (not parsed or matches(_filter_target(row), parsed)) and self._visible(
                        ctx, row
                    ):
                        if len(found) == limit:
                            more = True
                            break
                        found.append(row)
                    after = _sort_key(row, sort_column)
                if more or len(rows) < batch:
                    break
            stages = repo.stages_for_many([s.arn for s in found])
        token = None
        if more and found:
            last = _sort_key(found[-1], sort_column)
            token = self._tokens.encode(scope, list(last))
        return Page([SecretView(s, stages[s.arn]) for s in found], token)

    def list_secret_version_ids(
        self,
        ctx: CallContext,
        *,
        secret_id: str,
        max_results: int | None,
        next_token: str | None,
        include_deprecated: bool,
    ) -> tuple[SecretRecord, Page[VersionView]]:
        with self._db.transaction() as tx:
            repo = Repository(tx)
            secret = self._get(repo, ctx, secret_id, SM_LIST_VERSIONS, allow_deleted=True)
            labels = staging.labels_by_version(repo.stages(secret.arn))
            versions = [
                VersionView(v, labels.get(v.version_id, []))
                for v in repo.versions(secret.arn)
                if v.value_kind != "none" and (include_deprecated or v.version_id in labels)
            ]
        scope = f"ListSecretVersionIds|{secret.arn}|{include_deprecated}"
        start = 0
        if next_token is not None:
            start = int(self._tokens.decode(scope, next_token))
        limit = max_results or 100
        page = versions[start : start + limit]
        token = None
        if start + limit < len(versions):
            token = self._tokens.encode(scope, start + limit)
        return secret, Page(page, token)

    def update_secret_version_stage(
        self,
        ctx: CallContext,
        *,
        secret_id: str,
        version_stage: str,
        move_to: str | None,
        remove_from: str | None,
    ) -> WriteResult:
        with self._db.transaction(write=True) as tx:
            repo = Repository(tx)
            secret = self._get(
                repo,
                ctx,
                secret_id,
                SM_UPDATE_STAGE,
                keys={"secretsmanager:VersionStage": version_stage},
                for_update=True,
            )
            tx.changes_only(secret.arn)  # its labels and its row (ADR 0008)
            existing = repo.version_ids_among(
                secret.arn, [v for v in (move_to, remove_from) if v is not None]
            )
            old = repo.stages(secret.arn)
            new = staging.move_stage(old, version_stage, move_to, remove_from, existing)
            repo.replace_stages(secret.arn, old, new)
            repo.update_secret(secret.arn, last_changed_ms=self._changed_ms(secret))
            return WriteResult(secret.arn, secret.name, None)

    def delete_secret(
        self,
        ctx: CallContext,
        *,
        secret_id: str,
        recovery_window_days: int | None,
        force: bool | None,
    ) -> DeleteResult:
        if recovery_window_days is not None and not (
            MIN_RECOVERY_DAYS <= recovery_window_days <= MAX_RECOVERY_DAYS
        ):
            raise invalid_parameter(
                "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."
            )
        if force and recovery_window_days is not None:
            raise invalid_parameter(
                "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
            )
        now = self._clock.now_ms()
        keys: dict[str, ContextValue] = {}
        if recovery_window_days is not None:
            keys["secretsmanager:RecoveryWindowInDays"] = recovery_window_days
        if force is not None:
            keys["secretsmanager:ForceDeleteWithoutRecovery"] = force
        with self._db.transaction(write=True) as tx:
            repo = Repository(tx)
            secret = self._find(repo, ctx, secret_id, for_update=True)
            if secret is None:
                self._allow_missing(ctx, SM_DELETE, secret_id, keys)
                if force:
                    # AWS answers a forced delete of an unknown secret as if it had existed.
                    return DeleteResult(
                        self._arn_for_unknown(ctx, secret_id), _name_of(secret_id), now
                    )
                raise not_found()
            self._allow(ctx, SM_DELETE, secret, keys)
            refuse_on_replica(secret)
            refuse_on_cross_account_replica(repo, secret)
            regions = [r.region for r in ReplicaRepository(tx).for_primary(secret.arn)]
            if regions:
                raise invalid_parameter(
                    f"You can't delete secret {secret.arn} that still has replica regions"
                    f" [{', '.join(regions)}]"
                )
            linked = [
                link.replica_arn
                for link in CrossAccountRepository(tx).linked_to(secret.arn)
                if not link.promoted
            ]
            if linked:
                # AWS: "The DeleteSecret call fails if any replicas are still associated with
                # the primary secret" (its wording for this case is not recorded).
                raise invalid_parameter(
                    f"You can't delete secret {secret.arn} that still has cross-account replicas"
                    f" [{', '.join(linked)}]"
                )
            if force:
                repo.delete_secret(secret.arn)
                return DeleteResult(secret.arn, secret.name, now)
            if secret.deletion_ms is not None:
                raise invalid_request(MSG_MARKED_FOR_DELETION)
            days = recovery_window_days or DEFAULT_RECOVERY_DAYS
            deletion = now + days * DAY_MS
            repo.update_secret(secret.arn, deleted_ms=now, deletion_ms=deletion)
            return DeleteResult(secret.arn, secret.name, deletion)

    def _visible(self, ctx: CallContext, secret: SecretRecord) -> bool:
        """ListSecrets shows only the secrets the caller may describe."""
        return self._auth.check(
            ctx,
            SM_DESCRIBE,
            secret.arn,
            resource_account=secret.account_id,
            resource_policy=secret.resource_policy,
            condition_keys=lambda: _secret_condition_keys(secret),
        ).allowed

    @staticmethod
    def _arn_for_unknown(ctx: CallContext, secret_id: str) -> str:
        ref = arns.parse_secret_id(secret_id)
        if ref.kind == "full_arn" and ref.arn is not None:
            return ref.arn
        return arns.format_secret_arn(ctx.region, ctx.account_id, ref.name, arns.new_suffix())

    def restore_secret(self, ctx: CallContext, *, secret_id: str) -> WriteResult:
        with self._db.transaction(write=True) as tx:
            repo = Repository(tx)
            secret = self._get(
                repo, ctx, secret_id, SM_RESTORE, for_update=True, allow_deleted=True
            )
            if secret.deletion_ms is not None:
                repo.update_secret(
                    secret.arn,
                    deleted_ms=None,
                    deletion_ms=None,
                    last_changed_ms=self._changed_ms(secret),
                )
            return WriteResult(secret.arn, secret.name, None)

    def purge_expired(self, batch: int = 100) -> int:
        """Delete secrets whose recovery window has ended; returns how many were purged."""
        return self._db.delete_in_batches(
            lambda tx, n: Repository(tx).expired_secret_arns(self._clock.now_ms(), n),
            lambda tx, arn: Repository(tx).delete_secret(arn),
            batch,
        )

    def tag_resource(
        self, ctx: CallContext, *, secret_id: str, tags: Sequence[tuple[str, str]]
    ) -> None:
        with self._db.transaction(write=True) as tx:
            repo = Repository(tx)
            secret = self._get(
                repo, ctx, secret_id, SM_TAG, keys=request_tag_keys(tags), for_update=True
            )
            merged = self._merge_tags(secret.tags or (), tags)
            repo.update_secret(secret.arn, tags=merged, last_changed_ms=self._changed_ms(secret))

    def untag_resource(self, ctx: CallContext, *, secret_id: str, keys: Sequence[str]) -> None:
        with self._db.transaction(write=True) as tx:
            repo = Repository(tx)
            secret = self._get(
                repo, ctx, secret_id, SM_UNTAG, keys={"aws:TagKeys": list(keys)}, for_update=True
            )
            drop = set(keys)
            remaining = tuple((k, v) for k, v in (secret.tags or ()) if k not in drop)
            repo.update_secret(secret.arn, tags=remaining, last_changed_ms=self._changed_ms(secret))

    def get_resource_policy(self, ctx: CallContext, *, secret_id: str) -> SecretRecord:
        with self._db.transaction() as tx:
            return self._get(Repository(tx), ctx, secret_id, SM_GET_POLICY)

    def put_resource_policy(
        self, ctx: CallContext, *, secret_id: str, policy: str, block_public_policy: bool
    ) -> SecretRecord:
        with self._db.transaction(write=True) as tx:
            repo = Repository(tx)
            # The secret is found and the call authorized before the document is read, as for
            # every other write: an unknown secret is ResourceNotFoundException whatever the
            # policy says, and a caller without access learns nothing from a policy error.
            secret = self._get(
                repo,
                ctx,
                secret_id,
                SM_PUT_POLICY,
                keys={"secretsmanager:BlockPublicPolicy": block_public_policy},
                for_update=True,
            )
            document = parse_policy(policy)
            if block_public_policy and grants_public_access(document):
                raise ServiceError(
                    "PublicPolicyException",
                    "The BlockPublicPolicy parameter is set to true, and the resource policy did"
                    " not prevent broad access to the secret.",
                )
            repo.update_secret(
                secret.arn, resource_policy=policy, last_changed_ms=self._changed_ms(secret)
            )
            return secret

    def delete_resource_policy(self, ctx: CallContext, *, secret_id: str) -> SecretRecord:
        with self._db.transaction(write=True) as tx:
            repo = Repository(tx)
            secret = self._get(repo, ctx, secret_id, SM_DELETE_POLICY, for_update=True)
            if secret.resource_policy is not None:
                repo.update_secret(
                    secret.arn, resource_policy=None, last_changed_ms=self._changed_ms(secret)
                )
            return secret

    def validate_resource_policy(
        self, ctx: CallContext, *, secret_id: str | None, policy: str
    ) -> list[dict[str, str]]:
        if secret_id is not None:
            with self._db.transaction() as tx:
                self._get(Repository(tx), ctx, secret_id, SM_VALIDATE_POLICY)
        else:
            self._auth.require(ctx, SM_VALIDATE_POLICY)
        document = parse_policy(policy)
        return [finding.as_entry() for finding in analysis.validation_findings(document)]


def _secret_condition_keys(secret: SecretRecord) -> dict[str, ContextValue]:
    """The keys every Secret-resource action carries (service authorization reference)."""
    keys: dict[str, ContextValue] = {"secretsmanager:SecretId": secret.arn}
    for tag, value in secret.tags or ():
        keys[f"aws:ResourceTag/{tag}"] = value
        keys[f"secretsmanager:ResourceTag/{tag}"] = value
    if secret.primary_region is not None:
        keys["secretsmanager:SecretPrimaryRegion"] = secret.primary_region
    return keys


def cross_account_policy(primary_arn: str) -> str:
    """The resource policy a cross-account replica gets when created (AWS's managed
    `cross-account-replication` policy; its text is not published, this grants what
    AssociateCrossAccountReplica asks: AcceptCrossAccountReplication to the primary's account)."""
    account = primary_arn.split(":")[4]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "cross-account-replication",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "secretsmanager:AcceptCrossAccountReplication",
                    "Resource": "*",
                }
            ],
        },
        separators=(",", ":"),
    )


def is_replica(secret: SecretRecord) -> bool:
    return secret.primary_region is not None and secret.primary_region != secret.region


def refuse_on_replica(secret: SecretRecord) -> None:
    if is_replica(secret):
        raise invalid_parameter(MSG_REPLICA_REFUSED)


def refuse_on_cross_account_replica(repo: Repository, secret: SecretRecord) -> None:
    """A cross-account replica (until StopReplicationToReplica) refuses changes of its value,
    with the answer AWS gives on a Region replica (its words for this case are not recorded)."""
    link = CrossAccountRepository(repo.tx).of_replica(secret.arn)
    if link is not None and not link.promoted:
        raise invalid_parameter(MSG_REPLICA_REFUSED)


def _name_of(secret_id: str) -> str:
    return arns.parse_secret_id(secret_id).name


def _sort_key(secret: SecretRecord, column: str) -> tuple[Any, str]:
    value: Any = getattr(secret, column)
    if value is None:
        value = -1
    return (value, secret.arn)


def _filter_target(secret: SecretRecord) -> FilterTarget:
    return FilterTarget(
        name=secret.name,
        description=secret.description,
        tags=secret.tags or (),
        primary_region=secret.primary_region,
        owning_service=secret.owning_service,
    )


def parse_policy(policy: str) -> Policy:
    """A resource policy's syntax, checked by the policy engine's parser."""
    try:
        return parse_resource_policy(policy, kind="resource")
    except PolicySyntaxError as exc:
        raise ServiceError(
            "MalformedPolicyDocumentException",
            f"This resource policy contains a syntax error. {exc.message}".strip(),
        ) from None


def grants_public_access(document: Policy) -> bool:
    """Broad access as BlockPublicPolicy judges it (secretsd.policy.analysis)."""
    return analysis.grants_public_access(document)
