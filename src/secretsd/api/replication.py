"""Replication handlers, layered over the Secrets Manager handlers: the replication operations,
CreateSecret's AddReplicaRegions, and ReplicationStatus in DescribeSecret (ListSecrets' entries
have no such member in the model; they show PrimaryRegion)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from secretsd.api.secretsmanager import Handler, Params, Result, not_supported, ts
from secretsd.service.context import CallContext
from secretsd.service.replication import ReplicaStatus, ReplicationService, check_regions
from secretsd.service.secrets import SecretsService

REPLICATION_OPERATIONS = (
    "ReplicateSecretToRegions",
    "RemoveRegionsFromReplication",
    "StopReplicationToReplica",
)


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
    handlers: Mapping[str, Handler], replication: ReplicationService
) -> dict[str, Handler]:
    base = dict(handlers)

    def create_secret(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
        if p.get("CrossAccountPrimaryARN"):
            raise not_supported("Cross-account replicas (CrossAccountPrimaryARN)")
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
        return out

    return {
        **base,
        "CreateSecret": create_secret,
        "ReplicateSecretToRegions": replicate,
        "RemoveRegionsFromReplication": remove_regions,
        "StopReplicationToReplica": stop_replication,
        "DescribeSecret": describe_secret,
    }


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
