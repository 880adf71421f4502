from __future__ import annotations

import string
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretsd.errors import ServiceError
from secretsd.service.passwords import PUNCTUATION, TOO_SHORT_MESSAGE, generate_password

CLASSES = {
    "upper": string.ascii_uppercase,
    "lower": string.ascii_lowercase,
    "digit": string.digits,
    "punct": PUNCTUATION,
}


def classes_in(password: str) -> set[str]:
    return {name for name, chars in CLASSES.items() if any(c in chars for c in password)}


def test_punctuation_is_the_documented_set() -> None:
    assert PUNCTUATION == "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    assert set(PUNCTUATION) == set(string.punctuation)


def test_default_length_and_alphabet() -> None:
    password = generate_password()
    assert len(password) == 32
    assert set(password) <= set("".join(CLASSES.values()))
    assert classes_in(password) == set(CLASSES)


@pytest.mark.parametrize("length", [1, 4, 5, 100, 4096])
def test_lengths(length: int) -> None:
    kwargs = {"exclude_numbers": True, "exclude_punctuation": True, "exclude_uppercase": True}
    assert len(generate_password(length, **kwargs)) == length  # type: ignore[arg-type]
    if length >= 4:
        assert len(generate_password(length)) == length


def test_validated_exclude_characters() -> None:
    # LocalStack test_get_random_exclude_characters_and_symbols, validated against AWS.
    password = generate_password(120, exclude_characters="xyzDje@?!.")
    assert len(password) == 120
    assert not set(password) & set("xyzDje@?!.")


@pytest.mark.parametrize(
    ("flag", "cls"),
    [
        ("exclude_numbers", "digit"),
        ("exclude_punctuation", "punct"),
        ("exclude_uppercase", "upper"),
        ("exclude_lowercase", "lower"),
    ],
)
def test_each_exclusion_flag(flag: str, cls: str) -> None:
    for _ in range(20):
        password = generate_password(64, **{flag: True})  # type: ignore[arg-type]
        assert classes_in(password) == set(CLASSES) - {cls}


def test_space_only_when_included() -> None:
    assert " " not in "".join(generate_password(200) for _ in range(10))
    with_space = "".join(generate_password(200, include_space=True) for _ in range(10))
    assert " " in with_space
    assert " " not in generate_password(200, include_space=True, exclude_characters=" ")


def test_space_is_not_a_required_type() -> None:
    # Four required classes fill a 4-character password; a space does not have to fit too.
    for _ in range(50):
        password = generate_password(4, include_space=True)
        assert classes_in(password) == set(CLASSES)


def test_only_space() -> None:
    kwargs = {
        "exclude_numbers": True,
        "exclude_punctuation": True,
        "exclude_uppercase": True,
        "exclude_lowercase": True,
        "include_space": True,
    }
    assert generate_password(5, **kwargs) == "     "  # type: ignore[arg-type]


def test_required_types_at_minimum_length() -> None:
    for _ in range(200):
        assert classes_in(generate_password(4)) == set(CLASSES)


def test_not_required_allows_shorter_than_type_count() -> None:
    for _ in range(20):
        password = generate_password(2, require_each_included_type=False)
        assert len(password) == 2


def test_class_emptied_by_exclude_characters_is_not_required() -> None:
    password = generate_password(3, exclude_characters=string.digits)
    assert not set(password) & set(string.digits)
    with pytest.raises(ServiceError):
        generate_password(2, exclude_characters=string.digits)


@pytest.mark.parametrize("length", [1, 2, 3])
def test_too_short_for_required_types(length: int) -> None:
    with pytest.raises(ServiceError) as info:
        generate_password(length)
    assert (info.value.code, info.value.message) == ("InvalidParameterException", TOO_SHORT_MESSAGE)


def test_everything_excluded() -> None:
    with pytest.raises(ServiceError) as info:
        generate_password(
            10,
            exclude_numbers=True,
            exclude_punctuation=True,
            exclude_uppercase=True,
            exclude_lowercase=True,
        )
    assert info.value.code == "InvalidParameterException"
    with pytest.raises(ServiceError) as info:
        generate_password(10, exclude_characters="".join(CLASSES.values()))
    assert info.value.code == "InvalidParameterException"


@pytest.mark.parametrize(
    ("length", "bound"), [(0, "greater than or equal to 1"), (4097, "less than or equal to 4096")]
)
def test_length_guard(length: int, bound: str) -> None:
    with pytest.raises(ServiceError) as info:
        generate_password(length)
    assert info.value.code == "ValidationException"
    assert info.value.message == (
        f"1 validation error detected: Value '{length}' at 'passwordLength' "
        f"failed to satisfy constraint: Member must have value {bound}"
    )


def test_distribution_is_roughly_uniform() -> None:
    # 4096 * 25 draws over 94 characters: about 1089 each; the required-type placement adds
    # at most 25 per class, far inside the tolerance.
    counts = Counter("".join(generate_password(4096) for _ in range(25)))
    assert len(counts) == 94
    expected = 4096 * 25 / 94
    assert all(0.8 * expected < count < 1.2 * expected for count in counts.values())


def test_required_characters_land_anywhere() -> None:
    # With only lower case allowed plus one required digit, the digit's position must vary.
    positions = set()
    for _ in range(200):
        password = generate_password(
            8, exclude_uppercase=True, exclude_punctuation=True, exclude_characters="123456789"
        )
        if password.count("0") == 1:
            positions.add(password.index("0"))
    assert len(positions) == 8


@settings(max_examples=200, deadline=None)
@given(
    length=st.integers(min_value=4, max_value=300),
    exclude=st.text(alphabet=string.printable, max_size=40),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    require=st.booleans(),
)
def test_password_honours_every_option(
    length: int, exclude: str, flags: tuple[bool, bool, bool, bool, bool], require: bool
) -> None:
    no_numbers, no_punct, no_upper, no_lower, space = flags
    allowed = {
        "upper": "" if no_upper else CLASSES["upper"],
        "lower": "" if no_lower else CLASSES["lower"],
        "digit": "" if no_numbers else CLASSES["digit"],
        "punct": "" if no_punct else CLASSES["punct"],
    }
    kept = {name: "".join(c for c in chars if c not in exclude) for name, chars in allowed.items()}
    alphabet = "".join(kept.values()) + (" " if space and " " not in exclude else "")
    try:
        password = generate_password(
            length,
            exclude_characters=exclude,
            exclude_numbers=no_numbers,
            exclude_punctuation=no_punct,
            exclude_uppercase=no_upper,
            exclude_lowercase=no_lower,
            include_space=space,
            require_each_included_type=require,
        )
    except ServiceError as error:
        assert error.code == "InvalidParameterException"
        assert not alphabet
        return
    assert len(password) == length
    assert set(password) <= set(alphabet)
    if require:
        assert classes_in(password) >= {name for name, chars in kept.items() if chars}
