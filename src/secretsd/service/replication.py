"""Replication to other regions of the same deployment: replicas, promotion, status.

A replica is a secret of its own in the target region (same name and ARN suffix, the region
swapped, `PrimaryRegion` set), encrypted under that region's key. Changes reach it through the
outbox (store/replicas.py): every visible change of a primary adds an entry in its own
transaction, and `dispatch` copies the primary's whole state (versions re-encrypted, labels,
description, tags, resource policy: what AWS says it replicates) to each replica, then deletes
the entries it handled, in one transaction. A crash repeats a copy; nothing is lost or doubled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from secretsd.background import log_failed_pass
from secretsd.clock import Clock
from secretsd.errors import ServiceError, invalid_parameter
from secretsd.kms.keyring import DEFAULT_ALIAS, Keyring
from secretsd.scheduler.leases import LeaseKeeper
from secretsd.service.context import CallContext
from secretsd.service.secrets import SecretsService, encryption_context
from secretsd.store.database import Database
from secretsd.store.events import EventRepository
from secretsd.store.kms_repository import KmsRepository
from secretsd.store.records import SecretRecord, VersionRecord
from secretsd.store.replicas import FAILED, IN_SYNC, ReplicaRecord, ReplicaRepository
from secretsd.store.repository import Repository

log = logging.getLogger("secretsd.replication")

SM_REPLICATE = "secretsmanager:ReplicateSecretToRegions"
SM_REMOVE_REGIONS = "secretsmanager:RemoveRegionsFromReplication"
SM_STOP_REPLICATION = "secretsmanager:StopReplicationToReplica"
EVENT_SOURCE = "secretsmanager.amazonaws.com"
LEASE = "replication"
MSG_INVALID_REGION = "Invalid replica region."


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    region: str
    kms_key_id: str
    status: str
    status_message: str | None
    last_accessed_ms: int | None


class ReplicationFailure(Exception):
    """A replica that cannot be written now (its status becomes Failed with this message)."""


def replica_arn(primary_arn: str, region: str) -> str:
    parts = primary_arn.split(":", 5)
    parts[3] = region
    return ":".join(parts)


class ReplicationService:
    def __init__(
        self, db: Database, keyring: Keyring, clock: Clock, secrets: SecretsService
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._clock = clock
        self._secrets = secrets

    # -- the API ------------------------------------------------------------------------------
    def replicate(
        self,
        ctx: CallContext,
        *,
        secret_id: str | None = None,
        secret: SecretRecord | None = None,
        regions: Sequence[tuple[str, str | None]],
        force_overwrite: bool,
    ) -> tuple[SecretRecord, list[ReplicaStatus]]:
        """ReplicateSecretToRegions (and CreateSecret's AddReplicaRegions, with `secret`)."""
        keys: dict[str, Any] = {"secretsmanager:AddReplicaRegions": [r for r, _ in regions]}
        keys["secretsmanager:ForceOverwriteReplicaSecret"] = force_overwrite
        now = self._clock.now_ms()
        with self._db.transaction(write=True) as tx:
            repo = Repository(tx)
            if secret is None:
                assert secret_id is not None
                secret = self._secrets.locate(
                    repo, ctx, secret_id, SM_REPLICATE, keys=keys, for_update=True
                )
            replicas = ReplicaRepository(tx)
            existing = {r.region for r in replicas.for_primary(secret.arn)}
            check_regions(secret.region, regions)
            for region, kms_key_id in regions:
                if region in existing:
                    continue
                replicas.add(secret.arn, region, _key_ref(kms_key_id), force_overwrite, now)
            if secret.primary_region is None:
                repo.update_secret(secret.arn, primary_region=secret.region)
            replicas.enqueue(secret.arn, now)
            return secret, self._statuses(repo, secret)

    def remove_regions(
        self, ctx: CallContext, *, secret_id: str, regions: Sequence[str]
    ) -> tuple[SecretRecord, list[ReplicaStatus]]:
        """RemoveRegionsFromReplication: the replicas in those regions are deleted."""
        with self._db.transaction(write=True) as tx:
            repo = Repository(tx)
            secret = self._secrets.locate(
                repo,
                ctx,
                secret_id,
                SM_REMOVE_REGIONS,
                keys={"secretsmanager:RemoveReplicaRegions": list(regions)},
                for_update=True,
            )
            replicas = ReplicaRepository(tx)
            for region in regions:
                replicas.remove(secret.arn, region)
                target = repo.secret_by_arn(replica_arn(secret.arn, region), for_update=True)
                if target is not None and target.primary_region == secret.region:
                    repo.delete_secret(target.arn)
            return secret, self._statuses(repo, secret)

    def stop_replication(self, ctx: CallContext, *, secret_id: str) -> SecretRecord:
        """StopReplicationToReplica, called in the replica's region: it becomes standalone."""
        with self._db.transaction(write=True) as tx:
            repo = Repository(tx)
            replica = self._secrets.locate(
                repo, ctx, secret_id, SM_STOP_REPLICATION, for_update=True
            )
            if replica.primary_region is None or replica.primary_region == replica.region:
                raise invalid_parameter(
                    "StopReplicationToReplica is only valid on a replica secret."
                )
            primary = replica_arn(replica.arn, replica.primary_region)
            ReplicaRepository(tx).remove(primary, replica.region)
            repo.update_secret(
                replica.arn,
                primary_region=None,
                last_changed_ms=max(self._clock.now_ms(), replica.last_changed_ms + 1),
            )
            return replica

    def statuses_for_arns(self, primary_arns: Sequence[str]) -> dict[str, list[ReplicaStatus]]:
        """ReplicationStatus of each primary (DescribeSecret and ListSecrets)."""
        with self._db.transaction() as tx:
            repo = Repository(tx)
            by_primary = ReplicaRepository(tx).for_primaries(primary_arns)
            return {arn: [_status(repo, r) for r in found] for arn, found in by_primary.items()}

    def _statuses(self, repo: Repository, secret: SecretRecord) -> list[ReplicaStatus]:
        return [_status(repo, r) for r in ReplicaRepository(repo.tx).for_primary(secret.arn)]

    # -- propagation ----------------------------------------------------------------------------
    def dispatch(self, batch: int = 100) -> int:
        """Copy the primaries named in the outbox to their replicas; returns entries handled."""
        with self._db.transaction(write=True) as tx:
            replicas = ReplicaRepository(tx)
            entries = replicas.pending(batch)
            if not entries:
                return 0
            repo = Repository(tx)
            now = self._clock.now_ms()
            for primary_arn in dict.fromkeys(arn for _, arn, _ in entries):
                primary = repo.secret_by_arn(primary_arn, for_update=True)
                if primary is None:
                    replicas.remove_all(primary_arn)
                    continue
                for replica in replicas.for_primary(primary_arn):
                    self._sync_one(repo, replicas, primary, replica, now)
            replicas.done([entry_id for entry_id, _, _ in entries])
            return len(entries)

    def retry_failed(self, batch: int = 100) -> int:
        """Failed replicas are tried again (a missing key may exist now, a clashing secret may
        be gone): an outbox entry for each of their primaries."""
        with self._db.transaction(write=True) as tx:
            replicas = ReplicaRepository(tx)
            primaries = replicas.failed_primaries(batch)
            for arn in primaries:
                replicas.enqueue(arn, self._clock.now_ms())
            return len(primaries)

    def _sync_one(
        self,
        repo: Repository,
        replicas: ReplicaRepository,
        primary: SecretRecord,
        replica: ReplicaRecord,
        now: int,
    ) -> None:
        try:
            self._copy(repo, primary, replica)
        except ReplicationFailure as exc:
            if replica.status != FAILED or replica.status_message != str(exc):
                replicas.set_status(primary.arn, replica.region, FAILED, str(exc), now)
                self._event(repo, primary, replica.region, "ReplicationFailed", now)
            return
        if replica.status != IN_SYNC:
            self._event(repo, primary, replica.region, "ReplicationSucceeded", now)
        replicas.set_status(primary.arn, replica.region, IN_SYNC, None, now)

    def _copy(self, repo: Repository, primary: SecretRecord, replica: ReplicaRecord) -> None:
        arn = replica_arn(primary.arn, replica.region)
        try:
            key = self._keyring.resolve(
                repo, primary.account_id, replica.region, replica.kms_key_id
            )
        except ServiceError as exc:
            raise ReplicationFailure(
                f"Replication failed: The KMS key {replica.kms_key_id} is not available in"
                f" region {replica.region}."
            ) from exc
        target = repo.secret_by_arn(arn, for_update=True)
        if target is None:
            clash = repo.secret_by_name(
                primary.account_id, replica.region, primary.name, for_update=True
            )
            if clash is not None:
                if not replica.force_overwrite:
                    raise ReplicationFailure(
                        f"Replication failed: Secret name {primary.name} already exists in"
                        f" region {replica.region}."
                    )
                repo.delete_secret(clash.arn)
            repo.insert_secret(_replica_record(primary, arn, replica))
        kept = {v.version_id: v for v in repo.versions(arn)}
        wanted = repo.versions(primary.arn)
        material = KmsRepository(repo.tx).material
        for version in wanted:
            have = kept.pop(version.version_id, None)
            if have is not None and have.kms_key_arn in (key.arn, None):
                continue
            envelope, key_arn = None, None
            if version.envelope is not None:
                plaintext = self._keyring.open(
                    repo, version.envelope, encryption_context(primary.arn, version.version_id)
                )
                sealed = self._keyring.seal(
                    key, plaintext, encryption_context(arn, version.version_id), material
                )
                envelope, key_arn = sealed.envelope, sealed.key_arn
            if have is not None:
                repo.delete_versions(arn, [version.version_id])
            repo.insert_version(
                VersionRecord(
                    secret_arn=arn,
                    version_id=version.version_id,
                    seq=version.seq,
                    created_ms=version.created_ms,
                    last_accessed_ms=have.last_accessed_ms if have is not None else None,
                    value_kind=version.value_kind,
                    envelope=envelope,
                    kms_key_arn=key_arn,
                )
            )
        old_stages = repo.stages(arn)
        # Labels first off the versions that are going, then the versions themselves.
        repo.replace_stages(arn, old_stages, repo.stages(primary.arn))
        repo.delete_versions(arn, list(kept))
        repo.update_secret(
            arn,
            description=primary.description,
            secret_type=primary.secret_type,
            tags=primary.tags,
            resource_policy=primary.resource_policy,
            kms_key_id=replica.kms_key_id,
            version_seq=primary.version_seq,
            last_changed_ms=primary.last_changed_ms,
        )

    def _event(
        self, repo: Repository, primary: SecretRecord, region: str, name: str, now: int
    ) -> None:
        EventRepository(repo.tx).record(
            time_ms=now,
            account_id=primary.account_id,
            region=primary.region,
            event_source=EVENT_SOURCE,
            event_name=name,
            resource_arn=primary.arn,
            details={"replicaRegion": region},
        )


def _status(repo: Repository, r: ReplicaRecord) -> ReplicaStatus:
    target = (
        repo.secret_by_arn(replica_arn(r.primary_arn, r.region)) if r.status == IN_SYNC else None
    )
    return ReplicaStatus(
        region=r.region,
        kms_key_id=r.kms_key_id or DEFAULT_ALIAS,
        status=r.status,
        status_message=r.status_message,
        last_accessed_ms=target.last_accessed_ms if target is not None else None,
    )


def check_regions(own_region: str, regions: Sequence[tuple[str, str | None]]) -> None:
    """Replication into the secret's own region, or twice into one region, is refused."""
    seen: set[str] = set()
    for region, _ in regions:
        if region == own_region or region in seen:
            raise invalid_parameter(MSG_INVALID_REGION)
        seen.add(region)


def _key_ref(kms_key_id: str | None) -> str | None:
    return None if kms_key_id in (None, "", DEFAULT_ALIAS) else kms_key_id


def _replica_record(primary: SecretRecord, arn: str, replica: ReplicaRecord) -> SecretRecord:
    return SecretRecord(
        arn=arn,
        account_id=primary.account_id,
        region=replica.region,
        name=primary.name,
        description=primary.description,
        kms_key_id=replica.kms_key_id,
        secret_type=primary.secret_type,
        created_ms=primary.created_ms,
        last_changed_ms=primary.last_changed_ms,
        last_accessed_ms=None,
        deleted_ms=None,
        deletion_ms=None,
        tags=primary.tags,
        resource_policy=primary.resource_policy,
        owning_service=primary.owning_service,
        primary_region=primary.region,
        version_seq=0,
    )


def replication_loop(
    service: ReplicationService,
    db: Database,
    clock: Clock,
    tick_seconds: float = 0.05,
    retry_seconds: float = 5.0,
) -> Callable[[], Coroutine[Any, Any, None]]:
    """One dispatcher across workers and nodes: whoever holds the `replication` lease. The
    lease saves duplicate work only: a copy reads the primary under its row lock and writes its
    whole state, so two dispatchers at once still leave every replica equal to its primary."""

    async def run() -> None:
        leases = LeaseKeeper(db, clock)
        next_retry_ms = 0
        while True:
            try:
                if leases.acquire(LEASE, ttl_seconds=max(2.0, tick_seconds * 20)) is not None:
                    if clock.now_ms() >= next_retry_ms:
                        service.retry_failed()
                        next_retry_ms = clock.now_ms() + int(retry_seconds * 1000)
                    while service.dispatch():
                        await asyncio.sleep(0)
            except Exception as exc:
                log_failed_pass(log, "replication dispatch", exc)
            await asyncio.sleep(tick_seconds)

    return run
