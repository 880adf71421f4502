"""Wildcard patterns as IAM matches them, with policy variables.

A pattern is parsed once into parts (literal text, `*`, `?`, or a `${variable}`); patterns without
variables are compiled to one regex when the policy is parsed, so evaluation is a single
`fullmatch`. Patterns with variables are substituted per request and compiled then (the `re`
module's own cache keeps that cheap for repeated identities).

Sources:
- Actions: "Action element ... values are case-insensitive" and `*`/`?` wildcards,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
- Resources: ARNs are case-sensitive; `*` and `?` may appear in any segment, and a `*` spans
  `:` and `/` (`arn:aws:secretsmanager:*` covers every secret),
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
- ArnLike/ArnEquals: "Each of the six colon-delimited components of the ARN is checked
  separately", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_ARN
- Variables, `${*}`, `${?}`, `${$}` and `${key, 'default'}`:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass


class Wild(enum.Enum):
    STAR = "*"
    QMARK = "?"


@dataclass(frozen=True, slots=True)
class Var:
    """A `${name}` or `${name, 'default'}` placeholder; `name` is lower-cased (keys are
    case-insensitive)."""

    name: str
    default: str | None = None


Part = str | Wild | Var
Pattern = tuple[Part, ...]
# Returns a variable's single string value, or None when the request has none.
Lookup = Callable[[str], str | None]

_MAX_COMPILED = 1024
_ESCAPES = {"*": "*", "?": "?", "$": "$"}
_DEFAULT_RE = re.compile(r"^\s*([^,]+?)\s*,\s*'([^']*)'\s*$")


def parse_pattern(text: str, *, variables: bool) -> Pattern:
    """Split `text` into literal runs, wildcards and (when `variables`) `${...}` placeholders."""
    parts: list[Part] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            parts.append("".join(literal))
            literal.clear()

    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if variables and ch == "$" and text.startswith("${", i):
            end = text.find("}", i + 2)
            if end != -1:
                inner = text[i + 2 : end]
                if inner in _ESCAPES:
                    literal.append(_ESCAPES[inner])
                else:
                    flush()
                    parts.append(_parse_var(inner))
                i = end + 1
                continue
        if ch == "*":
            flush()
            parts.append(Wild.STAR)
        elif ch == "?":
            flush()
            parts.append(Wild.QMARK)
        else:
            literal.append(ch)
        i += 1
    flush()
    return tuple(parts)


def _parse_var(inner: str) -> Var:
    m = _DEFAULT_RE.match(inner)
    if m:
        return Var(m.group(1).lower(), m.group(2))
    return Var(inner.strip().lower())


def has_variables(pattern: Pattern) -> bool:
    return any(isinstance(p, Var) for p in pattern)


def substitute(pattern: Pattern, lookup: Lookup) -> Pattern | None:
    """Replace variables by their values (as literals: a `*` in a value is not a wildcard).

    None when a variable has no value and no default: AWS then treats that value as one that
    matches nothing.
    """
    out: list[Part] = []
    for part in pattern:
        if isinstance(part, Var):
            value = lookup(part.name)
            if value is None:
                value = part.default
            if value is None:
                return None
            out.append(value)
        else:
            out.append(part)
    return tuple(out)


def literal_text(pattern: Pattern) -> str:
    """The pattern as plain text, wildcards read literally (for StringEquals and friends)."""
    return "".join(p.value if isinstance(p, Wild) else p for p in pattern if not isinstance(p, Var))


def pattern_regex(pattern: Pattern) -> str:
    return "".join(
        ".*"
        if p is Wild.STAR
        else "."
        if p is Wild.QMARK
        else re.escape(p)
        if isinstance(p, str)
        else ""
        for p in pattern
    )


def arn_pattern_regex(pattern: Pattern) -> str:
    """Like `pattern_regex`, but wildcards in the first five ARN components stop at `:`."""
    out: list[str] = []
    colons = 0
    for p in pattern:
        if isinstance(p, str):
            out.append(re.escape(p))
            colons += p.count(":")
        elif p is Wild.STAR:
            out.append(".*" if colons >= 5 else "[^:]*")
        elif p is Wild.QMARK:
            out.append("." if colons >= 5 else "[^:]")
    if colons < 5:
        return "(?!)"  # not an ARN pattern (six components): matches nothing
    return "".join(out)


class GlobSet:
    """A set of wildcard patterns matched as one alternation: true when any pattern matches."""

    __slots__ = ("_compiled", "_dynamic", "_flags", "_regex", "_static", "_to_regex", "match_all")

    def __init__(
        self,
        patterns: Sequence[Pattern],
        *,
        ignore_case: bool = False,
        arn: bool = False,
    ) -> None:
        self._flags = re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL
        self._to_regex = arn_pattern_regex if arn else pattern_regex
        static = [p for p in patterns if not has_variables(p)]
        self._dynamic = tuple(p for p in patterns if has_variables(p))
        self.match_all = not arn and any(p == (Wild.STAR,) for p in static)
        self._static = bool(static)
        self._regex = (
            re.compile("|".join(f"(?:{self._to_regex(p)})" for p in static), self._flags)
            if static
            else None
        )
        # Substituted patterns seen so far (one per distinct identity), bounded; owned by this
        # document object, so it dies with the policy it belongs to.
        self._compiled: dict[Pattern, re.Pattern[str]] = {}

    @property
    def has_variables(self) -> bool:
        return bool(self._dynamic)

    def matches(self, value: str, lookup: Lookup | None = None) -> bool:
        if self.match_all:
            return True
        if self._regex is not None and self._regex.fullmatch(value) is not None:
            return True
        for pattern in self._dynamic:
            concrete = substitute(pattern, lookup) if lookup is not None else None
            if concrete is None:
                continue
            regex = self._compiled.get(concrete)
            if regex is None:
                if len(self._compiled) >= _MAX_COMPILED:
                    self._compiled.clear()
                regex = self._compiled[concrete] = re.compile(self._to_regex(concrete), self._flags)
            if regex.fullmatch(value) is not None:
                return True
        return False
