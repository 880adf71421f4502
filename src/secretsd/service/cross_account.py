"""Cross-account replicas: CreateSecret with CrossAccountPrimaryARN (the replica account),
AssociateCrossAccountReplica and DisassociateCrossAccountReplica (the primary account), and
what DescribeSecret shows of them. The copying itself is the replication dispatcher's
(service/replication.py): an associated replica gets the primary's versions and labels.

Both accounts' policies decide, as AWS documents: the replica account's CreateSecret and
PutResourcePolicy; the associating caller's AssociateCrossAccountReplica and GetSecretValue on
the primary, AcceptCrossAccountReplication on the replica (its identity policy and the replica's
resource policy, which grants it to the primary account when the replica is created), kms:Decrypt
on the primary's customer managed key and kms:Encrypt on the replica's (key policies).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from secretsd import arn as arns
from secretsd.clock import Clock
from secretsd.errors import ServiceError, invalid_parameter, invalid_request, not_found
from secretsd.kms.keyring import DEFAULT_ALIAS, Keyring
from secretsd.service.context import CallContext
from secretsd.service.secrets import (
    MSG_REPLICA_REFUSED,
    SecretsService,
    is_replica,
)
from secretsd.service.views import WriteResult
from secretsd.store.cross_account import DETACHED, CrossAccountLink, CrossAccountRepository
from secretsd.store.database import Database
from secretsd.store.records import KeyRecord
from secretsd.store.replicas import IN_PROGRESS, ReplicaRepository
from secretsd.store.repository import Repository

SM_ASSOCIATE = "secretsmanager:AssociateCrossAccountReplica"
SM_DISASSOCIATE = "secretsmanager:DisassociateCrossAccountReplica"
SM_ACCEPT = "secretsmanager:AcceptCrossAccountReplication"
SM_GET_VALUE = "secretsmanager:GetSecretValue"

# secretsd's wording where AWS's is not recorded (docs/replication.md).
MSG_FORBIDDEN_WITH_PRIMARY = (
    "You can't include SecretString, SecretBinary, Description, AddReplicaRegions, or Type when"
    " you create a cross-account replica secret."
)
MSG_NEEDS_CMK = (
    "You must specify a customer managed KMS key in KmsKeyId to create a cross-account replica"
    " secret."
)
MSG_SAME_REGION = "The primary and replica secrets must be in the same Region."
MSG_OTHER_ACCOUNT = "The primary and replica secrets must be in different accounts."
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
MSG_ONE_REPLICA = "A primary secret can have at most one cross-account replica."


@dataclass(frozen=True, slots=True)
class CrossAccountView:
    arn: str
    status: str
    status_message: str | None
    replication_role_arn: str | None = None


class CrossAccountService:
    def __init__(
        self, db: Database, keyring: Keyring, clock: Clock, secrets: SecretsService
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._clock = clock
        self._secrets = secrets

    def create_replica(
        self,
        ctx: CallContext,
        *,
        name: str,
        primary_arn: str,
        kms_key_id: str | None,
        token: str | None,
        tags: Sequence[tuple[str, str]] | None,
        forbidden_given: bool,
    ) -> WriteResult:
        """CreateSecret with CrossAccountPrimaryARN: an empty secret (Pending) that the primary
        account may then associate."""
        # Only a caller allowed to create it learns what is wrong with the request.
        self._secrets.authorize(
            ctx, "secretsmanager:CreateSecret", name, {"secretsmanager:Name": name}
        )
        if forbidden_given:
            raise invalid_parameter(MSG_FORBIDDEN_WITH_PRIMARY)
        ref = arns.parse_secret_id(primary_arn)
        if ref.kind != "full_arn" or ref.arn is None:
            raise invalid_parameter("CrossAccountPrimaryARN must be the full ARN of a secret.")
        if ref.region != ctx.region:
            raise invalid_parameter(MSG_SAME_REGION)
        if ref.account == ctx.account_id:
            raise invalid_parameter(MSG_OTHER_ACCOUNT)
        if kms_key_id in (None, "", DEFAULT_ALIAS):
            raise invalid_parameter(MSG_NEEDS_CMK)
        with self._db.transaction() as tx:
            key = self._keyring.resolve(Repository(tx), ctx.account_id, ctx.region, kms_key_id)
        if key.manager == "AWS":
            raise invalid_parameter(MSG_NEEDS_CMK)
        return self._secrets.create_secret(
            ctx,
            name=name,
            token=token,
            description=None,
            kms_key_id=kms_key_id,
            secret_string=None,
            secret_binary=None,
            tags=tags,
            cross_account_primary=ref.arn,
        )

    def associate(
        self,
        ctx: CallContext,
        *,
        secret_id: str,
        replica_arn: str,
        restriction: str | None,
        role_arn: str | None,
    ) -> tuple[str, str, str]:
        """(primary ARN, replica ARN, status). Idempotent: a second call repairs replication."""
        if role_arn is not None:
            if _ROLE_ARN.fullmatch(role_arn) is None:
                raise invalid_parameter("ReplicationRoleARN must be the ARN of an IAM role.")
            # AWS: "If you supply ReplicationRoleARN, you also need iam:PassRole for that role."
            self._secrets.require_on(ctx, "iam:PassRole", role_arn)
        with self._db.transaction(write=True) as tx:
            repo = Repository(tx)
            primary = self._secrets.locate(repo, ctx, secret_id, SM_ASSOCIATE, for_update=True)
            self._secrets.locate(repo, ctx, primary.arn, SM_GET_VALUE)
            cross = CrossAccountRepository(tx)
            if primary.account_id != ctx.account_id:
                raise invalid_request(
                    "You must call this operation from the account that owns the primary secret."
                )
            if is_replica(primary) or _live(cross.of_replica(primary.arn)):
                raise invalid_parameter(MSG_REPLICA_REFUSED)
            ref = arns.parse_secret_id(replica_arn)
            if ref.kind != "full_arn" or ref.arn is None:
                raise invalid_parameter("CrossAccountReplicaARN must be the full ARN of a secret.")
            if ref.region != primary.region:
                raise invalid_parameter(MSG_SAME_REGION)
            if ref.account == primary.account_id:
                raise invalid_parameter(MSG_OTHER_ACCOUNT)
            replica = self._secrets.locate(repo, ctx, ref.arn, SM_ACCEPT, for_update=True)
            link = cross.of_replica(replica.arn)
            if link is None or link.primary_arn != primary.arn or link.promoted:
                raise invalid_request(
                    f"The secret {replica.arn} is not a cross-account replica of {primary.arn}."
                )
            others = [o for o in cross.linked_to(primary.arn) if o.replica_arn != replica.arn]
            if any(not o.promoted for o in others):
                raise ServiceError("LimitExceededException", MSG_ONE_REPLICA)
            # Dry runs of what replication will ask KMS, as AWS does when associating.
            self._secrets.allow_kms(
                ctx,
                primary,
                self._key_of(repo, primary.account_id, primary.region, primary.kms_key_id),
                ("kms:Decrypt",),
                "",
            )
            replica_key = self._key_of(repo, replica.account_id, replica.region, replica.kms_key_id)
            self._secrets.allow_kms(ctx, replica, replica_key, ("kms:Encrypt",), "")
            for other in others:
                cross.remove(other.replica_arn)
            cross.update(
                replica.arn,
                linked=1,
                status=IN_PROGRESS,
                status_message=None,
                replication_role_arn=role_arn,
                replica_restriction=restriction or "SameOrg",
            )
            ReplicaRepository(tx).enqueue(primary.arn, self._clock.now_ms())
            return primary.arn, replica.arn, IN_PROGRESS

    def _key_of(
        self, repo: Repository, account: str, region: str, key_ref: str | None
    ) -> KeyRecord:
        return self._keyring.resolve(repo, account, region, key_ref)

    def disassociate(
        self, ctx: CallContext, *, secret_id: str, replica_arn: str
    ) -> tuple[str, str]:
        """The replica stays, Detached (it still refuses value changes until its own account
        promotes it with StopReplicationToReplica)."""
        with self._db.transaction(write=True) as tx:
            repo = Repository(tx)
            primary = self._secrets.locate(repo, ctx, secret_id, SM_DISASSOCIATE, for_update=True)
            cross = CrossAccountRepository(tx)
            link = cross.of_replica(replica_arn)
            if link is None or link.primary_arn != primary.arn or not link.linked:
                raise not_found(
                    f"The secret {replica_arn} is not a cross-account replica of {primary.arn}."
                )
            if link.promoted:
                cross.remove(replica_arn)
            else:
                cross.update(replica_arn, linked=0, status=DETACHED, status_message=None)
            return primary.arn, replica_arn

    def views(self, arn: str) -> tuple[CrossAccountView | None, list[CrossAccountView]]:
        """(CrossAccountPrimary of a replica, CrossAccountReplicas of a primary)."""
        with self._db.transaction() as tx:
            cross = CrossAccountRepository(tx)
            link = cross.of_replica(arn)
            primary = (
                CrossAccountView(link.primary_arn, link.status, link.status_message)
                if link is not None and not link.promoted
                else None
            )
            replicas = [
                CrossAccountView(r.replica_arn, r.status, r.status_message, r.replication_role_arn)
                for r in cross.linked_to(arn)
            ]
            return primary, replicas


def _live(link: CrossAccountLink | None) -> bool:
    return link is not None and not link.promoted
