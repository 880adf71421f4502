"""GetRandomPassword.

The character classes and defaults follow the API reference (botocore model docs): upper and
lower case ASCII letters, digits and the 32 punctuation characters below; space only with
IncludeSpace. RequireEachIncludedType is documented as "at least one upper and lowercase letter,
one number, and one punctuation", so space is an allowed character but never a required type.
"""

from __future__ import annotations

import secrets
import string

from secretsd.errors import ServiceError

PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
MIN_LENGTH = 1
MAX_LENGTH = 4096

# [U] moto's placeholder; AWS's wording for an impossible request has not been recorded.
TOO_SHORT_MESSAGE = "Password length is too short based on the required types."
# [U] our own wording: neither AWS nor moto records a response for an empty alphabet.
NOTHING_LEFT_MESSAGE = "The password can't be generated because every character is excluded."


def generate_password(
    length: int = 32,
    exclude_characters: str = "",
    exclude_numbers: bool = False,
    exclude_punctuation: bool = False,
    exclude_uppercase: bool = False,
    exclude_lowercase: bool = False,
    include_space: bool = False,
    require_each_included_type: bool = True,
) -> str:
    _check_length(length)
    excluded = set(exclude_characters)
    classes = [
        chars
        for chars, wanted in (
            (string.ascii_uppercase, not exclude_uppercase),
            (string.ascii_lowercase, not exclude_lowercase),
            (string.digits, not exclude_numbers),
            (PUNCTUATION, not exclude_punctuation),
        )
        if wanted
    ]
    # A class emptied by ExcludeCharacters cannot be required; it simply drops out.
    required = [kept for kept in (_without(chars, excluded) for chars in classes) if kept]
    alphabet = "".join(required)
    if include_space and " " not in excluded:
        alphabet += " "
    if not alphabet:
        raise ServiceError("InvalidParameterException", NOTHING_LEFT_MESSAGE)
    if not require_each_included_type:
        required = []
    if length < len(required):
        raise ServiceError("InvalidParameterException", TOO_SHORT_MESSAGE)

    # One character from each required class, the rest uniform over the whole alphabet, then a
    # shuffle so the required characters sit at uniformly random positions.
    chars = [secrets.choice(kept) for kept in required]
    chars.extend(secrets.choice(alphabet) for _ in range(length - len(required)))
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def _without(chars: str, excluded: set[str]) -> str:
    return "".join(char for char in chars if char not in excluded)


def _check_length(length: int) -> None:
    # The model validator enforces this range first; the guard keeps direct callers honest.
    if length < MIN_LENGTH:
        constraint = f"Member must have value greater than or equal to {MIN_LENGTH}"
    elif length > MAX_LENGTH:
        constraint = f"Member must have value less than or equal to {MAX_LENGTH}"
    else:
        return
    raise ServiceError(
        "ValidationException",
        f"1 validation error detected: Value '{length}' at 'passwordLength' "
        f"failed to satisfy constraint: {constraint}",
    )
