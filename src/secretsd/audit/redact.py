"""requestParameters and responseElements as CloudTrail writes them, values never included.

Driven by the botocore model: only modelled members are copied (unknown keys a client sent are
dropped), names become lowerCamelCase as in CloudTrail, and a member whose shape the model marks
`sensitive` (secret strings, KMS plaintexts, passwords, access key secrets, private keys), or
whose name is on an explicit list (for shapes the model does not mark), is replaced by
CloudTrail's placeholder. Blobs (ciphertexts, binary secrets) are never copied either.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from botocore.model import ListShape, MapShape, ServiceModel, Shape, StructureShape

HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
# Members that hold secrets whatever their shape says (some models leave them unmarked).
SECRET_MEMBERS = frozenset(
    {
        "SecretString",
        "SecretBinary",
        "Plaintext",
        "SecretAccessKey",
        "SessionToken",
        "Password",
        "NewPassword",
        "OldPassword",
        "RandomPassword",
        "PrivateKey",
        "CertificateBody",
        "KeyMaterial",
        "ImportToken",
        "RotationToken",
        "WebIdentityToken",
        "SAMLAssertion",
        "CiphertextForRecipient",
    }
)
_MAX_DEPTH = 20


def lower_camel(name: str) -> str:
    """SecretId -> secretId, ARN -> arn, KMSKeyId -> kmsKeyId (CloudTrail's spelling)."""
    upper = 0
    while upper < len(name) and name[upper].isupper():
        upper += 1
    if upper == 0:
        return name
    if upper == 1 or upper == len(name):
        return name[:upper].lower() + name[upper:]
    return name[: upper - 1].lower() + name[upper - 1 :]


_SKIP = object()
# How a structure member is copied (Redactor._plan).
_HIDE, _SCALAR, _WALK = 0, 1, 2
_SCALARS = frozenset({"string", "integer", "long", "boolean", "float", "double"})
# Values a scalar member is copied as it is (anything else takes the general path).
_PLAIN = frozenset({str, int, float, bool})


def _sensitive(shape: Shape) -> bool:
    return bool(shape.metadata.get("sensitive"))


class Redactor:
    """One service's model: request and response members fit for the audit trail."""

    def __init__(self, model: ServiceModel) -> None:
        self._model = model
        self._operations = frozenset(model.operation_names)
        # Member names as CloudTrail spells them, worked out once per model.
        self._names = {
            member: lower_camel(member)
            for name in model.shape_names
            if isinstance(shape := model.shape_for(name), StructureShape)
            for member in shape.members
        }
        self._plans: dict[str, dict[str, tuple[str, int, Shape]]] = {}
        self._io: dict[str, tuple[StructureShape | None, StructureShape | None]] = {}

    def request(self, operation: str, params: Any) -> dict[str, Any] | None:
        if operation not in self._operations or not isinstance(params, Mapping):
            return None
        shape = self._shapes(operation)[0]
        return self._structure(shape, params, 0) if shape is not None else None

    def response(self, operation: str, result: Any) -> dict[str, Any] | None:
        if operation not in self._operations or not isinstance(result, Mapping):
            return None
        shape = self._shapes(operation)[1]
        return self._structure(shape, result, 0) if shape is not None else None

    def _shapes(self, operation: str) -> tuple[StructureShape | None, StructureShape | None]:
        found = self._io.get(operation)
        if found is None:
            model = self._model.operation_model(operation)
            found = self._io[operation] = (model.input_shape, model.output_shape)
        return found

    def _plan(self, shape: StructureShape) -> dict[str, tuple[str, int, Shape]]:
        """Per member: CloudTrail's name, and whether it is hidden, a plain scalar or needs
        the general walk; worked out once per shape (every call of an operation has the same)."""
        plan = self._plans.get(shape.name)
        if plan is None:
            plan = {}
            for name, member in shape.members.items():
                out = self._names.get(name) or lower_camel(name)
                if name in SECRET_MEMBERS or _sensitive(member):
                    plan[name] = (out, _HIDE, member)
                elif member.type_name in _SCALARS:
                    plan[name] = (out, _SCALAR, member)
                else:
                    plan[name] = (out, _WALK, member)
            self._plans[shape.name] = plan
        return plan

    def _structure(
        self, shape: StructureShape, value: Mapping[str, Any], depth: int
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        plan = self._plan(shape)
        for name, item in value.items():
            step = plan.get(name)
            if step is None or item is None:
                continue
            out_name, kind, member = step
            if kind == _HIDE:
                out[out_name] = HIDDEN
            elif kind == _SCALAR and type(item) in _PLAIN:
                out[out_name] = item
            else:
                copied = self._value(member, item, depth + 1)
                if copied is not _SKIP:
                    out[out_name] = copied
        return out

    def _value(self, shape: Shape, value: Any, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            return _SKIP
        if _sensitive(shape):
            return HIDDEN
        if isinstance(shape, StructureShape):
            return self._structure(shape, value, depth) if isinstance(value, Mapping) else _SKIP
        if isinstance(shape, ListShape):
            if not isinstance(value, list | tuple):
                return _SKIP
            items = [self._value(shape.member, v, depth + 1) for v in value]
            return [v for v in items if v is not _SKIP]
        if isinstance(shape, MapShape):
            if not isinstance(value, Mapping):
                return _SKIP
            if _sensitive(shape.value):
                return {str(k): HIDDEN for k in value}
            copied = {str(k): self._value(shape.value, v, depth + 1) for k, v in value.items()}
            return {k: v for k, v in copied.items() if v is not _SKIP}
        if shape.type_name == "blob":
            return _SKIP
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, str | int | float | bool):
            return value
        return _SKIP
