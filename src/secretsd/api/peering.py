"""The internal operations other secretsd deployments call to replicate into regions this one
serves (`X-Amz-Target: SecretsdReplication.<Operation>`, SigV4 signed for `secretsmanager`).

They are not Secrets Manager operations: no AWS client sends them, and each is authorized by
this deployment's policy engine as `secretsd:ReplicateFromPeer` on the replica's ARN (an action
`secretsmanager:*` does not grant), for a principal of the replica's own account, and only for
primaries in regions this deployment's peer list says another deployment serves.
"""

from __future__ import annotations

from typing import Any

from secretsd.errors import ServiceError
from secretsd.protocol.asgi import Route
from secretsd.protocol.validate import Validator
from secretsd.service.context import CallContext
from secretsd.service.peers import TARGET_PREFIX
from secretsd.service.replication import ReplicationService

# Each operation's required members and their JSON types.
_REQUIRED: dict[str, dict[str, type]] = {
    "ApplyReplica": {
        "PrimaryARN": str,
        "Name": str,
        "CreatedMs": int,
        "LastChangedMs": int,
        "VersionSeq": int,
        "Versions": list,
        "Stages": dict,
    },
    "DeleteReplica": {"PrimaryARN": str},
    "ReplicaPromoted": {"ReplicaARN": str},
}
_ARN_MEMBERS = ("PrimaryARN", "ReplicaARN")


class PeerValidator(Validator):
    """Shape checks of the internal operations (not in any botocore model)."""

    def __init__(self) -> None:
        pass

    def parse_input(self, operation_name: str, params: object) -> dict[str, Any]:
        if not isinstance(params, dict):
            raise ServiceError("SerializationException", "The request body must be an object.")
        for name, kind in _REQUIRED[operation_name].items():
            if not isinstance(params.get(name), kind):
                raise ServiceError("ValidationException", f"{name} is missing or malformed.")
        for name in _ARN_MEMBERS:
            value = params.get(name)
            if isinstance(value, str) and (
                not value.startswith("arn:") or len(value.split(":")) < 7
            ):
                raise ServiceError("ValidationException", f"{name} is not a secret ARN.")
        return params


def _apply(svc: ReplicationService, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    try:
        arn, missing = svc.apply_from_peer(ctx, p)
        return {"ARN": arn, "Missing": missing} if missing else {"ARN": arn}
    except (KeyError, TypeError, ValueError) as exc:
        raise ServiceError("ValidationException", "Malformed replica state.") from exc


def _delete(svc: ReplicationService, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    svc.delete_from_peer(ctx, p["PrimaryARN"])
    return {}


def _promoted(svc: ReplicationService, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    svc.promoted_at_peer(ctx, p["ReplicaARN"])
    return {}


def peering_route(replication: ReplicationService) -> Route:
    return Route(
        TARGET_PREFIX,
        "secretsmanager",
        replication,
        {"ApplyReplica": _apply, "DeleteReplica": _delete, "ReplicaPromoted": _promoted},
        PeerValidator(),
    )
