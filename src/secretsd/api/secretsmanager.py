"""Secrets Manager handlers: validated parameters -> one service call -> the modelled output.

Each handler returns a JSON-ready dict containing only members of the operation's output shape
(a protocol test checks this against the model): timestamps as epoch seconds with millisecond
fractions, blobs as base64.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from secretsd.service import staging
from secretsd.service.context import CallContext
from secretsd.service.passwords import generate_password
from secretsd.service.secrets import SecretsService
from secretsd.service.views import SecretValue, SecretView
from secretsd.store.records import SecretRecord

Params = dict[str, Any]
# None means the operation has no output shape: AWS answers with an empty body. A handler
# whose work waits on something else (a function invocation) returns an awaitable answer.
Result = dict[str, Any] | None
Handler = Callable[[SecretsService, CallContext, Params], Result | Awaitable[Result]]


def ts(ms: int) -> float:
    return ms / 1000


def tag_pairs(pairs: list[dict[str, str]] | None) -> list[tuple[str, str]] | None:
    """Tags as (key, value); the model leaves Key and Value optional, the service checks them."""
    if pairs is None:
        return None
    return [(t.get("Key", ""), t.get("Value", "")) for t in pairs]


def _value_out(v: SecretValue) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ARN": v.secret.arn,
        "Name": v.secret.name,
        "VersionId": v.version.version_id,
    }
    if v.binary is not None:
        out["SecretBinary"] = base64.b64encode(v.binary).decode()
    else:
        out["SecretString"] = v.string
    out["VersionStages"] = v.stages
    out["CreatedDate"] = ts(v.version.created_ms)
    return out


def _secret_common(secret: SecretRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
    if secret.secret_type is not None:
        out["Type"] = secret.secret_type
    if secret.description:
        out["Description"] = secret.description
    if secret.kms_key_id is not None:
        out["KmsKeyId"] = secret.kms_key_id
    out["LastChangedDate"] = ts(secret.last_changed_ms)
    if secret.last_accessed_ms is not None:
        out["LastAccessedDate"] = ts(secret.last_accessed_ms)
    if secret.deleted_ms is not None:
        out["DeletedDate"] = ts(secret.deleted_ms)
    if secret.tags is not None:
        out["Tags"] = [{"Key": k, "Value": v} for k, v in secret.tags]
    if secret.owning_service is not None:
        out["OwningService"] = secret.owning_service
    out["CreatedDate"] = ts(secret.created_ms)
    if secret.primary_region is not None:
        out["PrimaryRegion"] = secret.primary_region
    return out


def _versions_to_stages(view: SecretView) -> dict[str, list[str]]:
    return staging.labels_by_version(view.stages)


def create_secret(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    # AddReplicaRegions: api/replication.py wraps this handler.
    r = svc.create_secret(
        ctx,
        name=p["Name"],
        token=p.get("ClientRequestToken"),
        description=p.get("Description"),
        kms_key_id=p.get("KmsKeyId"),
        secret_string=p.get("SecretString"),
        secret_binary=p.get("SecretBinary"),
        tags=tag_pairs(p.get("Tags")),
        secret_type=p.get("Type"),
    )
    out: dict[str, Any] = {"ARN": r.arn, "Name": r.name}
    if r.version_id is not None:
        out["VersionId"] = r.version_id
    return out


def get_secret_value(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    return _value_out(
        svc.get_secret_value(
            ctx,
            secret_id=p["SecretId"],
            version_id=p.get("VersionId"),
            version_stage=p.get("VersionStage"),
        )
    )


def batch_get_secret_value(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    page, errors = svc.batch_get_secret_value(
        ctx,
        secret_ids=p.get("SecretIdList"),
        filters=p.get("Filters"),
        max_results=p.get("MaxResults"),
        next_token=p.get("NextToken"),
    )
    out: dict[str, Any] = {
        "SecretValues": [_value_out(v) for v in page.items],
        "Errors": [
            {"SecretId": e.secret_id, "ErrorCode": e.code, "Message": e.message} for e in errors
        ],
    }
    if page.next_token is not None:
        out["NextToken"] = page.next_token
    return out


def put_secret_value(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    r = svc.put_secret_value(
        ctx,
        secret_id=p["SecretId"],
        token=p.get("ClientRequestToken"),
        secret_string=p.get("SecretString"),
        secret_binary=p.get("SecretBinary"),
        version_stages=p.get("VersionStages"),
    )
    return {"ARN": r.arn, "Name": r.name, "VersionId": r.version_id, "VersionStages": r.stages}


def update_secret(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    r = svc.update_secret(
        ctx,
        secret_id=p["SecretId"],
        token=p.get("ClientRequestToken"),
        description=p.get("Description"),
        kms_key_id=p.get("KmsKeyId"),
        secret_string=p.get("SecretString"),
        secret_binary=p.get("SecretBinary"),
        secret_type=p.get("Type"),
    )
    out: dict[str, Any] = {"ARN": r.arn, "Name": r.name}
    if r.version_id is not None:
        out["VersionId"] = r.version_id
    return out


def update_secret_version_stage(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    r = svc.update_secret_version_stage(
        ctx,
        secret_id=p["SecretId"],
        version_stage=p["VersionStage"],
        move_to=p.get("MoveToVersionId"),
        remove_from=p.get("RemoveFromVersionId"),
    )
    return {"ARN": r.arn, "Name": r.name}


def describe_secret(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    view = svc.describe_secret(ctx, secret_id=p["SecretId"])
    out = _secret_common(view.secret)
    if view.stages:
        out["VersionIdsToStages"] = _versions_to_stages(view)
    return out


def list_secrets(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    page = svc.list_secrets(
        ctx,
        filters=p.get("Filters"),
        max_results=p.get("MaxResults"),
        next_token=p.get("NextToken"),
        include_planned_deletion=bool(p.get("IncludePlannedDeletion")),
        sort_by=p.get("SortBy"),
        sort_order=p.get("SortOrder"),
    )
    entries = []
    for view in page.items:
        entry = _secret_common(view.secret)
        if view.stages:
            entry["SecretVersionsToStages"] = _versions_to_stages(view)
        entries.append(entry)
    out: dict[str, Any] = {"SecretList": entries}
    if page.next_token is not None:
        out["NextToken"] = page.next_token
    return out


def list_secret_version_ids(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    secret, page = svc.list_secret_version_ids(
        ctx,
        secret_id=p["SecretId"],
        max_results=p.get("MaxResults"),
        next_token=p.get("NextToken"),
        include_deprecated=bool(p.get("IncludeDeprecated")),
    )
    versions = []
    for view in page.items:
        entry: dict[str, Any] = {"VersionId": view.version.version_id}
        if view.stages:
            entry["VersionStages"] = view.stages
        if view.version.last_accessed_ms is not None:
            entry["LastAccessedDate"] = ts(view.version.last_accessed_ms)
        entry["CreatedDate"] = ts(view.version.created_ms)
        key_arn = view.version.kms_key_arn
        entry["KmsKeyIds"] = [
            key_arn if secret.kms_key_id is not None and key_arn else "DefaultEncryptionKey"
        ]
        versions.append(entry)
    out: dict[str, Any] = {"Versions": versions}
    if page.next_token is not None:
        out["NextToken"] = page.next_token
    out["ARN"] = secret.arn
    out["Name"] = secret.name
    return out


def delete_secret(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    r = svc.delete_secret(
        ctx,
        secret_id=p["SecretId"],
        recovery_window_days=p.get("RecoveryWindowInDays"),
        force=p.get("ForceDeleteWithoutRecovery"),
    )
    return {"ARN": r.arn, "Name": r.name, "DeletionDate": ts(r.deletion_ms)}


def restore_secret(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    r = svc.restore_secret(ctx, secret_id=p["SecretId"])
    return {"ARN": r.arn, "Name": r.name}


def tag_resource(svc: SecretsService, ctx: CallContext, p: Params) -> None:
    svc.tag_resource(ctx, secret_id=p["SecretId"], tags=tag_pairs(p["Tags"]) or [])


def untag_resource(svc: SecretsService, ctx: CallContext, p: Params) -> None:
    svc.untag_resource(ctx, secret_id=p["SecretId"], keys=p["TagKeys"])


def get_resource_policy(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    secret = svc.get_resource_policy(ctx, secret_id=p["SecretId"])
    out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
    if secret.resource_policy is not None:
        out["ResourcePolicy"] = secret.resource_policy
    return out


def put_resource_policy(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    secret = svc.put_resource_policy(
        ctx,
        secret_id=p["SecretId"],
        policy=p["ResourcePolicy"],
        block_public_policy=bool(p.get("BlockPublicPolicy")),
    )
    return {"ARN": secret.arn, "Name": secret.name}


def delete_resource_policy(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    secret = svc.delete_resource_policy(ctx, secret_id=p["SecretId"])
    return {"ARN": secret.arn, "Name": secret.name}


def validate_resource_policy(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    errors = svc.validate_resource_policy(
        ctx, secret_id=p.get("SecretId"), policy=p["ResourcePolicy"]
    )
    return {"PolicyValidationPassed": not errors, "ValidationErrors": errors}


def list_resource_policies(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    secret = svc.get_resource_policy(ctx, secret_id=p["SecretId"])
    policies = [{"PolicyName": "default"}] if secret.resource_policy is not None else []
    return {"ResourcePolicies": policies}


def get_random_password(svc: SecretsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    svc.require_unscoped(ctx, "secretsmanager:GetRandomPassword")
    password = generate_password(
        length=p.get("PasswordLength", 32),
        exclude_characters=p.get("ExcludeCharacters", ""),
        exclude_numbers=bool(p.get("ExcludeNumbers")),
        exclude_punctuation=bool(p.get("ExcludePunctuation")),
        exclude_uppercase=bool(p.get("ExcludeUppercase")),
        exclude_lowercase=bool(p.get("ExcludeLowercase")),
        include_space=bool(p.get("IncludeSpace")),
        require_each_included_type=p.get("RequireEachIncludedType", True),
    )
    return {"RandomPassword": password}


HANDLERS: dict[str, Handler] = {
    "CreateSecret": create_secret,
    "GetSecretValue": get_secret_value,
    "BatchGetSecretValue": batch_get_secret_value,
    "PutSecretValue": put_secret_value,
    "UpdateSecret": update_secret,
    "UpdateSecretVersionStage": update_secret_version_stage,
    "DescribeSecret": describe_secret,
    "ListSecrets": list_secrets,
    "ListSecretVersionIds": list_secret_version_ids,
    "DeleteSecret": delete_secret,
    "RestoreSecret": restore_secret,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "GetResourcePolicy": get_resource_policy,
    "PutResourcePolicy": put_resource_policy,
    "DeleteResourcePolicy": delete_resource_policy,
    "ValidateResourcePolicy": validate_resource_policy,
    "ListResourcePolicies": list_resource_policies,
    "GetRandomPassword": get_random_password,
}
