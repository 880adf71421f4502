"""Rotation handlers, layered over the Secrets Manager handlers: RotateSecret,
CancelRotateSecret, and the rotation members of DescribeSecret and ListSecrets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from secretsd.api.replication import sync_result
from secretsd.api.secretsmanager import Handler, Params, ts
from secretsd.service.context import CallContext
from secretsd.service.rotation import RotationInfo, RotationService
from secretsd.service.secrets import SecretsService

ROTATION_OPERATIONS = ("RotateSecret", "CancelRotateSecret")


def _add_rotation(entries: list[dict[str, Any]], rotation: RotationService) -> None:
    infos = rotation.info_for([e["ARN"] for e in entries])
    for entry in entries:
        info = infos.get(entry["ARN"])
        if info is not None:
            entry.update(rotation_members(info))


def rotation_members(info: RotationInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"RotationEnabled": info.enabled}
    if info.lambda_arn:
        out["RotationLambdaARN"] = info.lambda_arn
    if info.rules:
        out["RotationRules"] = info.rules
    if info.last_rotated_ms is not None:
        out["LastRotatedDate"] = ts(info.last_rotated_ms)
    if info.next_rotation_ms is not None:
        out["NextRotationDate"] = ts(info.next_rotation_ms)
    return out


def with_rotation(handlers: Mapping[str, Handler], rotation: RotationService) -> dict[str, Handler]:
    base = dict(handlers)

    def rotate_secret(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
        # AWS answers at once; the rotation (if one was started) runs on as a task of this
        # worker's loop, its claim renewed, and resumes elsewhere if this worker dies.
        result = rotation.rotate_secret(
            ctx,
            secret_id=p["SecretId"],
            token=p.get("ClientRequestToken"),
            lambda_arn=p.get("RotationLambdaARN"),
            rules=p.get("RotationRules"),
            rotate_immediately=p.get("RotateImmediately"),
        )
        return {"ARN": result.arn, "Name": result.name, "VersionId": result.version_id}

    def cancel_rotate_secret(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
        result = rotation.cancel_rotate_secret(ctx, secret_id=p["SecretId"])
        out: dict[str, Any] = {"ARN": result.arn, "Name": result.name}
        if result.version_id is not None:
            out["VersionId"] = result.version_id
        return out

    def describe_secret(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
        out = sync_result(base["DescribeSecret"](svc, ctx, p))
        _add_rotation([out], rotation)
        return out

    def list_secrets(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
        out = sync_result(base["ListSecrets"](svc, ctx, p))
        _add_rotation(out["SecretList"], rotation)
        return out

    return {
        **base,
        "RotateSecret": rotate_secret,
        "CancelRotateSecret": cancel_rotate_secret,
        "DescribeSecret": describe_secret,
        "ListSecrets": list_secrets,
    }
