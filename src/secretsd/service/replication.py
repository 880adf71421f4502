"""Replication to other regions, deployments and accounts: replicas, promotion, status.

A replica is a secret of its own in the target region (same name and ARN suffix, the region
swapped, `PrimaryRegion` set), encrypted under that region's key. Changes reach it through the
outbox (store/replicas.py): every visible change of a primary adds an entry in its own
transaction, and `dispatch` copies the primary's whole state (versions re-encrypted, labels,
description, tags, resource policy: what AWS says it replicates) to each replica, then deletes
the entries it handled, in one transaction. A crash repeats a copy; nothing is lost or doubled.

The same dispatcher copies a primary's versions and labels into its associated cross-account
replica (service/cross_account.py), and, for regions another secretsd deployment serves (the
peer list, service/peers.py), owes the primary to that deployment instead: `push_to_peers` sends
it over signed HTTP until acknowledged, and the peer applies it (`apply_from_peer`) under its
own keys. Promotions on a peer come back as notices (`notify_peers`, `promoted_at_peer`).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from secretsd import arn as arns
from secretsd.background import log_failed_pass
from secretsd.clock import Clock
from secretsd.errors import ServiceError, invalid_parameter, invalid_request
from secretsd.kms.keyring import DEFAULT_ALIAS, Keyring
from secretsd.offload import Offloader, off_loop
from secretsd.scheduler.leases import LeaseKeeper
from secretsd.service.context import CallContext
from secretsd.service.peers import ACTION as PEER_ACTION
from secretsd.service.peers import Peer, PeerRefused, PeerUnreachable, call_peer
from secretsd.service.secrets import SecretsService, cross_account_policy, encryption_context
from secretsd.store.cross_account import DETACHED, CrossAccountLink, CrossAccountRepository
from secretsd.store.database import Database
from secretsd.store.events import EventRepository
from secretsd.store.kms_repository import KmsRepository
from secretsd.store.records import KeyRecord, SecretRecord, VersionRecord
from secretsd.store.replicas import (
    FAILED,
    IN_PROGRESS,
    IN_SYNC,
    ReplicaRecord,
    ReplicaRepository,
)
from secretsd.store.repository import Repository

log = logging.getLogger("secretsd.replication")

SM_REPLICATE = "secretsmanager:ReplicateSecretToRegions"
SM_REMOVE_REGIONS = "secretsmanager:RemoveRegionsFromReplication"
SM_STOP_REPLICATION = "secretsmanager:StopReplicationToReplica"
EVENT_SOURCE = "secretsmanager.amazonaws.com"
LEASE = "replication"
# The dispatcher's lease, renewed at half of it: each renewal is a write every other worker's
# SQLite connection sees as a change (its data_version), which empties their caches, so not too
# often; a worker that dies hands dispatching over to another within this time.
DISPATCH_LEASE_SECONDS = 10.0
MSG_INVALID_REGION = "Invalid replica region."
# The peer answers this code when the replica there was promoted (StopReplicationToReplica).
PROMOTED_CODE = "ReplicaPromotedException"
PEER_BACKOFF_MAX_MS = 5000


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
        self,
        db: Database,
        keyring: Keyring,
        clock: Clock,
        secrets: SecretsService,
        peers: Mapping[str, Peer] | None = None,
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._clock = clock
        self._secrets = secrets
        # Regions another deployment serves (service/peers.py).
        self._peers = dict(peers or {})

    @property
    def peers(self) -> Mapping[str, Peer]:
        return self._peers

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
            self._allow_kms(repo, ctx, secret, [r for r in regions if r[0] not in existing])
            for region, kms_key_id in regions:
                if region in existing:
                    continue
                replicas.add(secret.arn, region, _key_ref(kms_key_id), force_overwrite, now)
            if secret.primary_region is None:
                repo.update_secret(secret.arn, primary_region=secret.region)
            replicas.enqueue(secret.arn, now)
            return secret, self._statuses(repo, secret)

    def _allow_kms(
        self,
        repo: Repository,
        ctx: CallContext,
        secret: SecretRecord,
        regions: Sequence[tuple[str, str | None]],
    ) -> None:
        """AWS: "If the primary secret is encrypted with a KMS key other than
        aws/secretsmanager, you also need kms:Decrypt permission to the key. To encrypt the
        replicated secret with a KMS key other than aws/secretsmanager, you need
        kms:GenerateDataKey and kms:Encrypt to the key." A key that does not exist (yet) is not
        checked: the replica shows Failed until it does. Keys of regions another deployment
        serves are that deployment's to check."""
        if not regions:
            return
        if secret.kms_key_id is not None:
            primary_key = self._keyring.resolve(
                repo, secret.account_id, secret.region, secret.kms_key_id
            )
            self._secrets.allow_kms(ctx, secret, primary_key, ("kms:Decrypt",), "")
        self._allow_replica_keys(repo, ctx, secret, regions)

    def _allow_replica_keys(
        self,
        repo: Repository,
        ctx: CallContext,
        secret: SecretRecord,
        regions: Sequence[tuple[str, str | None]],
    ) -> None:
        for region, kms_key_id in regions:
            if _key_ref(kms_key_id) is None or region in self._peers:
                continue
            try:
                key = self._keyring.resolve(repo, secret.account_id, region, kms_key_id)
            except ServiceError:
                continue
            target = dataclasses.replace(secret, arn=replica_arn(secret.arn, region), region=region)
            self._secrets.allow_kms(ctx, target, key, ("kms:GenerateDataKey", "kms:Encrypt"), "")

    def authorize_new_replicas(
        self, ctx: CallContext, name: str, regions: Sequence[tuple[str, str | None]]
    ) -> None:
        """CreateSecret with AddReplicaRegions: the replicas' keys are checked before the
        secret is created (nothing is written when the caller may not use them)."""
        stand_in = SecretRecord(
            arn=arns.format_partial_secret_arn(ctx.region, ctx.account_id, name),
            account_id=ctx.account_id,
            region=ctx.region,
            name=name,
            description=None,
            kms_key_id=None,
            secret_type=None,
            created_ms=0,
            last_changed_ms=0,
            last_accessed_ms=None,
            deleted_ms=None,
            deletion_ms=None,
            tags=None,
            resource_policy=None,
            owning_service=None,
            primary_region=None,
            version_seq=0,
        )
        with self._db.transaction() as tx:
            self._allow_replica_keys(Repository(tx), ctx, stand_in, regions)

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
                if region in self._peers:
                    # The peer deletes its replica when told (push_to_peers).
                    replicas.mark_for_peer(secret.arn, region, self._clock.now_ms())
                    continue
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
                link = CrossAccountRepository(tx).of_replica(replica.arn)
                if link is None or link.promoted:
                    raise invalid_parameter(
                        "StopReplicationToReplica is only valid on a replica secret."
                    )
                return self._promote_cross_account(ctx, repo, replica, link)
            primary = replica_arn(replica.arn, replica.primary_region)
            replicas = ReplicaRepository(tx)
            replicas.remove(primary, replica.region)
            if replica.primary_region in self._peers:
                # The primary lives in another deployment: it learns through a notice
                # (notify_peers), sent until that deployment acknowledges it.
                replicas.add_notice(replica.arn, replica.primary_region, self._clock.now_ms())
            repo.update_secret(
                replica.arn,
                primary_region=None,
                last_changed_ms=max(self._clock.now_ms(), replica.last_changed_ms + 1),
            )
            return replica

    def _promote_cross_account(
        self, ctx: CallContext, repo: Repository, replica: SecretRecord, link: CrossAccountLink
    ) -> SecretRecord:
        """AWS: the replica becomes standalone, its managed resource policy is removed ("which
        is why secretsmanager:DeleteResourcePolicy is required") and the primary shows
        Detached for it."""
        self._secrets.locate(repo, ctx, replica.arn, "secretsmanager:DeleteResourcePolicy")
        cross = CrossAccountRepository(repo.tx)
        if link.linked:
            cross.update(link.replica_arn, promoted=1, status=DETACHED, status_message=None)
        else:
            cross.remove(link.replica_arn)
        changes: dict[str, Any] = {
            "last_changed_ms": max(self._clock.now_ms(), replica.last_changed_ms + 1)
        }
        if replica.resource_policy == cross_account_policy(link.primary_arn):
            changes["resource_policy"] = None
        repo.update_secret(replica.arn, **changes)
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
        # A look first, without the write lock: the dispatcher calls this every tick, and an
        # empty outbox is the usual case.
        with self._db.statement() as tx:
            if not ReplicaRepository(tx).pending(1):
                return 0
        with self._db.transaction(write=True) as tx:
            replicas = ReplicaRepository(tx)
            entries = replicas.pending(batch)
            if not entries:
                return 0
            repo = Repository(tx)
            now = self._clock.now_ms()
            cross = CrossAccountRepository(tx)
            for primary_arn in dict.fromkeys(arn for _, arn, _ in entries):
                primary = repo.secret_by_arn(primary_arn, for_update=True)
                if primary is None:
                    for replica in replicas.for_primary(primary_arn):
                        if replica.region in self._peers:
                            replicas.mark_for_peer(primary_arn, replica.region, now)
                    replicas.remove_all(primary_arn)
                    cross.remove_for_primary(primary_arn)
                    continue
                for replica in replicas.for_primary(primary_arn):
                    if replica.region in self._peers:
                        replicas.mark_for_peer(primary_arn, replica.region, now)
                        continue
                    self._sync_one(repo, replicas, primary, replica, now)
                for link in cross.linked_to(primary_arn):
                    if not link.promoted and link.status != DETACHED:
                        self._sync_cross(repo, cross, primary, link, now)
            replicas.done([entry_id for entry_id, _, _ in entries])
            return len(entries)

    def retry_failed(self, batch: int = 100) -> int:
        """Failed replicas are tried again (a missing key may exist now, a clashing secret may
        be gone): an outbox entry for each of their primaries."""
        with self._db.statement() as tx:
            if not ReplicaRepository(tx).failed_primaries(1):
                return 0
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
        except (ReplicationFailure, ServiceError) as exc:
            # ServiceError: a key that cannot be used (the primary's disabled, say). The replica
            # shows Failed; the dispatcher must never be stuck on one secret.
            message = _failure(exc) if isinstance(exc, ServiceError) else str(exc)
            if replica.status != FAILED or replica.status_message != message:
                replicas.set_status(primary.arn, replica.region, FAILED, message, now)
                self._event(repo, primary, replica.region, "ReplicationFailed", now)
            return
        if replica.status != IN_SYNC:
            self._event(repo, primary, replica.region, "ReplicationSucceeded", now)
        replicas.set_status(primary.arn, replica.region, IN_SYNC, None, now)

    def _copy(self, repo: Repository, primary: SecretRecord, replica: ReplicaRecord) -> None:
        arn = replica_arn(primary.arn, replica.region)
        key = self._replica_key(repo, primary.account_id, replica.region, replica.kms_key_id)
        target = repo.secret_by_arn(arn, for_update=True)
        if target is None:
            _clear_name(repo, primary.account_id, replica.region, primary.name, replica)
            repo.insert_secret(_replica_record(primary, arn, replica))
        self._write_versions(
            repo,
            arn,
            key,
            repo.versions(primary.arn),
            repo.stages(primary.arn),
            lambda v: self._plaintext(repo, primary.arn, v),
        )
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

    def _replica_key(
        self, repo: Repository, account_id: str, region: str, kms_key_id: str | None
    ) -> KeyRecord:
        """The replica's key, usable now (checked before anything is written)."""
        try:
            key = self._keyring.resolve(repo, account_id, region, kms_key_id)
        except ServiceError as exc:
            raise ReplicationFailure(
                f"Replication failed: The KMS key {kms_key_id or DEFAULT_ALIAS} is not available"
                f" in region {region}."
            ) from exc
        if key.key_state != "Enabled":
            state = "pending deletion" if key.key_state == "PendingDeletion" else "disabled"
            raise ReplicationFailure(f"Replication failed: The KMS key {key.arn} is {state}.")
        return key

    def _plaintext(self, repo: Repository, primary_arn: str, version: VersionRecord) -> bytes:
        assert version.envelope is not None
        return self._keyring.open(
            repo, version.envelope, encryption_context(primary_arn, version.version_id)
        )

    def _write_versions(
        self,
        repo: Repository,
        arn: str,
        key: KeyRecord,
        wanted: Sequence[VersionRecord],
        stages: dict[str, str],
        plaintext: Callable[[VersionRecord], bytes],
    ) -> None:
        """Make `arn`'s versions and labels those of the primary, each value sealed under `key`
        (versions already there under that key are kept: a version's value never changes once
        it has one; see _current_copy)."""
        kept = {v.version_id: v for v in repo.versions(arn)}
        material = KmsRepository(repo.tx).material
        for version in wanted:
            have = kept.pop(version.version_id, None)
            if have is not None and _current_copy(have, version, key):
                continue
            envelope, key_arn = None, None
            if version.envelope is not None or version.value_kind != "none":
                sealed = self._keyring.seal(
                    key, plaintext(version), encryption_context(arn, version.version_id), material
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
        repo.replace_stages(arn, old_stages, stages)
        repo.delete_versions(arn, list(kept))

    # -- cross-account replicas -----------------------------------------------------------------
    def _sync_cross(
        self,
        repo: Repository,
        cross: CrossAccountRepository,
        primary: SecretRecord,
        link: CrossAccountLink,
        now: int,
    ) -> None:
        """The primary's versions and labels into its cross-account replica (only the value:
        the replica keeps its own description, tags, policy and key, as AWS documents)."""
        try:
            target = repo.secret_by_arn(link.replica_arn, for_update=True)
            if target is None:
                raise ReplicationFailure(
                    f"Replication failed: The replica secret {link.replica_arn} does not exist."
                )
            key = self._replica_key(repo, target.account_id, target.region, target.kms_key_id)
            self._write_versions(
                repo,
                target.arn,
                key,
                repo.versions(primary.arn),
                repo.stages(primary.arn),
                lambda v: self._plaintext(repo, primary.arn, v),
            )
            repo.update_secret(
                target.arn,
                version_seq=max(primary.version_seq, target.version_seq),
                last_changed_ms=max(now, target.last_changed_ms + 1),
            )
        except (ReplicationFailure, ServiceError) as exc:
            message = _failure(exc) if isinstance(exc, ServiceError) else str(exc)
            if link.status != FAILED or link.status_message != message:
                cross.update(link.replica_arn, status=FAILED, status_message=message)
                self._event(repo, primary, link.replica_arn, "ReplicationFailed", now)
            return
        if link.status != IN_SYNC:
            self._event(repo, primary, link.replica_arn, "ReplicationSucceeded", now)
        cross.update(link.replica_arn, status=IN_SYNC, status_message=None, synced_ms=now)

    # -- regions other deployments serve --------------------------------------------------------
    async def push_to_peers(self, batch: int = 20) -> int:
        """Send each owed primary to the deployment serving the replica's region (or tell it to
        delete the replica). The HTTP calls run in a thread, awaited outside any transaction;
        the transactions run here, on the worker's event loop, as ADR 0004 requires (the
        connection is the loop's). Returns the entries handled."""
        now = self._clock.now_ms()
        with self._db.transaction() as tx:
            due = ReplicaRepository(tx).peer_due(now, batch)
        down: dict[str, str] = {}
        for primary_arn, region, generation, attempts in due:
            if region in down:
                # One unanswered call per peer and round: a peer that times out must not hold
                # the dispatcher for the whole batch; the others wait for their next attempt.
                self._peer_failed(primary_arn, region, attempts, down[region])
                continue
            peer = self._peers.get(region)
            if peer is None:
                with self._db.transaction(write=True) as tx:
                    ReplicaRepository(tx).peer_forget(primary_arn, region)
                continue
            try:
                outcome = await self._exchange(peer, primary_arn, region)
            except PeerUnreachable as exc:
                down[region] = _unreachable(peer, str(exc))
                self._peer_failed(primary_arn, region, attempts, down[region])
                continue
            except ServiceError as exc:
                # The primary's value cannot be read here (its key disabled, say): this replica
                # waits, Failed; the others go on.
                self._peer_failed(primary_arn, region, attempts, _failure(exc), failed=True)
                continue
            except PeerRefused as exc:
                if exc.code == PROMOTED_CODE:
                    self._peer_promoted(primary_arn, region)
                    continue
                message = exc.message
                if not message.startswith("Replication failed:"):
                    message = (
                        f"Replication failed: the secretsd deployment serving {region} refused"
                        f" it ({exc.code}: {exc.message})"
                    )
                self._peer_failed(primary_arn, region, attempts, message, failed=True)
                continue
            if outcome is None:
                continue  # the primary changed between the two steps: again next round
            with self._db.transaction(write=True) as tx:
                replicas = ReplicaRepository(tx)
                current = replicas.peer_delivered(primary_arn, region, generation)
                if attempts:
                    replicas.peer_back(region, now)
                if outcome == "deleted" or not current:
                    # InSync only once the peer has the latest state (a newer change is owed).
                    continue
                found = [r for r in replicas.for_primary(primary_arn) if r.region == region]
                primary = Repository(tx).secret_by_arn(primary_arn)
                if found and primary is not None and found[0].status != IN_SYNC:
                    self._event(Repository(tx), primary, region, "ReplicationSucceeded", now)
                    replicas.set_status(primary_arn, region, IN_SYNC, None, now)
        return len(due)

    async def _exchange(self, peer: Peer, primary_arn: str, region: str) -> str | None:
        """ "applied" or "deleted" once the peer acknowledged; None when the peer still misses
        values after they were sent (the primary changed meanwhile)."""
        values: set[str] = set()
        for _ in range(2):
            with self._db.transaction() as tx:
                payload = self._peer_payload(Repository(tx), primary_arn, region, values)
            if payload is None:
                await _call(peer, "DeleteReplica", {"PrimaryARN": primary_arn}, region)
                return "deleted"
            answer = await _call(peer, "ApplyReplica", payload, region)
            missing = answer.get("Missing")
            if not missing:
                return "applied"
            values = {str(m) for m in missing}
        return None

    def _peer_payload(
        self, repo: Repository, primary_arn: str, region: str, values: set[str]
    ) -> dict[str, Any] | None:
        """The primary's whole state for its replica in `region`, with the plaintext values of
        the versions in `values` only (memory only, sent to the peer, which seals them under its
        own key); None when the replica is no longer wanted."""
        primary = repo.secret_by_arn(primary_arn)
        found = [
            r for r in ReplicaRepository(repo.tx).for_primary(primary_arn) if r.region == region
        ]
        if primary is None or not found:
            return None
        versions = []
        for v in repo.versions(primary_arn):
            entry: dict[str, Any] = {
                "VersionId": v.version_id,
                "Seq": v.seq,
                "CreatedMs": v.created_ms,
                "Kind": v.value_kind,
            }
            if v.envelope is not None and v.version_id in values:
                entry["Value"] = base64.b64encode(self._plaintext(repo, primary_arn, v)).decode()
            versions.append(entry)
        return {
            "PrimaryARN": primary.arn,
            "Name": primary.name,
            "Description": primary.description,
            "SecretType": primary.secret_type,
            "Tags": [list(t) for t in primary.tags] if primary.tags is not None else None,
            "ResourcePolicy": primary.resource_policy,
            "OwningService": primary.owning_service,
            "CreatedMs": primary.created_ms,
            "LastChangedMs": primary.last_changed_ms,
            "VersionSeq": primary.version_seq,
            "KmsKeyId": found[0].kms_key_id,
            "ForceOverwrite": found[0].force_overwrite,
            "Versions": versions,
            "Stages": repo.stages(primary_arn),
        }

    def _peer_failed(
        self, primary_arn: str, region: str, attempts: int, message: str, *, failed: bool = False
    ) -> None:
        now = self._clock.now_ms()
        with self._db.transaction(write=True) as tx:
            replicas = ReplicaRepository(tx)
            replicas.peer_retry(primary_arn, region, attempts + 1, now + _backoff_ms(attempts))
            found = [r for r in replicas.for_primary(primary_arn) if r.region == region]
            if not found:
                return
            # A few missed attempts are "in progress"; then the replica shows Failed.
            status = FAILED if failed or attempts >= 2 else IN_PROGRESS
            if (found[0].status, found[0].status_message) != (status, message):
                replicas.set_status(primary_arn, region, status, message, now)
                primary = Repository(tx).secret_by_arn(primary_arn)
                if status == FAILED and primary is not None:
                    self._event(Repository(tx), primary, region, "ReplicationFailed", now)

    def _peer_promoted(self, primary_arn: str, region: str) -> None:
        with self._db.transaction(write=True) as tx:
            replicas = ReplicaRepository(tx)
            replicas.remove(primary_arn, region)
            replicas.peer_forget(primary_arn, region)

    async def notify_peers(self, batch: int = 20) -> int:
        """Tell primaries' deployments about replicas promoted here."""
        now = self._clock.now_ms()
        with self._db.transaction() as tx:
            due = ReplicaRepository(tx).notices_due(now, batch)
        for arn, primary_region, attempts in due:
            peer = self._peers.get(primary_region)
            try:
                if peer is None:
                    raise PeerRefused("NoPeer", primary_region)
                await _call(peer, "ReplicaPromoted", {"ReplicaARN": arn}, primary_region)
            except (PeerUnreachable, PeerRefused):
                with self._db.transaction(write=True) as tx:
                    ReplicaRepository(tx).notice_retry(
                        arn, attempts + 1, now + _backoff_ms(attempts)
                    )
                continue
            with self._db.transaction(write=True) as tx:
                ReplicaRepository(tx).notice_done(arn)
        return len(due)

    # -- the receiving side (api/peering.py) -----------------------------------------------------
    def _peer_allowed(self, ctx: CallContext, arn: str, other_region: str) -> None:
        """A peer's call: signed by a principal of this deployment in the secret's own account
        who may `secretsd:ReplicateFromPeer` on it, about a region this deployment lists as
        served elsewhere."""
        if other_region not in self._peers or other_region == ctx.region:
            raise ServiceError(
                "AccessDeniedException",
                f"Region {other_region} is not served by a replication peer of this deployment.",
            )
        if arn.split(":")[4] != ctx.account_id:
            raise ServiceError(
                "AccessDeniedException",
                f"User: {ctx.principal_arn} is not authorized to perform: {PEER_ACTION} on"
                f" resource: {arn}",
            )
        self._secrets.authorize(ctx, PEER_ACTION, arn, {})

    def apply_from_peer(
        self, ctx: CallContext, payload: Mapping[str, Any]
    ) -> tuple[str, list[str]]:
        """ApplyReplica: the replica of a primary in another deployment takes its state,
        sealed under this deployment's key for the replica's region. Returns the replica's ARN
        and the versions whose values must be sent first (nothing is written then)."""
        primary_arn = str(payload["PrimaryARN"])
        primary_region = primary_arn.split(":")[3]
        arn = replica_arn(primary_arn, ctx.region)
        self._peer_allowed(ctx, arn, primary_region)
        account = arn.split(":")[4]
        kms_key_id = payload.get("KmsKeyId")
        replica = ReplicaRecord(
            primary_arn,
            ctx.region,
            kms_key_id,
            bool(payload.get("ForceOverwrite")),
            "",
            None,
            0,
            None,
        )
        tags = payload.get("Tags")
        primary = SecretRecord(
            arn=primary_arn,
            account_id=account,
            region=primary_region,
            name=str(payload["Name"]),
            description=payload.get("Description"),
            kms_key_id=None,
            secret_type=payload.get("SecretType"),
            created_ms=int(payload["CreatedMs"]),
            last_changed_ms=int(payload["LastChangedMs"]),
            last_accessed_ms=None,
            deleted_ms=None,
            deletion_ms=None,
            tags=tuple((str(k), str(v)) for k, v in tags) if tags is not None else None,
            resource_policy=payload.get("ResourcePolicy"),
            owning_service=payload.get("OwningService"),
            primary_region=primary_region,
            version_seq=int(payload["VersionSeq"]),
        )
        values: dict[str, bytes] = {}
        versions = []
        for v in payload["Versions"]:
            if "Value" in v:
                values[v["VersionId"]] = base64.b64decode(v["Value"])
            versions.append(
                VersionRecord(
                    secret_arn=primary_arn,
                    version_id=str(v["VersionId"]),
                    seq=int(v["Seq"]),
                    created_ms=int(v["CreatedMs"]),
                    last_accessed_ms=None,
                    value_kind=str(v["Kind"]),
                    envelope=None,
                    kms_key_arn=None,
                )
            )
        stages = {str(k): str(v) for k, v in payload["Stages"].items()}
        _check_state(versions, values, stages)
        try:
            with self._db.transaction(write=True) as tx:
                repo = Repository(tx)
                key = self._replica_key(repo, account, ctx.region, kms_key_id)
                target = repo.secret_by_arn(arn, for_update=True)
                clash = None
                if target is None:
                    clash = repo.secret_by_name(account, ctx.region, primary.name, for_update=True)
                    if clash is not None and not replica.force_overwrite:
                        raise ReplicationFailure(
                            f"Replication failed: Secret name {primary.name} already exists in"
                            f" region {ctx.region}."
                        )
                elif target.primary_region != primary_region:
                    raise ServiceError(
                        PROMOTED_CODE, f"The replica {arn} is no longer a replica secret."
                    )
                # Values are sent only when asked for: those of versions this replica does not
                # hold (under its key) yet. Nothing is written until they are all here.
                kept = {v.version_id: v for v in repo.versions(arn)} if target else {}
                missing = [
                    v.version_id
                    for v in versions
                    if v.value_kind != "none"
                    and v.version_id not in values
                    and not (
                        v.version_id in kept and kept[v.version_id].kms_key_arn in (key.arn, None)
                    )
                ]
                if missing:
                    return arn, missing
                if target is None:
                    if clash is not None:
                        repo.delete_secret(clash.arn)
                    repo.insert_secret(_replica_record(primary, arn, replica))
                self._write_versions(
                    repo, arn, key, versions, stages, lambda v: values[v.version_id]
                )
                repo.update_secret(
                    arn,
                    description=primary.description,
                    secret_type=primary.secret_type,
                    tags=primary.tags,
                    resource_policy=primary.resource_policy,
                    kms_key_id=kms_key_id,
                    version_seq=primary.version_seq,
                    last_changed_ms=primary.last_changed_ms,
                )
        except ReplicationFailure as exc:
            raise invalid_request(str(exc)) from None
        return arn, []

    def delete_from_peer(self, ctx: CallContext, primary_arn: str) -> None:
        """DeleteReplica: the primary's deployment removed this region (or the primary)."""
        arn = replica_arn(primary_arn, ctx.region)
        self._peer_allowed(ctx, arn, primary_arn.split(":")[3])
        with self._db.transaction(write=True) as tx:
            repo = Repository(tx)
            target = repo.secret_by_arn(arn, for_update=True)
            if target is not None and target.primary_region == primary_arn.split(":")[3]:
                repo.delete_secret(arn)

    def promoted_at_peer(self, ctx: CallContext, replica: str) -> None:
        """ReplicaPromoted: a replica of a primary here was promoted in its own deployment."""
        replica_region = replica.split(":")[3]
        self._peer_allowed(ctx, replica, replica_region)
        primary_arn = replica_arn(replica, ctx.region)
        with self._db.transaction(write=True) as tx:
            replicas = ReplicaRepository(tx)
            replicas.remove(primary_arn, replica_region)
            replicas.peer_forget(primary_arn, replica_region)

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


def _clear_name(
    repo: Repository, account_id: str, region: str, name: str, replica: ReplicaRecord
) -> None:
    """A secret of the replica's name in its region fails the replica unless overwrite was
    forced, which deletes it."""
    clash = repo.secret_by_name(account_id, region, name, for_update=True)
    if clash is None:
        return
    if not replica.force_overwrite:
        raise ReplicationFailure(
            f"Replication failed: Secret name {name} already exists in region {region}."
        )
    repo.delete_secret(clash.arn)


def _check_state(
    versions: Sequence[VersionRecord], values: Mapping[str, bytes], stages: Mapping[str, str]
) -> None:
    """A peer's state must be whole: labels on its versions, known value kinds."""
    ids = {v.version_id for v in versions}
    if len(ids) != len(versions) or not set(stages.values()) <= ids or not set(values) <= ids:
        raise ServiceError("ValidationException", "Malformed replica state.")
    if any(v.value_kind not in ("string", "binary", "none") for v in versions):
        raise ServiceError("ValidationException", "Malformed replica state.")


async def _call(
    peer: Peer, operation: str, payload: Mapping[str, Any], region: str
) -> dict[str, Any]:
    """Blocking HTTP in a thread: the event loop keeps serving requests meanwhile."""
    return await asyncio.to_thread(call_peer, peer, operation, payload, region=region)


def _failure(exc: ServiceError) -> str:
    return f"Replication failed: {exc.message}"


def _backoff_ms(attempts: int) -> int:
    return int(min(PEER_BACKOFF_MAX_MS, 200 * 2 ** min(attempts, 10)))


def _unreachable(peer: Peer, reason: str) -> str:
    return (
        f"Replication in progress: the secretsd deployment serving {peer.region} ({peer.url})"
        f" cannot be reached ({reason}); retrying."
    )


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
    offload: Offloader | None = None,
) -> Callable[[], Coroutine[Any, Any, None]]:
    """One dispatcher across workers and nodes: whoever holds the `replication` lease. The
    lease saves duplicate work only: a copy reads the primary under its row lock and writes its
    whole state, so two dispatchers at once still leave every replica equal to its primary."""

    async def run() -> None:
        leases = LeaseKeeper(db, clock)
        next_retry_ms = 0

        def lead() -> bool:
            """Whether this worker dispatches now (taking or renewing the lease)."""
            nonlocal next_retry_ms
            # Renewed at half its ttl: an idle tick does not write (ADR 0006).
            if not leases.keep(LEASE, ttl_seconds=max(DISPATCH_LEASE_SECONDS, tick_seconds * 20)):
                return False
            if clock.now_ms() >= next_retry_ms:
                service.retry_failed()
                next_retry_ms = clock.now_ms() + int(retry_seconds * 1000)
            return True

        while True:
            try:
                # The database work in the handler threads on PostgreSQL (ADR 0007).
                if await off_loop(offload, lead):
                    while await off_loop(offload, service.dispatch):
                        await asyncio.sleep(0)
                    if service.peers:
                        # Another deployment must not get a version this one could still lose.
                        await db.wait_durable()
                        await service.push_to_peers()
                        await service.notify_peers()
            except Exception as exc:
                log_failed_pass(log, "replication dispatch", exc)
            await asyncio.sleep(tick_seconds)

    return run


def _current_copy(have: VersionRecord, version: VersionRecord, key: KeyRecord) -> bool:
    """Whether a replica's copy of the primary's `version` can stay as it is. A value, once
    set, never changes, so a copy sealed under the replica's key is current. A copy without a
    value (a rotation's AWSPENDING placeholder, copied before createSecret filled it) is current
    only while the primary's has none either: kept regardless, the replica's AWSCURRENT ended on
    a version without a value once the rotation finished."""
    if have.envelope is None:
        return version.envelope is None and version.value_kind == "none"
    return have.kms_key_arn in (key.arn, None)
