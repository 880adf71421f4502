"""Condition operators, with AWS's rules for missing keys, `...IfExists` and the set operators.

Source for every rule here: "IAM JSON policy elements: Condition operators",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
and "Single-valued vs. multivalued context keys",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html

- A key missing from the request makes a condition false, except that negated operators
  (StringNotEquals, StringNotLike, NumericNotEquals, DateNotEquals, ArnNotEquals, ArnNotLike,
  NotIpAddress) are then true; `...IfExists` makes any operator true on a missing key; Null tests
  presence only.
- Several values for one key are OR'd (for negated operators: the request value matches none of
  them); several keys in one operator, and several operators, are AND'd.
- `ForAllValues:` is true when every request value satisfies the operator, and also when the key
  is missing or empty; `ForAnyValue:` needs at least one request value that satisfies it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from secretsd.policy.matching import (
    GlobSet,
    Lookup,
    Pattern,
    has_variables,
    literal_text,
    parse_pattern,
    substitute,
)

# A context value as the request carries it, after normalisation to a tuple.
Scalar = str | bool | int | float | datetime | bytes
ContextValues = tuple[Scalar, ...]

STRING_OPS = frozenset(
    {
        "StringEquals",
        "StringNotEquals",
        "StringEqualsIgnoreCase",
        "StringNotEqualsIgnoreCase",
        "StringLike",
        "StringNotLike",
    }
)
NUMERIC_OPS = frozenset(
    {
        "NumericEquals",
        "NumericNotEquals",
        "NumericLessThan",
        "NumericLessThanEquals",
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
    }
)
DATE_OPS = frozenset(
    {
        "DateEquals",
        "DateNotEquals",
        "DateLessThan",
        "DateLessThanEquals",
        "DateGreaterThan",
        "DateGreaterThanEquals",
    }
)
ARN_OPS = frozenset({"ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"})
OTHER_OPS = frozenset({"Bool", "BinaryEquals", "IpAddress", "NotIpAddress", "Null"})
BASE_OPERATORS = STRING_OPS | NUMERIC_OPS | DATE_OPS | ARN_OPS | OTHER_OPS

NEGATED = frozenset(
    {
        "StringNotEquals",
        "StringNotEqualsIgnoreCase",
        "StringNotLike",
        "NumericNotEquals",
        "DateNotEquals",
        "ArnNotEquals",
        "ArnNotLike",
        "NotIpAddress",
    }
)
# "Policy variables: Supported" in the operator tables (String, ARN and Bool).
_VARIABLE_OPS = STRING_OPS | ARN_OPS | {"Bool"}
_SET_PREFIXES = {"forallvalues": "ForAllValues", "foranyvalue": "ForAnyValue"}
_OPS_BY_LOWER = {op.lower(): op for op in BASE_OPERATORS}

_Compare = Callable[[float, float], bool]
_COMPARISONS: dict[str, _Compare] = {
    "Equals": lambda a, b: a == b,
    "NotEquals": lambda a, b: a == b,  # negation is applied by the caller
    "LessThan": lambda a, b: a < b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanEquals": lambda a, b: a >= b,
}


class ConditionSyntaxError(ValueError):
    """An operator this engine (and AWS) does not know."""


@dataclass(frozen=True, slots=True)
class ParsedOperator:
    base: str
    set_op: str | None
    if_exists: bool


def parse_operator(name: str) -> ParsedOperator:
    """`ForAnyValue:StringLikeIfExists` -> base StringLike, set ForAnyValue, if_exists."""
    set_op: str | None = None
    rest = name
    if ":" in name:
        prefix, rest = name.split(":", 1)
        set_op = _SET_PREFIXES.get(prefix.lower())
        if set_op is None:
            raise ConditionSyntaxError(f"Invalid Condition type : {name}.")
    if_exists = False
    if rest.lower().endswith("ifexists") and rest.lower() != "null":
        if_exists = True
        rest = rest[: -len("IfExists")]
    base = _OPS_BY_LOWER.get(rest.lower())
    if base is None or (base == "Null" and if_exists):
        raise ConditionSyntaxError(f"Invalid Condition type : {name}.")
    return ParsedOperator(base, set_op, if_exists)


def _to_str(value: Scalar) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return _as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def _to_number(value: Scalar) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def parse_date(value: Scalar) -> datetime | None:
    """ISO 8601 date/time or epoch seconds, as AWS's Date operators accept."""
    if isinstance(value, datetime):
        return _as_utc(value)
    if isinstance(value, bool) or isinstance(value, bytes):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    text = value.strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    try:
        return _as_utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def _to_bool(value: Scalar) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _to_ip(value: Scalar) -> tuple[int, int] | None:
    """(IP version, address as an int); inet_pton is far cheaper than `ipaddress` per request."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if ":" in text:
            return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError):
        return None


def _b64(value: Scalar) -> bytes | None:
    try:
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return None


@dataclass(frozen=True, slots=True)
class ConditionClause:
    """One operator applied to one key: `{"StringEquals": {"aws:username": ["a", "b"]}}`."""

    operator: str
    key: str  # lower-cased: condition key names are case-insensitive
    values: tuple[str, ...]
    op: ParsedOperator
    _test: Callable[[Scalar, Lookup], bool] = field(repr=False, compare=False)
    # Precomputed from `op` so evaluation does no string comparisons.
    _negated: bool = field(repr=False, compare=False, default=False)
    _null: bool = field(repr=False, compare=False, default=False)
    _missing: bool = field(repr=False, compare=False, default=False)  # result on a missing key
    _for_all: bool = field(repr=False, compare=False, default=False)
    _for_any: bool = field(repr=False, compare=False, default=False)

    def evaluate(self, context: Mapping[str, ContextValues], lookup: Lookup) -> bool:
        present = context.get(self.key)
        if self._null:
            absent = not present
            return any(absent == (v.lower() == "true") for v in self.values)
        if not present:
            return self._missing
        test = self._test
        if len(present) == 1 and not self._for_all and not self._for_any:
            return test(present[0], lookup) != self._negated
        if self._negated:
            if self._for_all:
                return all(not test(v, lookup) for v in present)
            if self._for_any:
                return any(not test(v, lookup) for v in present)
            return not any(test(v, lookup) for v in present)
        if self._for_all:
            return all(test(v, lookup) for v in present)
        return any(test(v, lookup) for v in present)


def compile_clause(operator: str, key: str, values: tuple[str, ...]) -> ConditionClause:
    op = parse_operator(operator)
    test = _compile_test(op.base, values)
    negated = op.base in NEGATED
    if op.if_exists or op.set_op == "ForAllValues":
        missing = True
    elif op.set_op == "ForAnyValue":
        missing = False
    else:
        missing = negated
    return ConditionClause(
        operator,
        key.lower(),
        values,
        op,
        test,
        _negated=negated,
        _null=op.base == "Null",
        _missing=missing,
        _for_all=op.set_op == "ForAllValues",
        _for_any=op.set_op == "ForAnyValue",
    )


def _compile_test(base: str, values: tuple[str, ...]) -> Callable[[Scalar, Lookup], bool]:
    """The positive form of `base` ("does the request value match any policy value?")."""
    variables = base in _VARIABLE_OPS
    patterns = tuple(parse_pattern(v, variables=variables) for v in values)
    if base in ("StringLike", "StringNotLike"):
        globs = GlobSet(patterns)
        return lambda v, lookup: (s := _to_str(v)) is not None and globs.matches(s, lookup)
    if base in ARN_OPS:
        arn_globs = GlobSet(patterns, arn=True)
        return lambda v, lookup: isinstance(v, str) and arn_globs.matches(v, lookup)
    if base == "Bool" and not any(has_variables(p) for p in patterns):
        wanted = {v.lower() == "true" for v in values if v.lower() in ("true", "false")}
        return lambda v, _lookup: (b := _to_bool(v)) is not None and b in wanted
    if base in STRING_OPS or base == "Bool":
        fold = base.endswith("IgnoreCase") or base == "Bool"
        return _equality_test(patterns, fold=fold)
    if base in NUMERIC_OPS:
        numbers = [n for n in (_to_number(v) for v in values) if n is not None]
        cmp = _COMPARISONS[base.removeprefix("Numeric")]
        return lambda v, _lookup: (
            (x := _to_number(v)) is not None and any(cmp(x, n) for n in numbers)
        )
    if base in DATE_OPS:
        dates = [d.timestamp() for d in (parse_date(v) for v in values) if d is not None]
        dcmp = _COMPARISONS[base.removeprefix("Date")]
        return lambda v, _lookup: (
            (d := parse_date(v)) is not None and any(dcmp(d.timestamp(), t) for t in dates)
        )
    if base in ("IpAddress", "NotIpAddress"):
        networks: list[tuple[int, int, int]] = []  # (version, network, mask)
        for v in values:
            try:
                net = ipaddress.ip_network(v.strip(), strict=False)
            except ValueError:
                continue
            networks.append((net.version, int(net.network_address), int(net.netmask)))
        return lambda v, _lookup: (
            (ip := _to_ip(v)) is not None
            and any(
                ip[0] == version and ip[1] & mask == network for version, network, mask in networks
            )
        )
    if base == "Null":
        return lambda _v, _lookup: False  # Null tests presence only, in evaluate()
    if base == "BinaryEquals":
        blobs = {b for b in (_b64(v) for v in values) if b is not None}
        return lambda v, _lookup: _b64(v) in blobs
    raise ConditionSyntaxError(f"Invalid Condition type : {base}.")


def _equality_test(
    patterns: tuple[Pattern, ...], *, fold: bool
) -> Callable[[Scalar, Lookup], bool]:
    def norm(s: str) -> str:
        return s.lower() if fold else s

    static = frozenset(norm(literal_text(p)) for p in patterns if not has_variables(p))
    dynamic = tuple(p for p in patterns if has_variables(p))

    def test(v: Scalar, lookup: Lookup) -> bool:
        s = _to_str(v)
        if s is None:
            return False
        s = norm(s)
        if s in static:
            return True
        for pattern in dynamic:
            concrete = substitute(pattern, lookup)
            if concrete is not None and norm(literal_text(concrete)) == s:
                return True
        return False

    return test
