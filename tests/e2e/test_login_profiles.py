"""IAM login profiles (console passwords) through boto3: AWS's shapes, errors and conflicts."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.factories import ClientFactory
from support.names import NameFactory


@pytest.fixture
def iam(client_factory: ClientFactory) -> Any:
    return client_factory("iam")


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_login_profile_lifecycle(iam: Any, unique_name: NameFactory) -> None:
    user = unique_name("u")
    iam.create_user(UserName=user)
    created = iam.create_login_profile(
        UserName=user, Password="Correct-Horse-1", PasswordResetRequired=True
    )["LoginProfile"]
    assert created["UserName"] == user
    assert created["PasswordResetRequired"] is True
    got = iam.get_login_profile(UserName=user.upper())["LoginProfile"]
    assert got["UserName"] == user
    assert got["CreateDate"] == created["CreateDate"]

    with pytest.raises(ClientError) as exc:
        iam.create_login_profile(UserName=user, Password="Correct-Horse-2")
    assert _error(exc) == (
        "EntityAlreadyExists",
        f"Login Profile for user {user} already exists.",
        409,
    )

    iam.update_login_profile(UserName=user, PasswordResetRequired=False)
    assert iam.get_login_profile(UserName=user)["LoginProfile"]["PasswordResetRequired"] is False

    with pytest.raises(ClientError) as exc:
        iam.delete_user(UserName=user)
    assert _error(exc) == (
        "DeleteConflict",
        "Cannot delete entity, must delete login profile first.",
        409,
    )
    iam.delete_login_profile(UserName=user)
    with pytest.raises(ClientError) as exc:
        iam.get_login_profile(UserName=user)
    assert _error(exc) == ("NoSuchEntity", f"Login Profile for User {user} cannot be found.", 404)
    iam.delete_user(UserName=user)


@pytest.mark.parametrize("password", ["short1A", "alllowercaseletters", "12345678901"])
def test_weak_passwords_are_refused(iam: Any, unique_name: NameFactory, password: str) -> None:
    user = unique_name("u")
    iam.create_user(UserName=user)
    with pytest.raises(ClientError) as exc:
        iam.create_login_profile(UserName=user, Password=password)
    assert _error(exc) == (
        "PasswordPolicyViolation",
        "Password does not conform to the account password policy.",
        400,
    )
    with pytest.raises(ClientError) as exc:
        iam.get_login_profile(UserName=user)
    assert _error(exc)[0] == "NoSuchEntity"


def test_unknown_user_and_missing_profile(iam: Any, unique_name: NameFactory) -> None:
    ghost = unique_name("ghost")
    with pytest.raises(ClientError) as exc:
        iam.create_login_profile(UserName=ghost, Password="Correct-Horse-1")
    assert _error(exc) == ("NoSuchEntity", f"The user with name {ghost} cannot be found.", 404)
    user = unique_name("u")
    iam.create_user(UserName=user)
    for call in (iam.update_login_profile, iam.delete_login_profile):
        kwargs: dict[str, Any] = {"UserName": user}
        if call is iam.update_login_profile:
            kwargs["Password"] = "Correct-Horse-1"
        with pytest.raises(ClientError) as exc:
            call(**kwargs)
        assert _error(exc) == (
            "NoSuchEntity",
            f"Login Profile for User {user} cannot be found.",
            404,
        )


def test_a_user_without_iam_rights_cannot_set_passwords(
    iam: Any, client_factory: ClientFactory, unique_name: NameFactory
) -> None:
    from support.server import Credentials

    user = unique_name("u")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    theirs = client_factory(
        "iam", credentials=Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    )
    with pytest.raises(ClientError) as exc:
        theirs.create_login_profile(UserName=user, Password="Correct-Horse-1")
    code, message, status = _error(exc)
    assert (code, status) == ("AccessDenied", 403)
    assert "iam:CreateLoginProfile" in message
