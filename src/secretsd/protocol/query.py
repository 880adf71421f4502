"""AWS's query protocol (IAM, STS): form-encoded input, XML output, driven by botocore's models.

Input. SDKs send ``Action=CreateUser&Version=2010-05-08&UserName=x&Tags.member.1.Key=k...`` as an
``application/x-www-form-urlencoded`` POST body (or, rarely, a GET query string). The flattened
names follow botocore's ``QuerySerializer``: structure members as ``Prefix.Member``, lists as
``Prefix.member.N`` (``Prefix.N`` when the list is flattened), maps as ``Prefix.entry.N.key`` /
``.value``, and an empty list as a bare ``Prefix=``. `parse_form` turns them back into the nested,
JSON-shaped value the model describes; the JSON protocol's `Validator` then checks constraints, so
both protocols report violations in the same words. IAM and STS call that error
``ValidationError`` (not ``ValidationException``), e.g. the recorded STS message
``1 validation error detected: Value 'pic-ro- 6ACCOUNTNUMBER6' at 'roleSessionName' failed to
satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`` (Error Code:
ValidationError, https://github.com/tmobile/pacbot issue quoted in the search corpus).

Output. ``<OpResponse xmlns=NS><OpResult>...</OpResult><ResponseMetadata><RequestId>...
</RequestId></ResponseMetadata></OpResponse>``, lists as ``<member>`` elements, maps as
``<entry><key/><value/></entry>``, timestamps ISO 8601 in UTC, booleans ``true``/``false``.
IAM sends policy documents URL-encoded (RFC 3986); botocore's ``json_decode_policies`` handler
unquotes them, so every ``policyDocumentType`` value is quoted here.

Errors. ``<ErrorResponse xmlns=NS><Error><Type>Sender</Type><Code>..</Code><Message>..
</Message></Error><RequestId>..</RequestId></ErrorResponse>``; the status comes from the model's
error shape when the code is one of the service's modelled errors.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl, quote

from botocore.model import OperationModel, ServiceModel, Shape

from secretsd.errors import ServiceError
from secretsd.protocol.validate import Validator
from secretsd.service.context import CallContext

FORM_TYPE: Final = b"application/x-www-form-urlencoded"
XML_TYPE: Final = b"text/xml"
# Documents IAM returns URL-encoded (botocore.handlers.json_decode_policies unquotes them).
_QUOTED_SHAPES: Final = frozenset({"policyDocumentType"})
# Characters XML 1.0 cannot carry; a message quoting client input is shown with them escaped.
_NOT_XML: Final = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MAX_LIST_INDEX: Final = 10_000

# Codes of the shared layers (sigv4, the JSON validator, the authorizer) -> the query services'
# own codes and statuses. IAM/STS words: InvalidClientTokenId 403 "The security token included
# in the request is invalid." (aws/aws-sdk-js#460, cloudyr/aws.iam#15), SignatureDoesNotMatch
# 403, AccessDenied 403 (aws/aws-sdk-php#1876), ExpiredToken 400 (prowler-cloud/prowler#789),
# ValidationError 400 (kreuzwerker/awsu#27). IncompleteSignature and MissingAuthenticationToken
# follow AWS's common query errors list (docs "Common Errors"); their statuses are unverified.
_QUERY_CODES: Final[Mapping[str, tuple[str, int]]] = {
    "UnrecognizedClientException": ("InvalidClientTokenId", 403),
    "InvalidSignatureException": ("SignatureDoesNotMatch", 403),
    "IncompleteSignatureException": ("IncompleteSignature", 400),
    "MissingAuthenticationTokenException": ("MissingAuthenticationToken", 403),
    "ExpiredTokenException": ("ExpiredToken", 400),
    "AccessDeniedException": ("AccessDenied", 403),
    "ValidationException": ("ValidationError", 400),
    # A value of the wrong type (Value 'abc' for an integer): unverified for query services.
    "SerializationException": ("ValidationError", 400),
    "UnknownOperationException": ("InvalidAction", 400),
    "RequestEntityTooLargeException": ("RequestEntityTooLarge", 413),
    "InternalServiceError": ("InternalFailure", 500),
}


def read_form(body: bytes, query_string: bytes) -> dict[str, str]:
    """The request's parameters: the form body, or the query string of a body-less request.

    A repeated name keeps its first value. Undecodable percent-escapes decode as U+FFFD, which
    then fails validation like any other bad character.
    """
    raw = body if body else query_string
    text = raw.decode("latin-1")
    form: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=True, encoding="utf-8"):
        form.setdefault(key, value)
    return form


class _Node:
    """The form keys below one prefix, as a tree split on '.'."""

    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.value: str | None = None
        self.children: dict[str, _Node] = {}


def _tree(form: Mapping[str, str]) -> _Node:
    root = _Node()
    for key, value in form.items():
        node = root
        for part in key.split("."):
            node = node.children.setdefault(part, _Node())
        if node.value is None:
            node.value = value
    return root


def _member_name(shape: Shape, default: str) -> str:
    name: str = shape.serialization.get("name", default)
    return name


def _indexed(node: _Node) -> list[_Node]:
    """Children named 1, 2, ... in numeric order (gaps allowed, as AWS's parser seems to)."""
    found = []
    for key, child in node.children.items():
        if key.isdigit() and not key.startswith("0") and int(key) <= _MAX_LIST_INDEX:
            found.append((int(key), child))
    return [child for _, child in sorted(found, key=lambda item: item[0])]


def _scalar(shape: Shape, text: str) -> Any:
    kind = shape.type_name
    if kind in ("integer", "long", "short", "byte"):
        try:
            return int(text)
        except ValueError:
            return text  # the validator reports the wrong type
    if kind in ("float", "double"):
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "boolean":
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        return text
    if kind == "timestamp":
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return text
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return text  # strings, and blobs (base64, decoded by the validator)


def _value(shape: Shape, node: _Node) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            child = node.children.get(_member_name(member, name))
            if child is not None:
                converted = _value(member, child)
                if converted is not None:
                    out[name] = converted
        return out
    if kind == "list":
        if not node.children:
            # "Prefix=" is how botocore sends an empty list.
            return [] if node.value is not None else None
        member = shape.member
        if shape.serialization.get("flattened"):
            holder: _Node | None = node
        else:
            holder = node.children.get(_member_name(member, "member"))
        if holder is None:
            return []
        return [_value(member, item) for item in _indexed(holder)]
    if kind == "map":
        holder = node if shape.serialization.get("flattened") else node.children.get("entry")
        mapping: dict[str, Any] = {}
        if holder is None:
            return mapping
        key_name = _member_name(shape.key, "key")
        value_name = _member_name(shape.value, "value")
        for entry in _indexed(holder):
            key_node = entry.children.get(key_name)
            value_node = entry.children.get(value_name)
            if key_node is None or key_node.value is None or value_node is None:
                continue
            mapping.setdefault(key_node.value, _value(shape.value, value_node))
        return mapping
    if node.value is None:
        return None
    return _scalar(shape, node.value)


def parse_form(operation: OperationModel, form: Mapping[str, str]) -> dict[str, Any]:
    """The operation's input as the nested, JSON-shaped value the JSON validator takes."""
    shape = operation.input_shape
    if shape is None:
        return {}
    value = _value(shape, _tree(form))
    assert isinstance(value, dict)
    return value


def _iso(moment: datetime | int | float) -> str:
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def xml_text(text: str) -> str:
    """`text` with what XML 1.0 cannot carry shown as Python escapes (never a broken document)."""
    if _NOT_XML.search(text) is None:
        return text
    return _NOT_XML.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _fill(parent: ET.Element, shape: Shape, value: Any) -> None:
    kind = shape.type_name
    if kind == "structure":
        for name, member in shape.members.items():
            item = value.get(name)
            if item is None:
                continue
            child = ET.SubElement(parent, _member_name(member, name))
            _fill(child, member, item)
        return
    if kind == "list":
        member = shape.member
        tag = _member_name(member, "member")
        for item in value:
            _fill(ET.SubElement(parent, tag), member, item)
        return
    if kind == "map":
        key_name = _member_name(shape.key, "key")
        value_name = _member_name(shape.value, "value")
        for key, item in value.items():
            entry = ET.SubElement(parent, "entry")
            ET.SubElement(entry, key_name).text = xml_text(str(key))
            _fill(ET.SubElement(entry, value_name), shape.value, item)
        return
    if kind == "boolean":
        parent.text = "true" if value else "false"
    elif kind == "timestamp":
        parent.text = _iso(value)
    elif shape.name in _QUOTED_SHAPES:
        parent.text = quote(str(value), safe="")
    else:
        parent.text = xml_text(str(value))


def _document(root: ET.Element) -> bytes:
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    # A literal CR would reach the client as LF (XML end-of-line handling); only text can hold
    # one, and ElementTree leaves it unescaped.
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body.replace(b"\r", b"&#13;")


@dataclass(frozen=True, slots=True)
class QueryService:
    """One query-protocol service (IAM or STS) on the endpoint."""

    model: ServiceModel
    validator: Validator
    namespace: str
    error_status: Mapping[str, int]

    @classmethod
    def from_model(cls, model: ServiceModel) -> QueryService:
        statuses: dict[str, int] = {}
        for shape_name in model.shape_names:
            shape = model.shape_for(shape_name)
            error = shape.metadata.get("error")
            if shape.metadata.get("exception") and error:
                statuses[error.get("code", shape_name)] = int(error.get("httpStatusCode", 400))
        return cls(model, Validator(model), model.metadata["xmlNamespace"], statuses)

    def has_operation(self, name: str) -> bool:
        return name in self.model.operation_names

    def parse(self, operation: str, form: Mapping[str, str]) -> dict[str, Any]:
        """Validated input of `operation`; ServiceError("ValidationError", ...) as IAM words it."""
        return self.validator.parse_input(
            operation, parse_form(self.model.operation_model(operation), form)
        )

    def response(self, operation: str, result: Mapping[str, Any] | None, request_id: str) -> bytes:
        op = self.model.operation_model(operation)
        root = ET.Element(f"{operation}Response", xmlns=self.namespace)
        shape = op.output_shape
        if shape is not None:
            wrapper = ET.SubElement(
                root, shape.serialization.get("resultWrapper", f"{operation}Result")
            )
            _fill(wrapper, shape, result or {})
        metadata = ET.SubElement(root, "ResponseMetadata")
        ET.SubElement(metadata, "RequestId").text = request_id
        return _document(root)

    def error(self, exc: ServiceError, request_id: str) -> tuple[int, bytes]:
        code, status = _QUERY_CODES.get(exc.code, (exc.code, exc.status))
        status = self.error_status.get(code, status)
        root = ET.Element("ErrorResponse", xmlns=self.namespace)
        error = ET.SubElement(root, "Error")
        ET.SubElement(error, "Type").text = "Receiver" if status >= 500 else "Sender"
        ET.SubElement(error, "Code").text = code
        ET.SubElement(error, "Message").text = xml_text(exc.message)
        ET.SubElement(root, "RequestId").text = request_id
        return status, _document(root)


def is_form_request(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == FORM_TYPE
    return False


QueryHandler = Callable[[Any, CallContext, dict[str, Any]], Mapping[str, Any] | None]


@dataclass(frozen=True, slots=True)
class QueryRoute:
    """A query-protocol service on the endpoint, chosen by the SigV4 credential scope's service."""

    signing_name: str
    protocol: QueryService
    service: Any
    handlers: Mapping[str, QueryHandler]


def wire_code(exc: ServiceError) -> str:
    """The error code a query-protocol client sees for `exc`."""
    return _QUERY_CODES.get(exc.code, (exc.code, exc.status))[0]


def invalid_action() -> ServiceError:
    # AWS's common-errors text for InvalidAction (IAM API Reference, "Common Errors").
    return ServiceError(
        "InvalidAction",
        "The action or operation requested is invalid. Verify that the action is typed correctly.",
    )
