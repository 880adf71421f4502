"""What the service hands back to the API layer: records plus the derived facts a response needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from secretsd.store.records import KeyRecord, SecretRecord, VersionRecord

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SecretView:
    secret: SecretRecord
    stages: dict[str, str]  # stage -> version id


@dataclass(frozen=True, slots=True)
class SecretValue:
    secret: SecretRecord
    version: VersionRecord
    stages: list[str]
    string: str | None
    binary: bytes | None
    # The KMS key the version is sealed with (its state and policy decide later reads).
    key: KeyRecord | None = None


@dataclass(frozen=True, slots=True)
class WriteResult:
    arn: str
    name: str
    version_id: str | None
    stages: list[str] | None = None


@dataclass(frozen=True, slots=True)
class VersionView:
    version: VersionRecord
    stages: list[str]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None


@dataclass(frozen=True, slots=True)
class BatchError:
    secret_id: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class DeleteResult:
    arn: str
    name: str
    deletion_ms: int
