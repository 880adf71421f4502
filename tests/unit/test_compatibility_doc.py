"""The compatibility table in docs/ is generated from the model; it must match the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import botocore.session

from secretsd.api.replication import REPLICATION_OPERATIONS
from secretsd.api.rotation import ROTATION_OPERATIONS
from secretsd.api.secretsmanager import HANDLERS

ROOT = Path(__file__).resolve().parents[2]

# A botocore upgrade that changes the API must be a deliberate change here.
OPERATIONS = [
    "AssociateCrossAccountReplica",
    "BatchGetSecretValue",
    "CancelRotateSecret",
    "CreateSecret",
    "DeleteResourcePolicy",
    "DeleteSecret",
    "DescribeSecret",
    "DisassociateCrossAccountReplica",
    "GetRandomPassword",
    "GetResourcePolicy",
    "GetSecretValue",
    "ListResourcePolicies",
    "ListSecretVersionIds",
    "ListSecrets",
    "PutResourcePolicy",
    "PutSecretValue",
    "RemoveRegionsFromReplication",
    "ReplicateSecretToRegions",
    "RestoreSecret",
    "RotateSecret",
    "StopReplicationToReplica",
    "TagResource",
    "UntagResource",
    "UpdateSecret",
    "UpdateSecretVersionStage",
    "ValidateResourcePolicy",
]


def test_model_operation_snapshot() -> None:
    model = botocore.session.get_session().get_service_model("secretsmanager")
    assert list(model.operation_names) == OPERATIONS


def test_every_operation_is_routed() -> None:
    # app.py layers the replication and rotation handlers over the Secrets Manager ones.
    assert sorted({*HANDLERS, *REPLICATION_OPERATIONS, *ROTATION_OPERATIONS}) == sorted(OPERATIONS)


def test_compatibility_doc_is_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "compatibility", ROOT / "scripts" / "compatibility.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.render()
    actual = (ROOT / "docs" / "compatibility.md").read_text()
    assert actual == expected, "docs/compatibility.md is stale: run scripts/compatibility.py"
