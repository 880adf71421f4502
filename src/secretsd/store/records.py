"""Frozen records the store returns; the service layer never sees database rows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SecretRecord:
    arn: str
    account_id: str
    region: str
    name: str
    description: str | None
    kms_key_id: str | None
    secret_type: str | None
    created_ms: int
    last_changed_ms: int
    last_accessed_ms: int | None
    deleted_ms: int | None
    deletion_ms: int | None
    tags: tuple[tuple[str, str], ...] | None
    resource_policy: str | None
    owning_service: str | None
    primary_region: str | None
    version_seq: int


@dataclass(frozen=True, slots=True)
class VersionRecord:
    secret_arn: str
    version_id: str
    seq: int
    created_ms: int
    last_accessed_ms: int | None
    value_kind: str  # "string" | "binary" | "none" (a label placeholder without a value)
    envelope: bytes | None
    kms_key_arn: str | None


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: str
    arn: str
    account_id: str
    region: str
    manager: str  # "AWS" | "CUSTOMER"
    description: str
    key_state: str
    material_sealed: bytes
    created_ms: int
    # The current material version (rotation adds versions; version 1 is material_sealed).
    material_version: int = 1
    # The key policy (None: the default policy applies, for AWS managed keys).
    policy: str | None = None


@dataclass(frozen=True, slots=True)
class AccessKeyRecord:
    access_key_id: str
    account_id: str
    principal_arn: str
    secret_sealed: bytes
    status: str
