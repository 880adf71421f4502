"""Hypothesis strategies for request inputs, derived from a botocore service model.

`ModelInputs(model, ...).inputs(operation)` draws an input dict that is sometimes valid and often
wrong in the ways a careless or hostile client can be wrong: wrong JSON types, strings and numbers
outside their limits, values outside an enum, missing required members, unknown members, nulls,
nested junk and odd Unicode. `bodies(...)` turns such a dict into request bytes, sometimes mangled
(truncated, invalid UTF-8, not an object, not JSON at all).

Names are always drawn from a caller-given pool or prefixed, so that a test running these against
a shared server can only ever create or change secrets of its own.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from typing import Any

from botocore.model import ListShape, MapShape, ServiceModel, Shape, StructureShape
from hypothesis import strategies as st

# Members whose string value names a secret: drawn from the pool or prefixed, never free text.
SECRET_NAME_SHAPES = frozenset({"NameType", "SecretIdType", "SecretNameType"})
VERSION_ID_SHAPES = frozenset({"ClientRequestTokenType", "SecretVersionIdType"})
STAGES = ("AWSCURRENT", "AWSPREVIOUS", "AWSPENDING", "custom-stage")
NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_+=.@-!"
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            }
        ],
    }
)
# Strings that have broken parsers, validators and loggers before.
NASTY_STRINGS = (
    "",
    " ",
    "\x00",
    "\ud800",  # a lone surrogate: not encodable as UTF-8
    "\udfff\ud800",
    "\U0001f600" * 3,  # astral: two UTF-16 units each
    "\u202e\u0301\ufeff",
    "%s%n%x{0}",
    "'; DROP TABLE secrets; --",
    "\\u0000",
    "../../etc/passwd",
    "arn:aws:secretsmanager:us-east-1:000000000000:secret:x-AbCdEf",
    "\r\n\t",
    "null",
)
ODD_CHARACTERS = (
    "\x00",
    "\x01",
    "\x7f",
    "\r",
    "\n",
    "\t",
    "'",
    '"',
    "\\",
    "%",
    "\U0001f600",
    "\u202e",
)
HUGE_LENGTHS = (257, 513, 2049, 4097, 20481, 65537, 70000)
INTEGER_EDGES = (
    -(2**63) - 1,
    -(2**63),
    -(2**31) - 1,
    -1,
    0,
    2**31 - 1,
    2**31,
    2**63 - 1,
    2**63,
    10**30,
)
FLOAT_EDGES = (0.5, -0.0, 1e308, -1e308, 7.9999, 1e-300)


def _python_regex(text: str | None) -> re.Pattern[str] | None:
    """A model pattern as a Python regex, or None when it is Java-only: IAM's "any printable
    character" classes (`\\u10000`, `\\p{...}`); such members get odd text instead.
    ASCII: the model's \\d means [0-9], as in Java, not any Unicode digit."""
    if text is None or "\\u" in text or "\\p" in text:
        return None
    try:
        return re.compile(text, re.ASCII)
    except re.error:
        return None


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True about once in `n` draws (`st.integers(...) == bound` would be true more often:
    Hypothesis leans towards bounds)."""
    return st.sampled_from([True] + [False] * (n - 1))


def odd_text(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """Text of an allowed length: plain, or rich in characters that upset storage layers and
    loggers (NUL, controls, astral planes, quotes) which the model does not forbid."""
    high = min(max_size, min_size + 40)
    alphabet = st.one_of(st.sampled_from(ODD_CHARACTERS), st.characters(exclude_categories=["Cs"]))
    return st.one_of(
        st.text(min_size=min_size, max_size=high),
        st.text(alphabet, min_size=min_size, max_size=high),
    )


def policy_documents() -> st.SearchStrategy[str]:
    """Resource policies: a sensible one, JSON of any shape, or JSON nested beyond what recursive
    parsers survive (all within the model's 20,480 characters)."""
    nested = st.sampled_from([10, 999, 1001, 5000]).map(lambda depth: "[" * depth + "]" * depth)
    in_statement = nested.map(lambda inner: f'{{"Version": "2012-10-17", "Statement": {inner}}}')
    return st.one_of(st.just(POLICY), json_junk().map(json.dumps), nested, in_statement).filter(
        lambda text: 1 <= len(text) <= 20480
    )


def json_junk() -> st.SearchStrategy[Any]:
    """Arbitrary JSON-encodable values, nested a little."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
        st.sampled_from(NASTY_STRINGS),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.text(max_size=8), children, max_size=4),
        ),
        max_leaves=12,
    )


class ModelInputs:
    """Input strategies for one service model.

    `names` are existing secret names or ARNs to aim at; `prefix` starts every other name;
    `marker` starts every sensitive value (so a test can check it never leaks).
    """

    def __init__(
        self, model: ServiceModel, *, names: Sequence[str], prefix: str, marker: str
    ) -> None:
        self.model = model
        self.names = tuple(names)
        self.prefix = prefix
        self.marker = marker

    # -- whole inputs ------------------------------------------------------------------------

    def inputs(self, operation: str, *, valid: bool = False) -> st.SearchStrategy[dict[str, Any]]:
        """Inputs for `operation`; with `valid`, only ones the model allows (which the service
        may still refuse, e.g. a secret that does not exist)."""
        shape = self.model.operation_model(operation).input_shape
        if shape is None:
            return st.builds(dict)
        return self.valid(shape, 0) if valid else self.structure(shape, depth=0)

    def structure(
        self, shape: StructureShape, depth: int, *, valid: bool = False
    ) -> st.SearchStrategy[dict[str, Any]]:
        required = set(shape.required_members)
        members = {
            name: (
                self.valid_member(member, depth, required=name in required)
                if valid
                else self.member(member, depth, required=name in required)
            )
            for name, member in shape.members.items()
        }

        @st.composite
        def build(draw: st.DrawFn) -> dict[str, Any]:
            result: dict[str, Any] = {}
            for name, strategy in members.items():
                value = draw(strategy)
                if value is not _ABSENT:
                    result[name] = value
            # Unknown members: misspelt, wrong case, reserved-looking or plain junk.
            if not valid and draw(one_in(10)):
                extra_names = st.one_of(
                    st.sampled_from(
                        ["secretId", "SECRETID", "__type", "", "Message", "Unknown", "Name "]
                    ),
                    st.text(max_size=12),
                ).filter(lambda key: key not in shape.members)
                extra = draw(st.dictionaries(extra_names, json_junk(), min_size=1, max_size=3))
                result.update(extra)
            return result

        return build()

    def member(self, shape: Shape, depth: int, *, required: bool) -> st.SearchStrategy[Any]:
        """A member's value, or `_ABSENT`: mostly valid, often missing, sometimes invalid."""
        # Required members are usually present; optional ones usually absent, to keep inputs
        # near the valid ones an SDK sends.
        absent_weight, valid_weight = (1, 7) if required else (6, 3)
        return st.sampled_from(
            ["absent"] * absent_weight + ["valid"] * valid_weight + ["invalid"] * 2
        ).flatmap(
            lambda kind: (
                st.just(_ABSENT)
                if kind == "absent"
                else self.valid(shape, depth)
                if kind == "valid"
                else self.invalid(shape, depth)
            )
        )

    def valid_member(self, shape: Shape, depth: int, *, required: bool) -> st.SearchStrategy[Any]:
        # SDKs always fill in idempotency tokens.
        if required or shape.metadata.get("idempotencyToken"):
            return self.valid(shape, depth)
        return st.one_of(st.just(_ABSENT), self.valid(shape, depth))

    # -- values that satisfy the model -------------------------------------------------------

    def valid(self, shape: Shape, depth: int) -> st.SearchStrategy[Any]:
        kind = shape.type_name
        if kind == "structure":
            assert isinstance(shape, StructureShape)
            return self.structure(shape, depth + 1, valid=True)
        if kind == "list":
            assert isinstance(shape, ListShape)
            low = shape.metadata.get("min", 0)
            return st.lists(self.valid(shape.member, depth + 1), min_size=low, max_size=low + 2)
        if kind == "map":
            assert isinstance(shape, MapShape)
            return st.dictionaries(
                self.valid(shape.key, depth + 1), self.valid(shape.value, depth + 1), max_size=2
            )
        if kind in ("integer", "long"):
            low = shape.metadata.get("min", -5)
            high = shape.metadata.get("max", max(low, 0) + 40)
            return st.integers(low, high)
        if kind == "boolean":
            return st.booleans()
        if kind == "timestamp":
            return st.integers(0, 2**33)
        if kind == "blob":
            return st.binary(max_size=64).map(
                lambda raw: base64.b64encode(self.marker.encode() + raw).decode()
            )
        return self.valid_string(shape)

    def valid_string(self, shape: Shape) -> st.SearchStrategy[str]:
        meta = shape.metadata
        enum: list[str] = getattr(shape, "enum", None) or []
        if enum:
            return st.sampled_from(enum)
        if shape.name in SECRET_NAME_SHAPES:
            return self.secret_name()
        if shape.name in VERSION_ID_SHAPES:
            # The model only limits the length: any 32-64 characters are a valid token.
            return st.one_of(st.uuids().map(str), odd_text(32, 64))
        if shape.name == "SecretVersionStageType":
            return st.one_of(st.sampled_from(STAGES), odd_text(1, 256))
        if shape.name == "NonEmptyResourcePolicyType":
            return policy_documents()
        if shape.name == "RotationTokenType":
            return st.uuids().map(lambda token: f"{self.marker}-{token}")
        if meta.get("sensitive"):
            return st.text(max_size=40).map(lambda text: self.marker + text)
        if shape.name == "policyDocumentType":  # IAM's policy documents
            return policy_documents()
        pattern = _python_regex(meta.get("pattern"))
        if pattern is not None:
            return st.from_regex(pattern, fullmatch=True).filter(
                lambda text: meta.get("min", 0) <= len(text) <= meta.get("max", 64)
            )
        return odd_text(meta.get("min", 0), meta.get("max", 2**31))

    def secret_name(self) -> st.SearchStrategy[str]:
        fresh = st.text(NAME_ALPHABET, min_size=1, max_size=16).map(
            lambda text: f"{self.prefix}-{text}"
        )
        if not self.names:
            return fresh
        # Mostly existing secrets: that is where the handlers have work to do.
        return st.sampled_from(["existing"] * 3 + ["fresh"]).flatmap(
            lambda kind: st.sampled_from(self.names) if kind == "existing" else fresh
        )

    # -- values that do not ---------------------------------------------------------------------

    def invalid(self, shape: Shape, depth: int) -> st.SearchStrategy[Any]:
        kind = shape.type_name
        options: list[st.SearchStrategy[Any]] = [
            st.none(),
            self.wrong_type(kind),
        ]
        if depth < 2:
            junk = json_junk()
            if shape.name in SECRET_NAME_SHAPES:
                # A junk string could name another test's secret.
                junk = junk.filter(lambda value: not isinstance(value, str))
            options.append(junk)
        if kind in ("integer", "long", "timestamp"):
            options.append(self.bad_number(shape))
        elif kind == "string":
            options.append(self.bad_string(shape))
        elif kind == "blob":
            options.append(
                st.one_of(
                    st.just(""),
                    st.sampled_from(["not base64!", "QQ", "====", "\ud800"]),
                    st.sampled_from(HUGE_LENGTHS).map(
                        lambda n: base64.b64encode(self.marker.encode() * (n // 8 + 1)).decode()
                    ),
                )
            )
        elif kind == "list":
            assert isinstance(shape, ListShape)
            options.append(
                st.one_of(
                    st.just([]),
                    st.lists(st.none(), min_size=1, max_size=3),
                    st.lists(self.invalid(shape.member, depth + 1), min_size=1, max_size=3),
                    st.integers(11, 30).map(lambda n: [self.prefix] * n),
                )
            )
        elif kind == "structure":
            assert isinstance(shape, StructureShape)
            options.append(st.builds(dict))
        elif kind == "map":
            options.append(st.dictionaries(st.text(max_size=3), json_junk(), max_size=3))
        return st.one_of(options)

    def wrong_type(self, kind: str) -> st.SearchStrategy[Any]:
        by_kind: dict[str, list[st.SearchStrategy[Any]]] = {
            "string": [st.integers(), st.booleans(), st.floats(allow_nan=False)],
            "integer": [st.text(max_size=5), st.booleans(), st.sampled_from(FLOAT_EDGES)],
            "long": [st.sampled_from(["7", "seven", "1e3", ""]), st.booleans()],
            "boolean": [st.sampled_from(["true", "yes", "maybe", "", "FALSE"]), st.integers()],
            "timestamp": [st.sampled_from(["2024-01-01T00:00:00Z", "yesterday"]), st.booleans()],
            "blob": [st.integers(), st.booleans()],
            "list": [st.text(max_size=5), st.integers(), st.dictionaries(st.text(), st.text())],
            "map": [st.lists(st.text(), max_size=3), st.text(max_size=5)],
            "structure": [st.lists(st.integers(), max_size=3), st.text(max_size=5), st.integers()],
        }
        containers = [st.lists(st.integers(), max_size=2), st.builds(dict, a=st.integers())]
        return st.one_of(*by_kind.get(kind, []), *containers)

    def bad_number(self, shape: Shape) -> st.SearchStrategy[Any]:
        edges: list[int] = list(INTEGER_EDGES)
        if "min" in shape.metadata:
            edges.append(shape.metadata["min"] - 1)
        if "max" in shape.metadata:
            edges.append(shape.metadata["max"] + 1)
        return st.one_of(st.sampled_from(edges), st.sampled_from(FLOAT_EDGES))

    def bad_string(self, shape: Shape) -> st.SearchStrategy[str]:
        meta = shape.metadata
        base = self.marker if meta.get("sensitive") else self.prefix
        lengths = [n for n in HUGE_LENGTHS if n > meta.get("max", 0)] or [70000]
        if "max" in meta:
            lengths.append(meta["max"] + 1)
        options = [
            st.sampled_from(lengths).map(lambda n: (base + "x" * n)[: max(n, len(base))]),
            st.sampled_from(NASTY_STRINGS).map(lambda text: base + text),
            st.text(max_size=30).map(lambda text: base + text),
        ]
        if meta.get("min", 0) > 0 and shape.name not in SECRET_NAME_SHAPES:
            # Too short; for name-like members the prefix is kept, so "too short" means empty.
            options.append(st.just("x" * (meta["min"] - 1)))
        if shape.name in SECRET_NAME_SHAPES:
            options.append(st.just(""))
        return st.one_of(options)


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Any = _Absent()


@st.composite
def bodies(draw: st.DrawFn, params: Any, prefix: str) -> bytes:
    """`params` as a request body: usually plain JSON, sometimes mangled on the way. Secret names
    the mangling adds start with `prefix`."""
    kind = draw(
        st.sampled_from(
            ["json"] * 12
            + ["ascii", "surrogatepass", "truncated", "invalid-utf8", "bom", "trailing"]
            + ["not-object", "empty", "random", "deep", "utf16", "nonstandard", "duplicate"]
        )
    )
    if kind == "json":
        return _dumps(params, ensure_ascii=False)
    if kind == "ascii":
        return json.dumps(params, ensure_ascii=True).encode()
    if kind == "surrogatepass":
        # Lone surrogates written as raw (invalid) UTF-8 bytes.
        return json.dumps(params, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if kind == "truncated":
        body = _dumps(params, ensure_ascii=False)
        return body[: draw(st.integers(0, max(len(body) - 1, 0)))]
    if kind == "invalid-utf8":
        body = _dumps(params, ensure_ascii=False)
        at = draw(st.integers(0, len(body)))
        bad = draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80"]))
        return body[:at] + bad + body[at:]
    if kind == "bom":
        return b"\xef\xbb\xbf" + _dumps(params, ensure_ascii=False)
    if kind == "trailing":
        tail = draw(st.sampled_from([b"}", b",", b" {}", b"\x00", b"garbage"]))
        return _dumps(params, ensure_ascii=False) + tail
    if kind == "not-object":
        return _dumps(draw(st.one_of(json_junk(), st.just([params]))), ensure_ascii=False)
    if kind == "empty":
        return draw(st.sampled_from([b"", b" ", b"\n", b"null", b"{}"]))
    if kind == "random":
        return draw(st.binary(max_size=200))
    if kind == "deep":
        depth = draw(st.sampled_from([100, 1100, 20000]))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        return opener * depth + b"1" + closer * depth
    if kind == "utf16":
        return json.dumps(params, ensure_ascii=False).encode("utf-16", "surrogatepass")
    name = json.dumps(prefix).encode()
    if kind == "nonstandard":
        return draw(
            st.sampled_from(
                [
                    b'{"MaxResults": NaN}',
                    b'{"MaxResults": Infinity}',
                    b'{"MaxResults": 1e999}',
                    b'{"MaxResults": 123456789012345678901234567890}',
                    b"{'SecretId': 'x'}",
                    b'{"SecretId": ' + name + b",}",
                    b'{"SecretId": "\\x41"}',
                    b'{"SecretId": "\\ud800"}',
                    b'{"SecretId": "' + prefix.encode() + b'\x00b"}',
                    b"/* c */ {}",
                ]
            )
        )
    # "duplicate": the same member twice; the second (which parsers keep) is never a name.
    second = draw(json_junk().filter(lambda value: not isinstance(value, str)))
    return b'{"SecretId": ' + name + b', "SecretId": ' + _dumps(second, ensure_ascii=True) + b"}"


def _dumps(value: Any, *, ensure_ascii: bool) -> bytes:
    if ensure_ascii:
        return json.dumps(value, ensure_ascii=True).encode()
    try:
        return json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        # Lone surrogates cannot be UTF-8: escape them as JSON does (\udXXX) instead.
        return json.dumps(value, ensure_ascii=True).encode()
