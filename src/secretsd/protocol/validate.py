"""Model-driven input parsing and validation for the AWS JSON 1.1 protocol, in AWS's own words.

AWS's JSON services (the Java "coral" framework) handle a request body in two phases, and so does
this module:

1. Deserialisation, in document order. A value of the wrong JSON type stops the request at once
   with ``SerializationException`` (no validation message is produced). Unknown members are
   ignored, and ``null`` is treated as absent (for members and for list entries).
2. Validation against the model (required, length, range, pattern, enum). Every violation is
   collected (at most 10) into one ``ValidationException``:
   ``"2 validation errors detected: Value 'x' at 'name' failed to satisfy constraint: ...; ..."``.

Where the wording comes from. Most sources are AWS responses quoted in bug reports or recorded by
emulator authors against AWS; none is a Secrets Manager recording unless it says so:

- Type errors (``STRING_VALUE can not be converted to an Integer``, ``NUMBER_VALUE can not be
  converted to a String``, ``TRUE_VALUE ...``, ``Start of list found where not expected``,
  ``Start of structure or map found where not expected.``, ``Expected list or null``,
  ``Expected null``), a top-level array, other top-level non-objects (no message at all), decimals
  truncated for integers, integers beyond 32 bits reaching range validation, unknown members
  ignored and ``null`` dropped: raw-HTTP measurements of Athena, another coral JSON 1.1 service,
  recorded in the athena-local emulator (2026).
- Boolean strings (``true/yes/y/t/1``, ``false/no/n/f/0``, otherwise ``STRING_VALUE can not be
  converted to an Boolean``, AWS's grammar) and ``NUMBER_VALUE can not be converted to a Boolean``:
  floci's SES v2 probes of AWS; dynalite (DynamoDB, 2013) lists the same accepted words.
  ``a Long``: an Amazon Ads API response quoted in a segmentio/action-destinations test.
- ``Expected map or null``: dynalite.
- Invalid base64 gives ``SerializationException`` without a message: local-kms, which mirrors KMS
  (a coral JSON 1.1 service). Type names for blobs, doubles, floats and timestamps
  (``... can not be converted to a Blob``) follow the same pattern but were not observed.
- ``Value null at 'secretId' ... Member must not be null``, lowerCamel paths, ``'; '`` as the
  separator, ``tags.1.member.key`` for list entries, ``Value at 'x'`` for sensitive members,
  ``Value '-1'`` (numbers are quoted), the cap of 10 errors (``10 validation errors detected``
  while more exist): real messages from Secrets Manager (``Value at 'secretString'``, ``Value
  null at 'secretId'``), Bedrock, Cognito, and Kinesis/DynamoDB via kinesalite/dynalite.
- A list of scalars is checked as a whole: ``Value '[a, b]' at 'tagKeys' failed to satisfy
  constraint: Member must satisfy constraint: [Member must have length less than or equal to
  128, Member must have length greater than or equal to 1]`` listing every constraint of the
  member (real ACM and Lambda messages); maps say ``Map keys must satisfy constraint: [...]`` and
  ``Map value must satisfy constraint: [...]`` (real Cognito message; moto and DynamoDB
  emulators), keys before values (floci's Firehose probes). Lists render as Java's ``[a, b]``, maps as ``{k=v}``, blobs as
  ``java.nio.HeapByteBuffer[pos=0 lim=N cap=N]`` (real Rekognition and KMS messages).
- Order. Coral walks a structure's members, and prints enum sets, in ``java.util.HashMap`` order
  of their names (member names in lowerCamel), not model order. This reproduces the observed order
  of every multi-error message found (ACM RequestCertificate, Bedrock Converse, Cognito SignUp and
  ConfirmForgotPassword, EventBridge CreateArchive) and every enum set (Lambda's 15 runtimes,
  Lambda LogType, Cognito MfaConfiguration, SES IdentityType, Service Catalog SortBy), where
  model order fails most of them. Within one value the pattern is reported before the length
  (Cognito). Route 53 Resolver prints one enum in model order; no Secrets Manager recording exists,
  so the ListSecrets filter-key set comes out as ``[owning-service, all, tag-value,
  primary-region, tag-key, name, description]``; moto's ``[all, name, tag-key, description,
  tag-value]`` matches neither order and is a placeholder.

Lengths count UTF-16 code units, as Java's ``String.length()`` does (the same as characters
outside the astral planes); blob lengths are bytes after base64 decoding. Secrets Manager also
documents a 65,536-*byte* quota on secret values; the model says 65,536 *characters*, so a
multi-byte value can pass here and must be sized by the service layer. Patterns are Java regular
expressions that must match the whole value (``Matcher.matches()``; DynamoDB rejects ``abc;``
for ``[a-zA-Z0-9_.-]+``).
"""

from __future__ import annotations

import base64
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from botocore.model import ServiceModel, Shape, StructureShape

from secretsd.errors import ServiceError

MAX_REPORTED_ERRORS: Final = 10

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_TRUE_WORDS: Final = frozenset({"true", "yes", "y", "t", "1"})
_FALSE_WORDS: Final = frozenset({"false", "no", "n", "f", "0"})
_START_OF_LIST: Final = "Start of list found where not expected"
_START_OF_STRUCTURE: Final = "Start of structure or map found where not expected."
# Java's "." stops at any of its line terminators; Python's only at "\n".
_JAVA_DOT: Final = "[^\n\r\u0085\u2028\u2029]"
# Java escapes with no Python equivalent (or a different meaning): refuse rather than guess.
_UNSUPPORTED_ESCAPES: Final = frozenset("QEGRXhHvVZc0k")
# Java escapes spelt differently in Python.
_JAVA_ESCAPES: Final = {"z": "\\Z", "e": "\\x1b"}
_SENSITIVE_RENDERING: Final = "*** Sensitive Data Redacted ***"


class Validator:
    """Parses and validates the input of every operation of one service model.

    All validation plans (member order, compiled patterns, enum sets) are built here, once, so that
    a request costs only the checks its members need.
    """

    def __init__(self, service_model: ServiceModel) -> None:
        compiler = _Compiler()
        self._plans: dict[str, _Plan] = {}
        for name in service_model.operation_names:
            shape = service_model.operation_model(name).input_shape
            self._plans[name] = _Plan(None if shape is None else compiler.structure(shape))

    def parse_input(self, operation_name: str, params: object) -> dict[str, Any]:
        """Return the operation's input with blobs decoded and timestamps as datetimes.

        ``params`` is the decoded JSON body. Raises ``ServiceError`` (``SerializationException``
        or ``ValidationException``) when AWS would; ``KeyError`` for an operation not in the model.
        """
        return self._plans[operation_name].parse(params)


def parse_input(shape: StructureShape, params: object) -> dict[str, Any]:
    """One-off form of ``Validator.parse_input`` for a single input shape (builds its plan anew)."""
    return _Plan(_Compiler().structure(shape)).parse(params)


class _Plan:
    __slots__ = ("_root",)

    def __init__(self, root: _StructureNode | None) -> None:
        self._root = root

    def parse(self, params: object) -> dict[str, Any]:
        if not isinstance(params, dict):
            # A top-level scalar gets no message at all (measured on Athena).
            raise _serialization(_START_OF_LIST if isinstance(params, list) else "")
        root = self._root
        if root is None:
            return {}
        data = root.convert_members(params)
        if root.checked:
            errors: list[str] = []
            root.check(data, "", errors, False)
            if errors:
                count = len(errors)
                plural = "s" if count > 1 else ""
                raise ServiceError(
                    "ValidationException",
                    f"{count} validation error{plural} detected: " + "; ".join(errors),
                )
        return data


def _serialization(message: str) -> ServiceError:
    return ServiceError("SerializationException", message)


def _wrong_type(value: object, target: str) -> ServiceError:
    """The deserialiser's error for ``value`` where ``target`` (e.g. ``an Integer``) was expected."""
    if isinstance(value, list):
        return _serialization(_START_OF_LIST)
    if isinstance(value, dict):
        return _serialization(_START_OF_STRUCTURE)
    if value is True:
        token = "TRUE_VALUE"
    elif value is False:
        token = "FALSE_VALUE"
    elif isinstance(value, str):
        token = "STRING_VALUE"
    else:
        token = "NUMBER_VALUE"
    return _serialization(f"{token} can not be converted to {target}")


def _violation(node: _Node, value: Any, path: str, phrase: str, hidden: bool) -> str:
    shown = "" if hidden or node.sensitive else f" '{node.render(value)}'"
    return f"Value{shown} at '{path}' failed to satisfy constraint: {phrase}"


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _java_string_hash(text: str) -> int:
    units = text.encode("utf-16-be", "surrogatepass")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + (units[i] << 8 | units[i + 1])) & 0xFFFFFFFF
    return h


def _java_hash_order(names: Sequence[str]) -> list[int]:
    """Indices of ``names`` in the iteration order of a Java 8 ``HashMap`` filled in that order."""
    capacity = 16
    while len(names) > capacity * 0.75:
        capacity *= 2

    def bucket(index: int) -> tuple[int, int]:
        h = _java_string_hash(names[index])
        return ((h ^ (h >> 16)) & (capacity - 1), index)

    return sorted(range(len(names)), key=bucket)


def _utf16_length(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _bound(value: float | int) -> str:
    return repr(value) if isinstance(value, float) else str(value)


# --- nodes: one per shape, each knowing how to convert, check and print its values ---------------


class _Node:
    __slots__ = ("checked", "scalar", "sensitive")

    def __init__(self, sensitive: bool) -> None:
        self.sensitive = sensitive
        self.scalar = True
        self.checked = False  # whether check() can ever report anything

    def convert(self, value: object) -> Any:
        raise NotImplementedError

    def violations(self, value: Any) -> list[str]:
        """For scalars: the phrases of the constraints ``value`` fails, in reporting order."""
        return []

    def describe(self) -> list[str]:
        """For scalars: every constraint, in the order AWS lists them inside ``[...]``."""
        return []

    def check(self, value: Any, path: str, errors: list[str], hidden: bool) -> None:
        for phrase in self.violations(value):
            if len(errors) >= MAX_REPORTED_ERRORS:
                return
            errors.append(_violation(self, value, path, phrase, hidden))

    def render(self, value: Any) -> str:
        return str(value)


class _LengthBounds:
    __slots__ = ("max", "min", "phrases")

    def __init__(self, shape: Shape) -> None:
        self.min: int | None = shape.metadata.get("min")
        self.max: int | None = shape.metadata.get("max")
        self.phrases: list[str] = []
        if self.max is not None:
            self.phrases.append(f"Member must have length less than or equal to {self.max}")
        if self.min is not None:
            self.phrases.append(f"Member must have length greater than or equal to {self.min}")

    def failures(self, length: int) -> list[str]:
        if self.max is not None and length > self.max:
            return [f"Member must have length less than or equal to {self.max}"]
        if self.min is not None and length < self.min:
            return [f"Member must have length greater than or equal to {self.min}"]
        return []


# secretsd's own rule, not AWS's: names, labels, descriptions and ids are stored as text, and
# PostgreSQL text cannot hold U+0000. Refusing it on every backend keeps them identical; secret
# values (sensitive members) are stored encrypted as bytes and may contain it.
NUL_PHRASE = "Member must not contain the null character (U+0000)"


class _StringNode(_Node):
    __slots__ = ("enum", "enum_phrase", "lengths", "pattern", "pattern_phrase")

    def __init__(self, shape: Shape, pattern: re.Pattern[str] | None) -> None:
        super().__init__(bool(shape.metadata.get("sensitive")))
        self.lengths = _LengthBounds(shape)
        self.pattern = pattern
        self.pattern_phrase = (
            f"Member must satisfy regular expression pattern: {shape.metadata['pattern']}"
            if pattern is not None
            else ""
        )
        values: list[str] = list(getattr(shape, "enum", None) or [])
        self.enum = frozenset(values) if values else None
        ordered = ", ".join(values[i] for i in _java_hash_order(values))
        self.enum_phrase = f"Member must satisfy enum value set: [{ordered}]"
        # Every non-sensitive string is checked for U+0000 (see NUL_PHRASE).
        self.checked = True

    def convert(self, value: object) -> Any:
        if isinstance(value, str):
            return value
        raise _wrong_type(value, "a String")

    def violations(self, value: Any) -> list[str]:
        found: list[str] = []
        if not self.sensitive and "\x00" in value:
            found.append(NUL_PHRASE)
        if self.pattern is not None and self.pattern.fullmatch(value) is None:
            found.append(self.pattern_phrase)
        if self.lengths.phrases:
            found += self.lengths.failures(_utf16_length(value))
        if self.enum is not None and value not in self.enum:
            found.append(self.enum_phrase)
        return found

    def describe(self) -> list[str]:
        phrases = list(self.lengths.phrases)
        if self.pattern is not None:
            phrases.append(self.pattern_phrase)
        if self.enum is not None:
            phrases.append(self.enum_phrase)
        return phrases


class _BlobNode(_Node):
    __slots__ = ("lengths",)

    def __init__(self, shape: Shape) -> None:
        super().__init__(bool(shape.metadata.get("sensitive")))
        self.lengths = _LengthBounds(shape)
        self.checked = bool(self.lengths.phrases)

    def convert(self, value: object) -> Any:
        if not isinstance(value, str):
            raise _wrong_type(value, "a Blob")
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise _serialization("") from None

    def violations(self, value: Any) -> list[str]:
        return self.lengths.failures(len(value))

    def describe(self) -> list[str]:
        return list(self.lengths.phrases)

    def render(self, value: Any) -> str:
        return f"java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]"


class _NumberNode(_Node):
    __slots__ = ("integral", "max", "min", "target")

    def __init__(self, shape: Shape, target: str, integral: bool) -> None:
        super().__init__(bool(shape.metadata.get("sensitive")))
        self.target = target
        self.integral = integral
        self.min: int | float | None = shape.metadata.get("min")
        self.max: int | float | None = shape.metadata.get("max")
        self.checked = self.min is not None or self.max is not None

    def convert(self, value: object) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong_type(value, self.target)
        if not self.integral:
            return float(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise _serialization("")
            value = math.trunc(value)  # coral truncates decimals for integers (Athena: 1.5 -> 1)
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise _serialization("")  # not measured beyond 64 bits; no message, like other gaps
        return value

    def violations(self, value: Any) -> list[str]:
        if self.max is not None and value > self.max:
            return [f"Member must have value less than or equal to {_bound(self.max)}"]
        if self.min is not None and value < self.min:
            return [f"Member must have value greater than or equal to {_bound(self.min)}"]
        return []

    def describe(self) -> list[str]:
        phrases = []
        if self.max is not None:
            phrases.append(f"Member must have value less than or equal to {_bound(self.max)}")
        if self.min is not None:
            phrases.append(f"Member must have value greater than or equal to {_bound(self.min)}")
        return phrases

    def render(self, value: Any) -> str:
        return repr(value)


class _BooleanNode(_Node):
    __slots__ = ()

    def convert(self, value: object) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            word = value.lower()
            if word in _TRUE_WORDS:
                return True
            if word in _FALSE_WORDS:
                return False
            raise _serialization("STRING_VALUE can not be converted to an Boolean")
        raise _wrong_type(value, "a Boolean")

    def render(self, value: Any) -> str:
        return "true" if value else "false"


class _TimestampNode(_Node):
    __slots__ = ()

    def convert(self, value: object) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong_type(value, "a Timestamp")
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise _serialization("") from None

    def render(self, value: Any) -> str:
        return f"{value:%a %b %d %H:%M:%S} UTC {value:%Y}"  # java.util.Date.toString()


class _DocumentNode(_Node):
    __slots__ = ()

    def convert(self, value: object) -> Any:
        return value


class _ListNode(_Node):
    __slots__ = ("lengths", "member", "member_phrase")

    def __init__(self, shape: Shape) -> None:
        super().__init__(bool(shape.metadata.get("sensitive")))
        self.scalar = False
        self.lengths = _LengthBounds(shape)
        self.member: _Node = _DocumentNode(False)
        self.member_phrase = ""

    def link(self, member: _Node) -> None:
        self.member = member
        self.member_phrase = f"Member must satisfy constraint: [{', '.join(member.describe())}]"
        self.checked = bool(self.lengths.phrases) or member.checked

    def convert(self, value: object) -> Any:
        if isinstance(value, list):
            member = self.member
            return [member.convert(item) for item in value if item is not None]
        if isinstance(value, dict):
            raise _serialization(_START_OF_STRUCTURE)
        raise _serialization("Expected list or null")

    def check(self, value: Any, path: str, errors: list[str], hidden: bool) -> None:
        hidden = hidden or self.sensitive
        member = self.member
        whole_hidden = hidden or member.sensitive
        for phrase in self.lengths.failures(len(value)):
            if len(errors) < MAX_REPORTED_ERRORS:
                errors.append(_violation(self, value, path, phrase, whole_hidden))
        if not member.checked:
            return
        if member.scalar:
            if any(member.violations(item) for item in value):
                if len(errors) < MAX_REPORTED_ERRORS:
                    errors.append(_violation(self, value, path, self.member_phrase, whole_hidden))
            return
        for index, item in enumerate(value, 1):
            if len(errors) >= MAX_REPORTED_ERRORS:
                return
            member.check(item, f"{path}.{index}.member", errors, hidden)

    def render(self, value: Any) -> str:
        return "[" + ", ".join(self.member.render(item) for item in value) + "]"


class _MapNode(_Node):
    __slots__ = ("key", "key_phrase", "lengths", "value", "value_phrase")

    def __init__(self, shape: Shape) -> None:
        super().__init__(bool(shape.metadata.get("sensitive")))
        self.scalar = False
        self.lengths = _LengthBounds(shape)
        self.key: _Node = _DocumentNode(False)
        self.value: _Node = _DocumentNode(False)
        self.key_phrase = self.value_phrase = ""

    def link(self, key: _Node, value: _Node) -> None:
        self.key, self.value = key, value
        self.key_phrase = f"Map keys must satisfy constraint: [{', '.join(key.describe())}]"
        self.value_phrase = f"Map value must satisfy constraint: [{', '.join(value.describe())}]"
        self.checked = bool(self.lengths.phrases) or key.checked or value.checked

    def convert(self, value: object) -> Any:
        if isinstance(value, dict):
            node = self.value
            return {k: node.convert(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            raise _serialization(_START_OF_LIST)
        raise _serialization("Expected map or null")

    def check(self, value: Any, path: str, errors: list[str], hidden: bool) -> None:
        hidden = hidden or self.sensitive
        whole_hidden = hidden or self.key.sensitive or self.value.sensitive
        phrases = self.lengths.failures(len(value))
        if self.key.checked and any(self.key.violations(k) for k in value):
            phrases.append(self.key_phrase)
        node = self.value
        if node.checked and node.scalar and any(node.violations(v) for v in value.values()):
            phrases.append(self.value_phrase)
        for phrase in phrases:
            if len(errors) < MAX_REPORTED_ERRORS:
                errors.append(_violation(self, value, path, phrase, whole_hidden))
        if node.checked and not node.scalar:
            for key, item in value.items():
                if len(errors) >= MAX_REPORTED_ERRORS:
                    return
                node.check(item, f"{path}.{key}.member", errors, hidden)

    def render(self, value: Any) -> str:
        pairs = (f"{self.key.render(k)}={self.value.render(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"


@dataclass(slots=True)
class _Member:
    wire: str  # the JSON key, as in the model (PascalCase)
    camel: str  # the name in validation paths
    required: bool
    node: _Node


class _StructureNode(_Node):
    __slots__ = ("by_wire", "check_order", "members", "name")

    def __init__(self, shape: Shape) -> None:
        super().__init__(bool(shape.metadata.get("sensitive")))
        self.scalar = False
        self.name: str = shape.name
        self.members: list[_Member] = []
        self.by_wire: dict[str, _Member] = {}
        self.check_order: list[_Member] = []

    def link(self, members: list[_Member]) -> None:
        self.members = members
        self.by_wire = {m.wire: m for m in members}
        ordered = [members[i] for i in _java_hash_order([m.camel for m in members])]
        self.check_order = [m for m in ordered if m.required or m.node.checked]
        self.checked = bool(self.check_order)

    def convert(self, value: object) -> Any:
        if isinstance(value, dict):
            return self.convert_members(value)
        if isinstance(value, list):
            raise _serialization(_START_OF_LIST)
        raise _serialization("Expected null")

    def convert_members(self, value: dict[Any, Any]) -> dict[str, Any]:
        by_wire = self.by_wire
        out: dict[str, Any] = {}
        for key, item in value.items():
            member = by_wire.get(key)
            if member is not None and item is not None:
                out[key] = member.node.convert(item)
        return out

    def check(self, value: Any, path: str, errors: list[str], hidden: bool) -> None:
        hidden = hidden or self.sensitive
        for member in self.check_order:
            if len(errors) >= MAX_REPORTED_ERRORS:
                return
            item = value.get(member.wire)
            where = f"{path}.{member.camel}" if path else member.camel
            if item is None:
                if member.required:
                    errors.append(
                        f"Value null at '{where}' failed to satisfy constraint: "
                        "Member must not be null"
                    )
                continue
            member.node.check(item, where, errors, hidden)

    def render(self, value: Any) -> str:
        # The server's toString of a structure was never observed; this is the AWS SDK for
        # Java v2 form, which never prints sensitive members.
        shown = []
        for member in self.members:
            if member.wire in value:
                item = value[member.wire]
                text = _SENSITIVE_RENDERING if member.node.sensitive else member.node.render(item)
                shown.append(f"{member.wire}={text}")
        return f"{self.name}({', '.join(shown)})"


# --- building the nodes from the model --------------------------------------------------------


class _Compiler:
    """Turns botocore shapes into nodes, sharing one node per shape and one regex per pattern."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Node] = {}
        self._patterns: dict[str, re.Pattern[str]] = {}
        self._categories: dict[str, list[tuple[int, int]]] | None = None

    def structure(self, shape: StructureShape) -> _StructureNode:
        node = self.node(shape)
        assert isinstance(node, _StructureNode)
        return node

    def node(self, shape: Shape) -> _Node:
        known = self._nodes.get(shape.name)
        if known is not None:
            return known
        kind = shape.type_name
        node: _Node
        if kind == "structure":
            structure = _StructureNode(shape)
            self._nodes[shape.name] = structure  # registered first: shapes may be recursive
            required = set(shape.required_members)
            structure.link(
                [
                    _Member(name, _lower_camel(name), name in required, self.node(member))
                    for name, member in shape.members.items()
                ]
            )
            return structure
        if kind == "list":
            listing = _ListNode(shape)
            self._nodes[shape.name] = listing
            listing.link(self.node(shape.member))
            return listing
        if kind == "map":
            mapping = _MapNode(shape)
            self._nodes[shape.name] = mapping
            mapping.link(self.node(shape.key), self.node(shape.value))
            return mapping
        if kind == "string":
            source = shape.metadata.get("pattern")
            node = _StringNode(shape, None if source is None else self.pattern(source))
        elif kind == "blob":
            node = _BlobNode(shape)
        elif kind in ("integer", "long", "short", "byte"):
            node = _NumberNode(
                shape, "an Integer" if kind == "integer" else f"a {kind.title()}", True
            )
        elif kind in ("float", "double"):
            node = _NumberNode(shape, f"a {kind.title()}", False)
        elif kind == "boolean":
            node = _BooleanNode(bool(shape.metadata.get("sensitive")))
        elif kind == "timestamp":
            node = _TimestampNode(bool(shape.metadata.get("sensitive")))
        else:
            node = _DocumentNode(bool(shape.metadata.get("sensitive")))
        self._nodes[shape.name] = node
        return node

    def pattern(self, source: str) -> re.Pattern[str]:
        compiled = self._patterns.get(source)
        if compiled is None:
            compiled = re.compile(java_regex_to_python(source, self._category_ranges), re.ASCII)
            self._patterns[source] = compiled
        return compiled

    def _category_ranges(self, name: str) -> list[tuple[int, int]]:
        if self._categories is None:
            self._categories = _unicode_category_ranges()
        ranges: list[tuple[int, int]] = []
        for category, found in self._categories.items():
            if category.startswith(name):
                ranges += found
        if not ranges:
            raise ValueError(f"unsupported Unicode property in a model pattern: {name!r}")
        return ranges


def _unicode_category_ranges() -> dict[str, list[tuple[int, int]]]:
    ranges: dict[str, list[tuple[int, int]]] = {}
    start, current = 0, unicodedata.category("\0")
    for code in range(1, 0x110000):
        category = unicodedata.category(chr(code))
        if category != current:
            ranges.setdefault(current, []).append((start, code - 1))
            start, current = code, category
    ranges.setdefault(current, []).append((start, 0x10FFFF))
    return ranges


def java_regex_to_python(
    pattern: str, categories: Callable[[str], Iterable[tuple[int, int]]]
) -> str:
    """Translate a ``java.util.regex`` pattern to Python ``re`` syntax (to compile with ASCII).

    ``categories`` maps a Unicode general category (``L``, ``Lu``...) to code-point ranges. Java
    constructs with no faithful translation raise ``ValueError``, so a model upgrade that uses one
    fails loudly instead of validating differently.
    """
    out: list[str] = []
    i, end, in_class = 0, len(pattern), False
    while i < end:
        char = pattern[i]
        if char == "\\":
            if i + 1 >= end:
                raise ValueError(f"dangling backslash in {pattern!r}")
            escape = pattern[i + 1]
            if escape in "pP":
                name, i = _property_name(pattern, i + 2)
                name = name.removeprefix("Is")
                body = "".join(
                    f"\\U{low:08x}" if low == high else f"\\U{low:08x}-\\U{high:08x}"
                    for low, high in categories(name)
                )
                if escape == "P":
                    if in_class:
                        raise ValueError(f"negated property inside a class in {pattern!r}")
                    out.append(f"[^{body}]")
                else:
                    out.append(body if in_class else f"[{body}]")
                continue
            if escape in _UNSUPPORTED_ESCAPES or (escape == "x" and pattern[i + 2 : i + 3] == "{"):
                raise ValueError(f"unsupported Java escape \\{escape} in {pattern!r}")
            out.append(_JAVA_ESCAPES.get(escape, pattern[i : i + 2]))
            i += 2
            if in_class and escape in "wWdDsS" and pattern.startswith("-", i):
                # Java reads `[\w-_]` as \w, `-` and `_`: a range cannot start at a class
                # escape, so the hyphen is literal (Lambda's and Logs' models use this).
                out.append("\\-")
                i += 1
            continue
        if in_class:
            if char == "[" or pattern.startswith("&&", i):
                raise ValueError(f"unsupported class union/intersection in {pattern!r}")
            in_class = char != "]"
            out.append(char)
            i += 1
            continue
        if char == "[":
            in_class = True
            out.append(char)
            i += 1
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):
                out.append("\\]")
                i += 1
            continue
        if pattern.startswith("(?<", i) and pattern[i + 3 : i + 4] not in ("=", "!"):
            out.append("(?P<")  # named group
            i += 3
            continue
        out.append(_JAVA_DOT if char == "." else char)
        i += 1
    if in_class:
        raise ValueError(f"unclosed character class in {pattern!r}")
    return "".join(out)


def _property_name(pattern: str, start: int) -> tuple[str, int]:
    if pattern.startswith("{", start):
        close = pattern.find("}", start)
        if close < 0:
            raise ValueError(f"unclosed \\p{{...}} in {pattern!r}")
        return pattern[start + 1 : close], close + 1
    if start >= len(pattern):
        raise ValueError(f"dangling \\p in {pattern!r}")
    return pattern[start], start + 1
