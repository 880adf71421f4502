"""The IAM API (query protocol, XML) through the AWS CLI and boto3, on both backends."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from support import canary
from support.factories import AwsCli, ClientFactory
from support.names import NameFactory
from support.server import Credentials, ServerProcess

SM_READ_WRITE = "arn:aws:iam::aws:policy/SecretsManagerReadWrite"
ALLOW_ALL = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = exc.value.response
    return (
        str(response["Error"]["Code"]),
        str(response["Error"]["Message"]),
        int(response["ResponseMetadata"]["HTTPStatusCode"]),
    )


def _trust(principal: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _creds(key: dict[str, Any]) -> Credentials:
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


@pytest.fixture
def iam(client_factory: ClientFactory) -> Any:
    return client_factory("iam")


def test_cli_user_and_access_key_lifecycle(aws_cli: AwsCli, unique_name: NameFactory) -> None:
    name = unique_name()
    created = aws_cli("iam", "create-user", "--user-name", name, "--path", "/team/")
    assert created.returncode == 0, created.stderr
    user = created.output["User"]
    assert user["UserName"] == name and user["Path"] == "/team/"
    assert user["UserId"].startswith("AIDA") and len(user["UserId"]) == 21
    assert user["Arn"].endswith(f":user/team/{name}")
    assert aws_cli("iam", "get-user", "--user-name", name).output["User"] == user
    listed = aws_cli("iam", "list-users", "--path-prefix", "/team/").output["Users"]
    assert user in listed

    key = aws_cli("iam", "create-access-key", "--user-name", name).output["AccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and len(key["AccessKeyId"]) == 20
    assert len(key["SecretAccessKey"]) == 40 and key["Status"] == "Active"
    metadata = aws_cli("iam", "list-access-keys", "--user-name", name).output["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in metadata] == [key["AccessKeyId"]]
    used = aws_cli("iam", "get-access-key-last-used", "--access-key-id", key["AccessKeyId"])
    assert used.output["UserName"] == name
    assert used.output["AccessKeyLastUsed"] == {"ServiceName": "N/A", "Region": "N/A"}
    assert "SecretAccessKey" not in metadata[0]  # shown once, at creation only
    updated = aws_cli(
        "iam", "update-access-key", "--user-name", name, "--access-key-id", key["AccessKeyId"],
        "--status", "Inactive",
    )  # fmt: skip
    assert updated.returncode == 0, updated.stderr
    metadata = aws_cli("iam", "list-access-keys", "--user-name", name).output["AccessKeyMetadata"]
    assert metadata[0]["Status"] == "Inactive"

    conflict = aws_cli("iam", "delete-user", "--user-name", name)
    assert conflict.returncode != 0
    assert "(DeleteConflict)" in conflict.stderr
    assert "Cannot delete entity, must delete access keys first." in conflict.stderr
    deleted = aws_cli(
        "iam", "delete-access-key", "--user-name", name, "--access-key-id", key["AccessKeyId"]
    )
    assert deleted.returncode == 0, deleted.stderr
    assert aws_cli("iam", "delete-user", "--user-name", name).returncode == 0
    gone = aws_cli("iam", "get-user", "--user-name", name)
    assert "(NoSuchEntity)" in gone.stderr
    assert f"The user with name {name} cannot be found." in gone.stderr


def test_cli_attach_aws_managed_policy_and_read_its_document(
    aws_cli: AwsCli, unique_name: NameFactory
) -> None:
    name = unique_name()
    assert aws_cli("iam", "create-user", "--user-name", name).returncode == 0
    attached = aws_cli(
        "iam", "attach-user-policy", "--user-name", name, "--policy-arn", SM_READ_WRITE
    )
    assert attached.returncode == 0, attached.stderr
    listing = aws_cli("iam", "list-attached-user-policies", "--user-name", name).output
    assert listing["AttachedPolicies"] == [
        {"PolicyName": "SecretsManagerReadWrite", "PolicyArn": SM_READ_WRITE}
    ]
    policy = aws_cli("iam", "get-policy", "--policy-arn", SM_READ_WRITE).output["Policy"]
    assert policy["PolicyName"] == "SecretsManagerReadWrite" and policy["IsAttachable"] is True
    assert policy["AttachmentCount"] >= 1
    version = aws_cli(
        "iam", "get-policy-version", "--policy-arn", SM_READ_WRITE,
        "--version-id", policy["DefaultVersionId"],
    ).output["PolicyVersion"]  # fmt: skip
    assert version["IsDefaultVersion"] is True
    actions = version["Document"]["Statement"][0]["Action"]
    assert "secretsmanager:*" in actions
    detached = aws_cli(
        "iam", "detach-user-policy", "--user-name", name, "--policy-arn", SM_READ_WRITE
    )
    assert detached.returncode == 0, detached.stderr
    again = aws_cli("iam", "detach-user-policy", "--user-name", name, "--policy-arn", SM_READ_WRITE)
    assert "(NoSuchEntity)" in again.stderr


def test_created_key_works_for_secrets_manager_only_with_a_policy(
    iam: Any, client_factory: ClientFactory, unique_name: NameFactory
) -> None:
    name = unique_name()
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    sm = client_factory("secretsmanager", credentials=_creds(key))
    with pytest.raises(ClientError) as exc:
        sm.list_secrets()
    code, message, _ = _error(exc)
    assert code == "AccessDeniedException"
    assert message.startswith(f"User: {iam.get_user(UserName=name)['User']['Arn']} is not")
    iam.attach_user_policy(UserName=name, PolicyArn=SM_READ_WRITE)
    secret = unique_name("s")
    sm.create_secret(Name=secret, SecretString="v")
    assert sm.get_secret_value(SecretId=secret)["SecretString"] == "v"
    iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=secret)
    assert _error(exc)[0] == "UnrecognizedClientException"


def test_user_without_iam_permissions_is_denied(
    iam: Any, client_factory: ClientFactory, unique_name: NameFactory
) -> None:
    name = unique_name()
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    own = client_factory("iam", credentials=_creds(key))
    account = iam.get_user(UserName=name)["User"]["Arn"].split(":")[4]
    with pytest.raises(ClientError) as exc:
        own.create_user(UserName=f"{name}x")
    assert _error(exc) == (
        "AccessDenied",
        f"User: arn:aws:iam::{account}:user/{name} is not authorized to perform: iam:CreateUser"
        f" on resource: arn:aws:iam::{account}:user/{name}x because no identity-based policy"
        " allows the iam:CreateUser action",
        403,
    )
    # Names match ignoring case; the resource is the stored user's ARN.
    own_arn = f"arn:aws:iam::{account}:user/{name}"
    statement = {"Effect": "Allow", "Action": "iam:GetUser", "Resource": own_arn}
    iam.put_user_policy(
        UserName=name,
        PolicyName="self",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )
    assert own.get_user(UserName=name.upper())["User"]["Arn"] == own_arn
    iam.put_user_policy(UserName=name, PolicyName="all", PolicyDocument=ALLOW_ALL)
    # GetUser without UserName answers for the caller.
    assert own.get_user()["User"]["UserName"] == name


def test_secret_access_key_is_stored_sealed(
    iam: Any, server: ServerProcess, unique_name: NameFactory
) -> None:
    name = unique_name()
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    secret = key["SecretAccessKey"]
    rows = canary.query(
        server.database_url,
        server.data_dir,
        # The id is the server's own (AKIA + base-32), not free text.
        f"SELECT * FROM access_keys WHERE access_key_id = '{key['AccessKeyId']}'",  # noqa: S608
    )
    assert len(rows) == 1
    for value in rows[0]:
        raw = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
        assert secret.encode() not in raw
    if server.database_url is None:
        for path in server.data_dir.glob("secretsd.db*"):
            assert secret.encode() not in path.read_bytes(), path


def test_validation_and_duplicate_names(iam: Any, unique_name: NameFactory) -> None:
    name = unique_name()
    iam.create_user(UserName=name)
    with pytest.raises(ClientError) as exc:
        iam.create_user(UserName=name.upper())
    assert _error(exc) == (
        "EntityAlreadyExists",
        f"User with name {name.upper()} already exists.",
        409,
    )
    with pytest.raises(ClientError) as exc:
        iam.create_user(UserName="has space")
    assert _error(exc) == (
        "ValidationError",
        "1 validation error detected: Value 'has space' at 'userName' failed to satisfy"
        " constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+",
        400,
    )
    with pytest.raises(ClientError) as exc:
        iam.create_user(UserName="x" * 65)
    assert _error(exc)[1] == (
        f"1 validation error detected: Value '{'x' * 65}' at 'userName' failed to satisfy"
        " constraint: Member must have length less than or equal to 64"
    )


def test_access_key_quota_and_unknown_key(iam: Any, unique_name: NameFactory) -> None:
    name = unique_name()
    iam.create_user(UserName=name)
    iam.create_access_key(UserName=name)
    iam.create_access_key(UserName=name)
    with pytest.raises(ClientError) as exc:
        iam.create_access_key(UserName=name)
    assert _error(exc) == ("LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2", 409)
    with pytest.raises(ClientError) as exc:
        iam.delete_access_key(UserName=name, AccessKeyId="AKIAAAAAAAAAAAAAAAAA")
    assert _error(exc) == (
        "NoSuchEntity",
        "The Access Key with id AKIAAAAAAAAAAAAAAAAA cannot be found.",
        404,
    )


def test_delete_user_conflicts_in_order(iam: Any, unique_name: NameFactory) -> None:
    name, group = unique_name(), unique_name("g")
    iam.create_user(UserName=name)
    iam.create_group(GroupName=group)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=ALLOW_ALL)
    iam.attach_user_policy(UserName=name, PolicyArn=SM_READ_WRITE)
    iam.add_user_to_group(GroupName=group, UserName=name)
    expected = [
        ("Cannot delete entity, must delete policies first.",
         lambda: iam.delete_user_policy(UserName=name, PolicyName="p")),
        ("Cannot delete entity, must detach all policies first.",
         lambda: iam.detach_user_policy(UserName=name, PolicyArn=SM_READ_WRITE)),
        ("Cannot delete entity, must remove users from group first.",
         lambda: iam.remove_user_from_group(GroupName=group, UserName=name)),
    ]  # fmt: skip
    for message, clear in expected:
        with pytest.raises(ClientError) as exc:
            iam.delete_user(UserName=name)
        assert _error(exc) == ("DeleteConflict", message, 409)
        clear()
    iam.delete_user(UserName=name)
    iam.delete_group(GroupName=group)


def test_inline_user_policies(iam: Any, unique_name: NameFactory) -> None:
    name = unique_name()
    iam.create_user(UserName=name)
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "secretsmanager:Get*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=json.dumps(document))
    got = iam.get_user_policy(UserName=name, PolicyName="read")
    assert got["PolicyDocument"] == document and got["UserName"] == name
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["read"]
    with pytest.raises(ClientError) as exc:
        iam.put_user_policy(UserName=name, PolicyName="bad", PolicyDocument="{not json")
    assert _error(exc) == ("MalformedPolicyDocument", "Syntax errors in policy.", 400)
    huge = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": f"secretsmanager:Get{'x' * 40}{i}", "Resource": "*"}
            for i in range(40)
        ],
    }
    with pytest.raises(ClientError) as exc:
        iam.put_user_policy(UserName=name, PolicyName="big", PolicyDocument=json.dumps(huge))
    assert _error(exc) == (
        "LimitExceeded",
        f"Maximum policy size of 2048 bytes exceeded for user {name}",
        409,
    )
    iam.delete_user_policy(UserName=name, PolicyName="read")
    with pytest.raises(ClientError) as exc:
        iam.get_user_policy(UserName=name, PolicyName="read")
    assert _error(exc) == ("NoSuchEntity", "The user policy with name read cannot be found.", 404)


def test_groups_members_and_policies(iam: Any, unique_name: NameFactory) -> None:
    group, alice, bob = unique_name("g"), unique_name("a"), unique_name("b")
    created = iam.create_group(GroupName=group)["Group"]
    assert created["GroupId"].startswith("AGPA") and created["Arn"].endswith(f":group/{group}")
    with pytest.raises(ClientError) as exc:
        iam.create_group(GroupName=group)
    assert _error(exc) == ("EntityAlreadyExists", f"Group with name {group} already exists.", 409)
    for user in (alice, bob):
        iam.create_user(UserName=user)
        iam.add_user_to_group(GroupName=group, UserName=user)
    members = iam.get_group(GroupName=group)
    assert members["Group"]["GroupName"] == group
    assert sorted(u["UserName"] for u in members["Users"]) == sorted([alice, bob])
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName=alice)["Groups"]] == [group]
    assert group in [g["GroupName"] for g in iam.list_groups()["Groups"]]
    iam.put_group_policy(GroupName=group, PolicyName="gp", PolicyDocument=ALLOW_ALL)
    assert iam.get_group_policy(GroupName=group, PolicyName="gp")["GroupName"] == group
    iam.attach_group_policy(GroupName=group, PolicyArn=SM_READ_WRITE)
    assert (
        iam.list_attached_group_policies(GroupName=group)["AttachedPolicies"][0]["PolicyArn"]
        == SM_READ_WRITE
    )
    with pytest.raises(ClientError) as exc:
        iam.delete_group(GroupName=group)
    assert _error(exc) == (
        "DeleteConflict",
        "Cannot delete entity, must remove users from group first.",
        409,
    )
    for user in (alice, bob):
        iam.remove_user_from_group(GroupName=group, UserName=user)
    assert iam.list_groups_for_user(UserName=alice)["Groups"] == []
    with pytest.raises(ClientError) as exc:
        iam.delete_group(GroupName=group)
    assert _error(exc)[1] == "Cannot delete entity, must delete policies first."
    iam.delete_group_policy(GroupName=group, PolicyName="gp")
    iam.detach_group_policy(GroupName=group, PolicyArn=SM_READ_WRITE)
    iam.delete_group(GroupName=group)
    with pytest.raises(ClientError) as exc:
        iam.get_group(GroupName=group)
    assert _error(exc) == ("NoSuchEntity", f"The group with name {group} cannot be found.", 404)


def test_roles(
    iam: Any, aws_cli: AwsCli, client_factory: ClientFactory, unique_name: NameFactory
) -> None:
    name = unique_name("r")
    account = iam.get_user()["User"]["Arn"].split(":")[4]
    trust = _trust(f"arn:aws:iam::{account}:root")
    created = aws_cli(
        "iam", "create-role", "--role-name", name, "--assume-role-policy-document", trust,
        "--description", "test role", "--max-session-duration", "7200",
        "--tags", "Key=env,Value=dev",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    role = created.output["Role"]
    assert role["RoleId"].startswith("AROA") and role["Arn"].endswith(f":role/{name}")
    assert role["AssumeRolePolicyDocument"] == json.loads(trust)
    got = iam.get_role(RoleName=name)["Role"]
    assert got["MaxSessionDuration"] == 7200 and got["Description"] == "test role"
    assert got["Tags"] == [{"Key": "env", "Value": "dev"}]
    assert got["RoleLastUsed"] == {}
    iam.tag_role(RoleName=name, Tags=[{"Key": "owner", "Value": "me"}])
    assert iam.list_role_tags(RoleName=name)["Tags"] == [
        {"Key": "env", "Value": "dev"},
        {"Key": "owner", "Value": "me"},
    ]
    iam.untag_role(RoleName=name, TagKeys=["env"])
    assert iam.list_role_tags(RoleName=name)["Tags"] == [{"Key": "owner", "Value": "me"}]
    assert name in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
    assert _error(exc) == ("EntityAlreadyExists", f"Role with name {name} already exists.", 409)
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName=unique_name("r"), AssumeRolePolicyDocument="[]")
    assert _error(exc)[0] == "MalformedPolicyDocument" and _error(exc)[2] == 400
    unchecked = client_factory("iam", config=Config(parameter_validation=False))
    with pytest.raises(ClientError) as exc:
        unchecked.create_role(
            RoleName=unique_name("r"), AssumeRolePolicyDocument=trust, MaxSessionDuration=60
        )
    assert _error(exc) == (
        "ValidationError",
        "1 validation error detected: Value '60' at 'maxSessionDuration' failed to satisfy"
        " constraint: Member must have value greater than or equal to 3600",
        400,
    )
    # Principals are resolved when the trust policy is saved.
    for principal in (
        f"arn:aws:iam::{account}:user/{unique_name('nobody')}",
        f"arn:aws:iam::{account}:role/*",
        "arn:aws:iam::000000000000:root",
    ):
        with pytest.raises(ClientError) as exc:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=_trust(principal))
        assert _error(exc) == (
            "MalformedPolicyDocument",
            f'Invalid principal in policy: "AWS":"{principal}"',
            400,
        )
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=_trust(account))
    iam.put_role_policy(RoleName=name, PolicyName="rp", PolicyDocument=ALLOW_ALL)
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["rp"]
    iam.attach_role_policy(RoleName=name, PolicyArn=SM_READ_WRITE)
    with pytest.raises(ClientError) as exc:
        iam.delete_role(RoleName=name)
    assert _error(exc) == (
        "DeleteConflict",
        "Cannot delete entity, must delete policies first.",
        409,
    )
    iam.delete_role_policy(RoleName=name, PolicyName="rp")
    with pytest.raises(ClientError) as exc:
        iam.delete_role(RoleName=name)
    assert _error(exc)[1] == "Cannot delete entity, must detach all policies first."
    iam.detach_role_policy(RoleName=name, PolicyArn=SM_READ_WRITE)
    iam.delete_role(RoleName=name)
    with pytest.raises(ClientError) as exc:
        iam.get_role(RoleName=name)
    assert _error(exc) == ("NoSuchEntity", f"The role with name {name} cannot be found.", 404)


def test_customer_managed_policies(iam: Any, aws_cli: AwsCli, unique_name: NameFactory) -> None:
    name, user = unique_name("p"), unique_name("u")
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "secretsmanager:List*", "Resource": "*"}],
    }
    created = aws_cli(
        "iam", "create-policy", "--policy-name", name, "--path", "/app/",
        "--policy-document", json.dumps(document), "--description", "lists",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    policy = created.output["Policy"]
    arn = policy["Arn"]
    assert arn.endswith(f":policy/app/{name}") and policy["PolicyId"].startswith("ANPA")
    assert policy["DefaultVersionId"] == "v1" and policy["AttachmentCount"] == 0
    with pytest.raises(ClientError) as exc:
        iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))
    assert _error(exc) == (
        "EntityAlreadyExists",
        f"A policy called {name} already exists. Duplicate names are not allowed.",
        409,
    )
    got = iam.get_policy(PolicyArn=arn)["Policy"]
    assert got["Description"] == "lists"
    versions = aws_cli("iam", "list-policy-versions", "--policy-arn", arn).output["Versions"]
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in versions] == [("v1", True)]
    version = aws_cli("iam", "get-policy-version", "--policy-arn", arn, "--version-id", "v1")
    assert version.output["PolicyVersion"]["Document"] == document
    local = [p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]]
    assert arn in local and SM_READ_WRITE not in local
    aws = [p["Arn"] for p in iam.list_policies(Scope="AWS")["Policies"]]
    assert SM_READ_WRITE in aws and arn not in aws
    iam.create_user(UserName=user)
    iam.attach_user_policy(UserName=user, PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    with pytest.raises(ClientError) as exc:
        iam.delete_policy(PolicyArn=arn)
    assert _error(exc) == ("DeleteConflict", "Cannot delete a policy attached to entities.", 409)
    iam.detach_user_policy(UserName=user, PolicyArn=arn)
    iam.delete_policy(PolicyArn=arn)
    with pytest.raises(ClientError) as exc:
        iam.get_policy(PolicyArn=arn)
    assert _error(exc) == ("NoSuchEntity", f"Policy {arn} was not found.", 404)
    with pytest.raises(ClientError) as exc:
        iam.attach_user_policy(UserName=user, PolicyArn=arn)
    assert _error(exc) == (
        "NoSuchEntity",
        f"Policy {arn} does not exist or is not attachable.",
        404,
    )
    with pytest.raises(ClientError) as exc:
        iam.create_policy(PolicyName=unique_name("p"), PolicyDocument='{"Statement": 5}')
    assert _error(exc)[0] == "MalformedPolicyDocument"


def test_user_tags(iam: Any, unique_name: NameFactory) -> None:
    name = unique_name()
    created = iam.create_user(UserName=name, Tags=[{"Key": "team", "Value": "a"}])["User"]
    assert created["Tags"] == [{"Key": "team", "Value": "a"}]
    iam.tag_user(UserName=name, Tags=[{"Key": "team", "Value": "b"}, {"Key": "cc", "Value": "1"}])
    assert iam.list_user_tags(UserName=name)["Tags"] == [
        {"Key": "team", "Value": "b"},
        {"Key": "cc", "Value": "1"},
    ]
    iam.untag_user(UserName=name, TagKeys=["team"])
    assert iam.get_user(UserName=name)["User"]["Tags"] == [{"Key": "cc", "Value": "1"}]


def test_list_users_pages(iam: Any, unique_name: NameFactory) -> None:
    path = f"/{unique_name()}/"
    names = sorted(unique_name(str(i)) for i in range(3))
    for name in names:
        iam.create_user(UserName=name, Path=path)
    first = iam.list_users(PathPrefix=path, MaxItems=2)
    assert first["IsTruncated"] is True and len(first["Users"]) == 2
    second = iam.list_users(PathPrefix=path, MaxItems=2, Marker=first["Marker"])
    assert second["IsTruncated"] is False
    seen = [u["UserName"] for u in first["Users"] + second["Users"]]
    assert seen == sorted(names, key=str.lower)
    paged = [
        u["UserName"]
        for page in iam.get_paginator("list_users").paginate(
            PathPrefix=path, PaginationConfig={"PageSize": 1}
        )
        for u in page["Users"]
    ]
    assert paged == seen


def test_unknown_entities_are_404(iam: Any, unique_name: NameFactory) -> None:
    missing = unique_name()
    calls = {
        f"The user with name {missing} cannot be found.": lambda: iam.create_access_key(
            UserName=missing
        ),
        f"The group with name {missing} cannot be found.": lambda: iam.add_user_to_group(
            GroupName=missing, UserName=missing
        ),
        f"The role with name {missing} cannot be found.": lambda: iam.put_role_policy(
            RoleName=missing, PolicyName="p", PolicyDocument=ALLOW_ALL
        ),
    }
    for message, call in calls.items():
        with pytest.raises(ClientError) as exc:
            call()
        assert _error(exc) == ("NoSuchEntity", message, 404)


def test_raw_query_request_without_action_is_invalid(
    client_factory: ClientFactory, server: ServerProcess
) -> None:
    # An Action IAM does not have, signed by botocore for iam: AWS's InvalidAction.
    iam = client_factory("iam")
    iam.meta.events.register(
        "before-sign.iam.ListUsers",
        lambda request, **_: setattr(request, "data", {"Action": "NoSuchThing"}),
    )
    with pytest.raises(ClientError) as exc:
        iam.list_users()
    assert _error(exc)[0] == "InvalidAction" and _error(exc)[2] == 400


def test_body_too_large_is_refused_in_xml(client_factory: ClientFactory) -> None:
    unchecked = client_factory("iam", config=Config(parameter_validation=False))
    with pytest.raises(ClientError) as exc:
        unchecked.put_user_policy(UserName="u", PolicyName="p", PolicyDocument="x" * 1_100_000)
    code, message, status = _error(exc)
    assert (code, status) == ("RequestEntityTooLarge", 413)
    assert message == "Request body exceeds the maximum allowed size of 1048576 bytes."


def test_key_quota_holds_under_concurrent_creates(
    server_factory: Any, client_factory: ClientFactory, unique_name: NameFactory
) -> None:
    server = server_factory(extra_args=["--workers", "4"])
    iam = client_factory("iam", server=server)
    names = [unique_name(str(i)) for i in range(4)]
    for name in names:
        iam.create_user(UserName=name)
    clients = [client_factory("iam", server=server) for _ in range(16)]
    for client in clients:
        client.get_user()  # connections open before the race
    for name in names:
        start = threading.Barrier(len(clients))

        def create(client: Any, name: str = name, start: threading.Barrier = start) -> str:
            start.wait(timeout=30)
            try:
                client.create_access_key(UserName=name)
            except ClientError as exc:
                return str(exc.response["Error"]["Code"])
            return "ok"

        with ThreadPoolExecutor(max_workers=len(clients)) as pool:
            outcomes = list(pool.map(create, clients))
        assert sorted(outcomes) == ["LimitExceeded"] * (len(clients) - 2) + ["ok", "ok"]
        assert len(iam.list_access_keys(UserName=name)["AccessKeyMetadata"]) == 2
