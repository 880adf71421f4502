"""KMS (TrentService) handlers: validated parameters -> one service call -> the modelled output."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from typing import Any

from secretsd.errors import ServiceError
from secretsd.kms.service import CryptoResult, KmsService
from secretsd.service.context import CallContext
from secretsd.store.kms_repository import KmsKey

Params = dict[str, Any]
Handler = Callable[[KmsService, CallContext, Params], dict[str, Any] | None]
DEFAULT_LIMIT = 100


def _b64(data: bytes | None) -> str:
    assert data is not None
    return base64.b64encode(data).decode()


def metadata(key: KmsKey) -> dict[str, Any]:
    out: dict[str, Any] = {
        "AWSAccountId": key.account_id,
        "KeyId": key.key_id,
        "Arn": key.arn,
        "CreationDate": key.created_ms / 1000,
        "Enabled": key.key_state == "Enabled",
        "Description": key.description,
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": key.key_state,
    }
    if key.deletion_ms is not None:
        out["DeletionDate"] = key.deletion_ms / 1000
    out.update(
        {
            "Origin": "AWS_KMS",
            "KeyManager": key.manager,
            "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
            "KeySpec": "SYMMETRIC_DEFAULT",
            "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
            "MultiRegion": False,
        }
    )
    return out


def _tags(p: Params) -> list[tuple[str, str]]:
    return [(t["TagKey"], t["TagValue"]) for t in p.get("Tags") or []]


def create_key(svc: KmsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    spec = p.get("KeySpec") or p.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"
    key = svc.create_key(
        ctx,
        description=p.get("Description", ""),
        key_usage=p.get("KeyUsage", "ENCRYPT_DECRYPT"),
        key_spec=spec,
        origin=p.get("Origin", "AWS_KMS"),
        multi_region=bool(p.get("MultiRegion", False)),
        policy=p.get("Policy"),
        tags=_tags(p),
    )
    return {"KeyMetadata": metadata(key)}


def describe_key(svc: KmsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    return {"KeyMetadata": metadata(svc.describe_key(ctx, p["KeyId"]))}


def list_keys(svc: KmsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    keys, marker = svc.list_keys(ctx, p.get("Limit", DEFAULT_LIMIT), p.get("Marker"))
    out: dict[str, Any] = {"Keys": [{"KeyId": k.key_id, "KeyArn": k.arn} for k in keys]}
    out["Truncated"] = marker is not None
    if marker is not None:
        out["NextMarker"] = marker
    return out


def enable_key(svc: KmsService, ctx: CallContext, p: Params) -> None:
    svc.enable_key(ctx, p["KeyId"])


def disable_key(svc: KmsService, ctx: CallContext, p: Params) -> None:
    svc.disable_key(ctx, p["KeyId"])


def schedule_key_deletion(svc: KmsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    key, deletion_ms, window = svc.schedule_key_deletion(
        ctx, p["KeyId"], p.get("PendingWindowInDays")
    )
    return {
        "KeyId": key.arn,
        "DeletionDate": deletion_ms / 1000,
        "KeyState": "PendingDeletion",
        "PendingWindowInDays": window,
    }


def cancel_key_deletion(svc: KmsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    return {"KeyId": svc.cancel_key_deletion(ctx, p["KeyId"]).arn}


def create_alias(svc: KmsService, ctx: CallContext, p: Params) -> None:
    svc.create_alias(ctx, p["AliasName"], p["TargetKeyId"])


def update_alias(svc: KmsService, ctx: CallContext, p: Params) -> None:
    svc.update_alias(ctx, p["AliasName"], p["TargetKeyId"])


def delete_alias(svc: KmsService, ctx: CallContext, p: Params) -> None:
    svc.delete_alias(ctx, p["AliasName"])


def list_aliases(svc: KmsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    found, marker = svc.list_aliases(
        ctx, p.get("KeyId"), p.get("Limit", DEFAULT_LIMIT), p.get("Marker")
    )
    out: dict[str, Any] = {
        "Aliases": [
            {
                "AliasName": a.alias_name,
                "AliasArn": svc.alias_arn(ctx, a.alias_name),
                "TargetKeyId": a.key_id,
                "CreationDate": a.created_ms / 1000,
                "LastUpdatedDate": (a.updated_ms or a.created_ms) / 1000,
            }
            for a in found
        ],
        "Truncated": marker is not None,
    }
    if marker is not None:
        out["NextMarker"] = marker
    return out


def encrypt(svc: KmsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    r = svc.encrypt(ctx, p["KeyId"], p["Plaintext"], p.get("EncryptionContext") or {})
    return _crypto_out(r, ciphertext=True)


def decrypt(svc: KmsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    r = svc.decrypt(ctx, p["CiphertextBlob"], p.get("EncryptionContext") or {}, p.get("KeyId"))
    return {
        "KeyId": r.key_arn,
        "Plaintext": _b64(r.plaintext),
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }


def re_encrypt(svc: KmsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    r = svc.re_encrypt(
        ctx,
        p["CiphertextBlob"],
        p.get("SourceEncryptionContext") or {},
        p.get("SourceKeyId"),
        p["DestinationKeyId"],
        p.get("DestinationEncryptionContext") or {},
    )
    return {
        "CiphertextBlob": _b64(r.ciphertext),
        "SourceKeyId": r.source_key_arn,
        "KeyId": r.key_arn,
        "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }


def _crypto_out(r: CryptoResult, *, ciphertext: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"CiphertextBlob": _b64(r.ciphertext), "KeyId": r.key_arn}
    if ciphertext:
        out["EncryptionAlgorithm"] = "SYMMETRIC_DEFAULT"
    return out


def _data_key(svc: KmsService, ctx: CallContext, p: Params) -> CryptoResult:
    return svc.generate_data_key(
        ctx,
        p["KeyId"],
        p.get("EncryptionContext") or {},
        p.get("KeySpec"),
        p.get("NumberOfBytes"),
    )


def generate_data_key(svc: KmsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    r = _data_key(svc, ctx, p)
    return {
        "CiphertextBlob": _b64(r.ciphertext),
        "Plaintext": _b64(r.plaintext),
        "KeyId": r.key_arn,
    }


def generate_data_key_without_plaintext(
    svc: KmsService, ctx: CallContext, p: Params
) -> dict[str, Any]:
    return _crypto_out(_data_key(svc, ctx, p), ciphertext=False)


def generate_random(svc: KmsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    svc.require_unscoped(ctx)
    size = p.get("NumberOfBytes")
    if size is None:
        raise ServiceError("ValidationException", "Please specify the number of bytes.")
    return {"Plaintext": _b64(os.urandom(size))}


def tag_resource(svc: KmsService, ctx: CallContext, p: Params) -> None:
    svc.tag_resource(ctx, p["KeyId"], _tags(p))


def untag_resource(svc: KmsService, ctx: CallContext, p: Params) -> None:
    svc.untag_resource(ctx, p["KeyId"], p["TagKeys"])


def list_resource_tags(svc: KmsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    key = svc.describe_key(ctx, p["KeyId"])
    return {"Tags": [{"TagKey": k, "TagValue": v} for k, v in key.tags], "Truncated": False}


def get_key_policy(svc: KmsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    name = p.get("PolicyName", "default")
    return {"Policy": svc.get_key_policy(ctx, p["KeyId"], name), "PolicyName": name}


def put_key_policy(svc: KmsService, ctx: CallContext, p: Params) -> None:
    svc.put_key_policy(ctx, p["KeyId"], p.get("PolicyName", "default"), p["Policy"])


def list_key_policies(svc: KmsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    svc.describe_key(ctx, p["KeyId"])
    return {"PolicyNames": ["default"], "Truncated": False}


def enable_key_rotation(svc: KmsService, ctx: CallContext, p: Params) -> None:
    svc.enable_key_rotation(ctx, p["KeyId"], p.get("RotationPeriodInDays"))


def disable_key_rotation(svc: KmsService, ctx: CallContext, p: Params) -> None:
    svc.disable_key_rotation(ctx, p["KeyId"])


def get_key_rotation_status(svc: KmsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    key = svc.describe_key(ctx, p["KeyId"])
    out: dict[str, Any] = {
        "KeyRotationEnabled": key.rotation_period_days is not None,
        "KeyId": key.arn,
    }
    if key.rotation_period_days is not None and key.next_rotation_ms is not None:
        out["RotationPeriodInDays"] = key.rotation_period_days
        out["NextRotationDate"] = key.next_rotation_ms / 1000
    return out


def rotate_key_on_demand(svc: KmsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    return {"KeyId": svc.rotate_key_on_demand(ctx, p["KeyId"]).key_id}


HANDLERS: dict[str, Handler] = {
    "CreateKey": create_key,
    "DescribeKey": describe_key,
    "ListKeys": list_keys,
    "EnableKey": enable_key,
    "DisableKey": disable_key,
    "ScheduleKeyDeletion": schedule_key_deletion,
    "CancelKeyDeletion": cancel_key_deletion,
    "CreateAlias": create_alias,
    "UpdateAlias": update_alias,
    "DeleteAlias": delete_alias,
    "ListAliases": list_aliases,
    "Encrypt": encrypt,
    "Decrypt": decrypt,
    "ReEncrypt": re_encrypt,
    "GenerateDataKey": generate_data_key,
    "GenerateDataKeyWithoutPlaintext": generate_data_key_without_plaintext,
    "GenerateRandom": generate_random,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListResourceTags": list_resource_tags,
    "GetKeyPolicy": get_key_policy,
    "PutKeyPolicy": put_key_policy,
    "ListKeyPolicies": list_key_policies,
    "EnableKeyRotation": enable_key_rotation,
    "DisableKeyRotation": disable_key_rotation,
    "GetKeyRotationStatus": get_key_rotation_status,
    "RotateKeyOnDemand": rotate_key_on_demand,
}
