"""AWS's REST-JSON protocol (Lambda): operations chosen by HTTP method and path, as the
botocore model's `http.requestUri` says; input from the path, query string, headers and a JSON
(or raw blob) body; output members to headers, the status code or the body.

Errors leave as REST-JSON errors: the code in `x-amzn-ErrorType`, `{"Type", "Message"}` in the
body (botocore reads both).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson
from botocore.model import OperationModel, ServiceModel, Shape, StructureShape

from secretsd.errors import ServiceError
from secretsd.protocol.validate import Validator

JSON_TYPE = b"application/json"
# AWS answers these with no content, whatever the model's responseCode says.
_NO_CONTENT = frozenset({"DeleteFunction", "RemovePermission"})


@dataclass(frozen=True, slots=True)
class RestOperation:
    name: str
    method: str
    pattern: re.Pattern[str]
    status: int
    model: OperationModel

    @property
    def input(self) -> StructureShape | None:
        return self.model.input_shape

    @property
    def output(self) -> StructureShape | None:
        return self.model.output_shape


def _path_pattern(request_uri: str) -> re.Pattern[str]:
    path = request_uri.split("?", 1)[0]
    regex = ""
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{"):
            name = part[1:-1]
            greedy = name.endswith("+")
            name = name.rstrip("+")
            regex += f"(?P<{name}>.+)" if greedy else f"(?P<{name}>[^/]+)"
        else:
            regex += re.escape(part)
    return re.compile(f"^{regex}/?$")


class RestProtocol:
    def __init__(self, model: ServiceModel, operations: Iterable[str]) -> None:
        self._operations: list[RestOperation] = []
        for name in operations:
            op = model.operation_model(name)
            http = op.http
            status = 204 if name in _NO_CONTENT else int(http.get("responseCode", 200))
            self._operations.append(
                RestOperation(name, http["method"], _path_pattern(http["requestUri"]), status, op)
            )
        self.validator = Validator(model)

    def match(self, method: str, path: str) -> tuple[RestOperation, dict[str, str]] | None:
        """The operation for this request (None when no path matches at all)."""
        path_matched = False
        for op in self._operations:
            found = op.pattern.match(path)
            if found is None:
                continue
            path_matched = True
            if op.method == method:
                return op, {k: unquote(v) for k, v in found.groupdict().items()}
        if path_matched:
            raise ServiceError(
                "UnknownOperationException", f"{method} is not supported on {path}.", 405
            )
        return None

    def parse(
        self,
        op: RestOperation,
        uri: Mapping[str, str],
        query_string: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> dict[str, Any]:
        shape = op.input
        if shape is None:
            return {}
        params: dict[str, Any] = {}
        raw_payload: bytes | None = None
        query = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        header_map = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
        payload_member = shape.serialization.get("payload")
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "uri":
                if wire in uri:
                    params[name] = _scalar(member, uri[wire])
            elif location == "querystring":
                if member.type_name == "list":
                    values = [v for k, v in query if k == wire]
                    if values:
                        params[name] = values
                else:
                    for k, v in query:
                        if k == wire:
                            params[name] = _scalar(member, v)
                            break
            elif location == "header":
                value = header_map.get(wire.lower())
                if value is not None:
                    params[name] = _scalar(member, value)
        if payload_member is not None:
            member = shape.members[payload_member]
            if member.type_name == "blob":
                raw_payload = body
            elif body:
                params[payload_member] = _json(body)
        elif body:
            document = _json(body)
            if not isinstance(document, dict):
                raise ServiceError("SerializationException", "Malformed request body.")
            for name, member in shape.members.items():
                if member.serialization.get("location") is None and name in document:
                    params[name] = document[name]
        parsed = self.validator.parse_input(op.name, params)
        if payload_member is not None and raw_payload is not None:
            parsed[payload_member] = raw_payload
        return parsed

    def response(
        self, op: RestOperation, result: Mapping[str, Any] | None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, bytes]:
        """(status, extra headers, body, content type)."""
        shape = op.output
        status = op.status
        headers: list[tuple[bytes, bytes]] = []
        if shape is None or result is None:
            return status, headers, b"" if status == 204 else b"{}", JSON_TYPE
        document: dict[str, Any] = {}
        body: bytes | None = None
        payload_member = shape.serialization.get("payload")
        for name, member in shape.members.items():
            if name not in result or result[name] is None:
                continue
            value = result[name]
            location = member.serialization.get("location")
            if location == "statusCode":
                status = int(value)
            elif location == "header":
                wire = member.serialization.get("name", name)
                headers.append((wire.lower().encode(), str(value).encode()))
            elif name == payload_member:
                body = value if isinstance(value, bytes) else orjson.dumps(value)
            else:
                document[name] = value
        if body is None:
            body = b"" if status == 204 else orjson.dumps(document)
        return status, headers, body, JSON_TYPE


def error_response(exc: ServiceError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    kind = "Service" if exc.status >= 500 else "User"
    body = orjson.dumps({"Type": kind, "Message": exc.message})
    return exc.status, [(b"x-amzn-errortype", exc.code.encode())], body


def _scalar(shape: Shape, value: str) -> Any:
    kind = shape.type_name
    if kind in ("integer", "long"):
        try:
            return int(value)
        except ValueError:
            return value  # the validator words the refusal
    if kind == "boolean":
        return value.lower() == "true"
    return value


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ServiceError(
            "SerializationException", "Malformed request body: not valid JSON."
        ) from exc


@dataclass(frozen=True, slots=True)
class RestRoute:
    """A REST-JSON service on the same endpoint, chosen by its path prefix."""

    path_prefix: str
    signing_name: str
    protocol: RestProtocol
    service: Any
    handlers: Mapping[str, Callable[[Any, Any, dict[str, Any]], Any]]
    max_body_bytes: int
