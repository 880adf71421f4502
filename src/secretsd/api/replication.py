"""Replication handlers, layered over the Secrets Manager handlers: the replication operations,
CreateSecret's AddReplicaRegions, and ReplicationStatus in DescribeSecret (ListSecrets' entries
have no such member in the model; they show PrimaryRegion)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from secretsd.api.secretsmanager import Handler, Params, Result, tag_pairs, ts
from secretsd.service.context import CallContext
from secretsd.service.cross_account import CrossAccountService, CrossAccountView
from secretsd.service.replication import ReplicaStatus, ReplicationService, check_regions
from secretsd.service.secrets import SecretsService

REPLICATION_OPERATIONS = (
    "ReplicateSecretToRegions",
    "RemoveRegionsFromReplication",
    "StopReplicationToReplica",
    "AssociateCrossAccountReplica",
    "DisassociateCrossAccountReplica",
)
# What CreateSecret refuses alongside CrossAccountPrimaryARN (its documentation).
_NOT_WITH_PRIMARY = ("SecretString", "SecretBinary", "Description", "AddReplicaRegions", "Type")


def _status_out(statuses: Sequence[ReplicaStatus]) -> list[dict[str, Any]]:
    out = []
    for s in statuses:
        entry: dict[str, Any] = {"Region": s.region, "KmsKeyId": s.kms_key_id, "Status": s.status}
        if s.status_message is not None:
            entry["StatusMessage"] = s.status_message
        if s.last_accessed_ms is not None:
            entry["LastAccessedDate"] = ts(s.last_accessed_ms)
        out.append(entry)
    return out


def _regions(p: Params) -> list[tuple[str, str | None]]:
    return [(r.get("Region", ""), r.get("KmsKeyId")) for r in p.get("AddReplicaRegions") or []]


def sync_result(result: Result | Any) -> dict[str, Any]:
    # The Secrets Manager handlers these wrap are synchronous.
    assert not inspect.isawaitable(result) and isinstance(result, dict)
    return result


def with_replication(
    handlers: Mapping[str, Handler],
    replication: ReplicationService,
    cross_account: CrossAccountService,
) -> dict[str, Handler]:
    base = dict(handlers)

    def create_secret(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
        if p.get("CrossAccountPrimaryARN") is not None:
            r = cross_account.create_replica(
                ctx,
                name=p["Name"],
                primary_arn=p["CrossAccountPrimaryARN"],
                kms_key_id=p.get("KmsKeyId"),
                token=p.get("ClientRequestToken"),
                tags=tag_pairs(p.get("Tags")) or None,
                forbidden_given=any(p.get(k) is not None for k in _NOT_WITH_PRIMARY),
            )
            return {"ARN": r.arn, "Name": r.name}
        regions = _regions(p)
        if not regions:
            return sync_result(base["CreateSecret"](svc, ctx, p))
        check_regions(ctx.region, regions)
        force = bool(p.get("ForceOverwriteReplicaSecret"))
        svc.authorize(
            ctx,
            "secretsmanager:ReplicateSecretToRegions",
            p["Name"],
            {
                "secretsmanager:AddReplicaRegions": [r for r, _ in regions],
                "secretsmanager:ForceOverwriteReplicaSecret": force,
            },
        )
        replication.authorize_new_replicas(ctx, p["Name"], regions)
        out = sync_result(base["CreateSecret"](svc, ctx, {**p, "AddReplicaRegions": None}))
        _, statuses = replication.replicate(
            ctx, secret_id=out["ARN"], regions=regions, force_overwrite=force
        )
        out["ReplicationStatus"] = _status_out(statuses)
        return out

    def replicate(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
        secret, statuses = replication.replicate(
            ctx,
            secret_id=p["SecretId"],
            regions=_regions(p),
            force_overwrite=bool(p.get("ForceOverwriteReplicaSecret")),
        )
        return {"ARN": secret.arn, "ReplicationStatus": _status_out(statuses)}

    def remove_regions(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
        secret, statuses = replication.remove_regions(
            ctx, secret_id=p["SecretId"], regions=p["RemoveReplicaRegions"]
        )
        return {"ARN": secret.arn, "ReplicationStatus": _status_out(statuses)}

    def stop_replication(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
        return {"ARN": replication.stop_replication(ctx, secret_id=p["SecretId"]).arn}

    def describe_secret(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
        out = sync_result(base["DescribeSecret"](svc, ctx, p))
        _add_statuses([out], replication)
        primary, replicas = cross_account.views(out["ARN"])
        if primary is not None:
            out["CrossAccountPrimary"] = {
                "PrimarySecretARN": primary.arn,
                **_cross_status(primary),
            }
        if replicas:
            out["CrossAccountReplicas"] = [
                {
                    "ReplicaSecretARN": r.arn,
                    **(
                        {"ReplicationRoleARN": r.replication_role_arn}
                        if r.replication_role_arn
                        else {}
                    ),
                    **_cross_status(r),
                }
                for r in replicas
            ]
        return out

    def associate(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
        primary, replica, status = cross_account.associate(
            ctx,
            secret_id=p["SecretId"],
            replica_arn=p["CrossAccountReplicaARN"],
            restriction=p.get("ReplicaRestriction"),
            role_arn=p.get("ReplicationRoleARN"),
        )
        return {"ARN": primary, "CrossAccountReplicaARN": replica, "ReplicationStatus": status}

    def disassociate(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
        primary, replica = cross_account.disassociate(
            ctx, secret_id=p["SecretId"], replica_arn=p["CrossAccountReplicaARN"]
        )
        return {"ARN": primary, "CrossAccountReplicaARN": replica}

    return {
        **base,
        "CreateSecret": create_secret,
        "ReplicateSecretToRegions": replicate,
        "RemoveRegionsFromReplication": remove_regions,
        "StopReplicationToReplica": stop_replication,
        "DescribeSecret": describe_secret,
        "AssociateCrossAccountReplica": associate,
        "DisassociateCrossAccountReplica": disassociate,
    }


def _cross_status(view: CrossAccountView) -> dict[str, Any]:
    out: dict[str, Any] = {"ReplicationStatus": view.status}
    if view.status_message is not None:
        out["StatusMessage"] = view.status_message
    return out


def _add_statuses(entries: list[dict[str, Any]], replication: ReplicationService) -> None:
    """ReplicationStatus on primaries (entries whose PrimaryRegion is their own region)."""
    primaries = [e for e in entries if e.get("PrimaryRegion") == e["ARN"].split(":")[3]]
    if not primaries:
        return
    statuses = replication.statuses_for_arns([e["ARN"] for e in primaries])
    for entry in primaries:
        found = statuses.get(entry["ARN"])
        if found:
            entry["ReplicationStatus"] = _status_out(found)
