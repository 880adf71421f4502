"""Permissions end to end: IAM users, groups, roles and policies decide every call, as in AWS.

Everything goes through unmodified clients (boto3 and the AWS CLI) against a real server:
identities are made with the IAM API, roles assumed through STS, a second account comes from the
`secretsd account create` admin command. Expected messages are AWS's (policy/messages.py cites
them); "Access to KMS is not allowed" and the default-key cross-account message are recorded AWS
answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.factories import ClientFactory
from support.names import NameFactory
from support.server import Credentials, ServerProcess, scrubbed_environ

READ_WRITE = "arn:aws:iam::aws:policy/SecretsManagerReadWrite"


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@dataclass
class User:
    name: str
    arn: str
    credentials: Credentials


class Account:
    """One account's admin view: make users with policies and clients acting as them."""

    def __init__(self, clients: ClientFactory, server: ServerProcess, admin: Credentials) -> None:
        self.clients = clients
        self.server = server
        self.admin = admin
        self.iam = clients("iam", server=server, credentials=admin)
        self.sm = clients("secretsmanager", server=server, credentials=admin)
        self.kms = clients("kms", server=server, credentials=admin)
        self.id = clients("sts", server=server, credentials=admin).get_caller_identity()["Account"]

    def user(
        self,
        name: str,
        *,
        managed: tuple[str, ...] = (),
        inline: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> User:
        created = self.iam.create_user(
            UserName=name, Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()]
        )["User"]
        for arn in managed:
            self.iam.attach_user_policy(UserName=name, PolicyArn=arn)
        if inline is not None:
            self.iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=inline)
        key = self.iam.create_access_key(UserName=name)["AccessKey"]
        return User(name, created["Arn"], Credentials(key["AccessKeyId"], key["SecretAccessKey"]))

    def client(self, service: str, who: User | Credentials) -> Any:
        credentials = who.credentials if isinstance(who, User) else who
        return self.clients(service, server=self.server, credentials=credentials)


@pytest.fixture
def account(client_factory: ClientFactory, server: ServerProcess) -> Account:
    return Account(client_factory, server, server.credentials)


@pytest.fixture
def names(unique_name: NameFactory) -> Callable[[str], str]:
    """IAM names (64 characters at most) unique to this test."""
    counter = iter(range(10_000))
    return lambda prefix: f"{prefix}{next(counter)}-{abs(hash(unique_name())) % 10**10}"


def denied_message(caller: str, action: str, resource: str, why: str) -> str:
    return f"User: {caller} is not authorized to perform: {action} on resource: {resource} {why}"


def no_identity_policy(action: str) -> str:
    return f"because no identity-based policy allows the {action} action"


# -- two users in one account -------------------------------------------------------------------


def test_read_write_user_and_prefix_reader(
    account: Account, unique_name: NameFactory, names: Callable[[str], str]
) -> None:
    prefix = unique_name("app") + "/"
    inside, outside = prefix + "db", unique_name("other")
    alice = account.user(names("alice"), managed=(READ_WRITE,))
    bob = account.user(
        names("bob"),
        inline=policy(
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": f"arn:aws:secretsmanager:*:{account.id}:secret:{prefix}*",
            },
            {"Effect": "Allow", "Action": "secretsmanager:ListSecrets", "Resource": "*"},
        ),
    )
    as_alice, as_bob = (
        account.client("secretsmanager", alice),
        account.client("secretsmanager", bob),
    )

    inside_arn = as_alice.create_secret(Name=inside, SecretString="in")["ARN"]
    outside_arn = as_alice.create_secret(Name=outside, SecretString="out")["ARN"]
    assert as_alice.get_secret_value(SecretId=outside)["SecretString"] == "out"

    assert as_bob.get_secret_value(SecretId=inside)["SecretString"] == "in"
    assert as_bob.describe_secret(SecretId=inside_arn)["Name"] == inside
    with pytest.raises(ClientError) as exc:
        as_bob.get_secret_value(SecretId=outside)
    assert error(exc) == (
        "AccessDeniedException",
        denied_message(
            bob.arn,
            "secretsmanager:GetSecretValue",
            outside_arn,
            no_identity_policy("secretsmanager:GetSecretValue"),
        ),
    )
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as exc:
        as_bob.put_secret_value(SecretId=inside, SecretString="nope")
    assert error(exc)[0] == "AccessDeniedException"
    assert "secretsmanager:PutSecretValue" in error(exc)[1]
    with pytest.raises(ClientError) as exc:
        as_bob.create_secret(Name=prefix + "new", SecretString="x")
    assert error(exc)[0] == "AccessDeniedException"
    # A secret that does not exist is still "access denied" to whoever may not read it there...
    with pytest.raises(ClientError) as exc:
        as_bob.get_secret_value(SecretId=unique_name("missing"))
    assert error(exc)[0] == "AccessDeniedException"
    # ...and "not found" to whoever may.
    with pytest.raises(ClientError) as exc:
        as_bob.get_secret_value(SecretId=prefix + "missing")
    assert error(exc)[0] == "ResourceNotFoundException"

    # ListSecrets shows bob what he may describe, alice everything.
    seen_by_bob = {s["Name"] for s in as_bob.list_secrets(MaxResults=100)["SecretList"]}
    assert inside in seen_by_bob and outside not in seen_by_bob
    assert all(name.startswith(prefix) for name in seen_by_bob)
    all_names = {
        s["Name"]
        for page in as_alice.get_paginator("list_secrets").paginate()
        for s in page["SecretList"]
    }
    assert {inside, outside} <= all_names

    # BatchGetSecretValue needs its own action, then GetSecretValue per secret.
    with pytest.raises(ClientError) as exc:
        as_bob.batch_get_secret_value(SecretIdList=[inside])
    assert error(exc) == (
        "AccessDeniedException",
        f"User: {bob.arn} is not authorized to perform: secretsmanager:BatchGetSecretValue"
        " because no identity-based policy allows the secretsmanager:BatchGetSecretValue action",
    )
    batch = as_alice.batch_get_secret_value(SecretIdList=[inside, outside])
    assert sorted(v["Name"] for v in batch["SecretValues"]) == sorted([inside, outside])


def test_policy_changes_apply_on_the_next_call(
    account: Account, unique_name: NameFactory, names: Callable[[str], str]
) -> None:
    name = unique_name()
    account.sm.create_secret(Name=name, SecretString="v")
    carol = account.user(names("carol"))
    as_carol = account.client("secretsmanager", carol)
    with pytest.raises(ClientError) as exc:
        as_carol.get_secret_value(SecretId=name)
    assert error(exc)[0] == "AccessDeniedException"

    account.iam.attach_user_policy(UserName=carol.name, PolicyArn=READ_WRITE)
    assert as_carol.get_secret_value(SecretId=name)["SecretString"] == "v"

    account.iam.detach_user_policy(UserName=carol.name, PolicyArn=READ_WRITE)
    with pytest.raises(ClientError) as exc:
        as_carol.get_secret_value(SecretId=name)
    assert error(exc)[0] == "AccessDeniedException"

    # Through a group, and an explicit Deny in an inline policy beating it.
    group = names("readers")
    account.iam.create_group(GroupName=group)
    account.iam.attach_group_policy(GroupName=group, PolicyArn=READ_WRITE)
    account.iam.add_user_to_group(GroupName=group, UserName=carol.name)
    assert as_carol.get_secret_value(SecretId=name)["SecretString"] == "v"
    account.iam.put_user_policy(
        UserName=carol.name,
        PolicyName="no-reads",
        PolicyDocument=policy(
            {"Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
        ),
    )
    with pytest.raises(ClientError) as exc:
        as_carol.get_secret_value(SecretId=name)
    assert error(exc)[1].endswith("with an explicit deny in an identity-based policy"), error(exc)

    # A deactivated key stops working at once.
    account.iam.delete_user_policy(UserName=carol.name, PolicyName="no-reads")
    as_carol.get_secret_value(SecretId=name)
    account.iam.update_access_key(
        UserName=carol.name, AccessKeyId=carol.credentials.access_key_id, Status="Inactive"
    )
    with pytest.raises(ClientError) as exc:
        as_carol.get_secret_value(SecretId=name)
    assert error(exc)[0] == "UnrecognizedClientException"


# -- conditions ---------------------------------------------------------------------------------


def test_condition_on_a_resource_tag(
    account: Account, unique_name: NameFactory, names: Callable[[str], str]
) -> None:
    blue, red = unique_name("blue"), unique_name("red")
    account.sm.create_secret(Name=blue, SecretString="b", Tags=[{"Key": "team", "Value": "blue"}])
    account.sm.create_secret(Name=red, SecretString="r", Tags=[{"Key": "team", "Value": "red"}])
    dave = account.user(
        names("dave"),
        inline=policy(
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
                "Condition": {"StringEquals": {"secretsmanager:ResourceTag/team": "blue"}},
            }
        ),
    )
    as_dave = account.client("secretsmanager", dave)
    assert as_dave.get_secret_value(SecretId=blue)["SecretString"] == "b"
    with pytest.raises(ClientError) as exc:
        as_dave.get_secret_value(SecretId=red)
    assert error(exc)[0] == "AccessDeniedException"
    # Retagging moves the permission with the tag.
    account.sm.tag_resource(SecretId=red, Tags=[{"Key": "team", "Value": "blue"}])
    assert as_dave.get_secret_value(SecretId=red)["SecretString"] == "r"


def test_condition_on_the_source_ip(
    account: Account, unique_name: NameFactory, names: Callable[[str], str]
) -> None:
    name = unique_name()
    account.sm.create_secret(Name=name, SecretString="ip")

    def reader(cidr: str) -> Any:
        user = account.user(
            names("ip"),
            inline=policy(
                {
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": "*",
                    "Condition": {"IpAddress": {"aws:SourceIp": cidr}},
                }
            ),
        )
        return account.client("secretsmanager", user)

    # The tests' clients connect from 127.0.0.1.
    assert reader("127.0.0.0/8").get_secret_value(SecretId=name)["SecretString"] == "ip"
    with pytest.raises(ClientError) as exc:
        reader("192.0.2.0/24").get_secret_value(SecretId=name)
    assert error(exc)[0] == "AccessDeniedException"


# -- resource policies --------------------------------------------------------------------------


def test_deny_in_a_resource_policy_beats_an_allow(
    account: Account, unique_name: NameFactory, names: Callable[[str], str]
) -> None:
    name = unique_name()
    arn = account.sm.create_secret(Name=name, SecretString="guarded")["ARN"]
    erin = account.user(names("erin"), managed=(READ_WRITE,))
    as_erin = account.client("secretsmanager", erin)
    assert as_erin.get_secret_value(SecretId=name)["SecretString"] == "guarded"
    account.sm.put_resource_policy(
        SecretId=name,
        ResourcePolicy=policy(
            {
                "Effect": "Deny",
                "Principal": {"AWS": erin.arn},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            }
        ),
    )
    with pytest.raises(ClientError) as exc:
        as_erin.get_secret_value(SecretId=name)
    assert error(exc) == (
        "AccessDeniedException",
        denied_message(
            erin.arn,
            "secretsmanager:GetSecretValue",
            arn,
            "with an explicit deny in a resource-based policy",
        ),
    )
    # Only that action: describing is still allowed by her identity policy.
    assert as_erin.describe_secret(SecretId=name)["ARN"] == arn


def test_resource_policy_alone_grants_within_the_account(
    account: Account, unique_name: NameFactory, names: Callable[[str], str]
) -> None:
    name = unique_name()
    frank = account.user(names("frank"))
    account.sm.create_secret(Name=name, SecretString="shared")
    account.sm.put_resource_policy(
        SecretId=name,
        ResourcePolicy=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": frank.arn},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            }
        ),
    )
    assert (
        account.client("secretsmanager", frank).get_secret_value(SecretId=name)["SecretString"]
        == "shared"
    )


# -- roles through STS --------------------------------------------------------------------------


def test_role_assumed_through_sts(
    account: Account, unique_name: NameFactory, names: Callable[[str], str]
) -> None:
    name = unique_name()
    arn = account.sm.create_secret(Name=name, SecretString="for the role")["ARN"]
    grace = account.user(
        names("grace"),
        inline=policy({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}),
    )
    role_name = names("reader")
    role = account.iam.create_role(
        RoleName=role_name,
        AssumeRolePolicyDocument=policy(
            {"Effect": "Allow", "Principal": {"AWS": grace.arn}, "Action": "sts:AssumeRole"}
        ),
    )["Role"]
    account.iam.put_role_policy(
        RoleName=role_name,
        PolicyName="read-one",
        PolicyDocument=policy(
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arn}
        ),
    )
    # Grace herself may not read it.
    with pytest.raises(ClientError) as exc:
        account.client("secretsmanager", grace).get_secret_value(SecretId=arn)
    assert error(exc)[0] == "AccessDeniedException"

    assumed = account.client("sts", grace).assume_role(
        RoleArn=role["Arn"], RoleSessionName="grace-session", DurationSeconds=900
    )
    creds = assumed["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    session_arn = f"arn:aws:sts::{account.id}:assumed-role/{role_name}/grace-session"
    assert assumed["AssumedRoleUser"]["Arn"] == session_arn
    session_credentials = Credentials(
        creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]
    )
    session = account.client("secretsmanager", session_credentials)
    assert session.get_secret_value(SecretId=arn)["SecretString"] == "for the role"
    with pytest.raises(ClientError) as exc:
        session.describe_secret(SecretId=arn)
    assert error(exc) == (
        "AccessDeniedException",
        denied_message(
            session_arn,
            "secretsmanager:DescribeSecret",
            arn,
            no_identity_policy("secretsmanager:DescribeSecret"),
        ),
    )
    # A wrong session token is refused before any policy is looked at.
    forged = account.client(
        "secretsmanager",
        Credentials(
            creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"][:-4] + "AAAA"
        ),
    )
    with pytest.raises(ClientError) as exc:
        forged.get_secret_value(SecretId=arn)
    assert error(exc)[0] == "UnrecognizedClientException"

    # Someone the trust policy does not name cannot assume the role.
    heidi = account.user(
        names("heidi"),
        inline=policy({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}),
    )
    with pytest.raises(ClientError) as exc:
        account.client("sts", heidi).assume_role(RoleArn=role["Arn"], RoleSessionName="x1")
    # STS never says which policy was missing.
    assert error(exc) == (
        "AccessDenied",
        f"User: {heidi.arn} is not authorized to perform: sts:AssumeRole on resource: {role['Arn']}",
    )


# -- KMS permissions for customer managed keys -------------------------------------------------


def test_customer_managed_key_needs_kms_permissions(
    account: Account, aws_cli: Any, unique_name: NameFactory, names: Callable[[str], str]
) -> None:
    key_id = aws_cli("kms", "create-key", server=account.server).output["KeyMetadata"]["KeyId"]
    alias = "alias/" + unique_name("key")
    assert (
        aws_cli("kms", "create-alias", "--alias-name", alias, "--target-key-id", key_id).returncode
        == 0
    )
    name = unique_name()
    created = aws_cli(
        "secretsmanager",
        "create-secret",
        "--name",
        name,
        "--secret-string",
        "cmk",
        "--kms-key-id",
        alias,
    )
    assert created.returncode == 0, created.stderr
    reader = account.user(
        names("ivan"),
        inline=policy(
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
        ),
    )
    with pytest.raises(ClientError) as exc:
        account.client("secretsmanager", reader).get_secret_value(SecretId=name)
    assert error(exc) == ("AccessDeniedException", "Access to KMS is not allowed")
    # The default key policy delegates to the account, so an identity policy can grant it.
    account.iam.put_user_policy(
        UserName=reader.name,
        PolicyName="kms",
        PolicyDocument=policy({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}),
    )
    assert (
        account.client("secretsmanager", reader).get_secret_value(SecretId=name)["SecretString"]
        == "cmk"
    )
    # A key policy that names nobody but the admin shuts the account's IAM policies out.
    account.kms.put_key_policy(
        KeyId=key_id,
        PolicyName="default",
        Policy=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account.id}:user/admin"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ),
    )
    with pytest.raises(ClientError) as exc:
        account.client("secretsmanager", reader).get_secret_value(SecretId=name)
    assert error(exc) == ("AccessDeniedException", "Access to KMS is not allowed")
    with pytest.raises(ClientError) as exc:
        account.client("kms", reader).decrypt(CiphertextBlob=b"\x00" * 64)
    assert error(exc)[0] in ("InvalidCiphertextException", "AccessDeniedException")


# -- a second account --------------------------------------------------------------------------


def create_account(server: ServerProcess) -> Credentials:
    """`secretsd account create` against the server's data dir and database."""
    args = [sys.executable, "-m", "secretsd", "account", "create", "--json"]
    args += ["--data-dir", str(server.data_dir)]
    if server.database_url:
        args += ["--database", server.database_url]
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=60, env=scrubbed_environ(), check=False
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    return Credentials(out["AccessKeyId"], out["SecretAccessKey"])


def test_second_account_through_the_resource_policy(
    account: Account, client_factory: ClientFactory, unique_name: NameFactory
) -> None:
    other = Account(client_factory, account.server, create_account(account.server))
    assert other.id != account.id
    name = unique_name()
    plain_arn = account.sm.create_secret(Name=name, SecretString="default key")["ARN"]
    key = account.kms.create_key()["KeyMetadata"]
    account.kms.put_key_policy(
        KeyId=key["KeyId"],
        PolicyName="default",
        Policy=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account.id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{other.id}:root"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": "*",
            },
        ),
    )
    cmk_arn = account.sm.create_secret(
        Name=name + "-cmk", SecretString="shared key", KmsKeyId=key["Arn"]
    )["ARN"]

    # Without a resource policy the other account gets nothing.
    with pytest.raises(ClientError) as exc:
        other.sm.get_secret_value(SecretId=cmk_arn)
    assert error(exc) == (
        "AccessDeniedException",
        denied_message(
            f"arn:aws:iam::{other.id}:user/admin",
            "secretsmanager:GetSecretValue",
            cmk_arn,
            "because no resource-based policy allows the secretsmanager:GetSecretValue action",
        ),
    )
    grant = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{other.id}:root"},
            "Action": "secretsmanager:*",
            "Resource": "*",
        }
    )
    for arn in (plain_arn, cmk_arn):
        account.sm.put_resource_policy(SecretId=arn, ResourcePolicy=grant)

    assert other.sm.get_secret_value(SecretId=cmk_arn)["SecretString"] == "shared key"
    other.sm.put_secret_value(SecretId=cmk_arn, SecretString="written from afar")
    assert account.sm.get_secret_value(SecretId=cmk_arn)["SecretString"] == "written from afar"
    assert other.sm.describe_secret(SecretId=plain_arn)["ARN"] == plain_arn
    with pytest.raises(ClientError) as exc:
        other.sm.get_secret_value(SecretId=plain_arn)
    assert error(exc) == (
        "InvalidRequestException",
        "You can't access a secret from a different AWS account if you encrypt the secret with"
        " the default KMS service key.",
    )
    # The other account's ListSecrets lists its own secrets only.
    listed = {s["ARN"] for s in other.sm.list_secrets()["SecretList"]}
    assert plain_arn not in listed and cmk_arn not in listed


def test_cli_manages_users_and_keys(
    account: Account,
    aws_cli: Any,
    tmp_path: Path,
    names: Callable[[str], str],
    unique_name: NameFactory,
) -> None:
    """The issue's commands, unmodified: create-user, attach-user-policy, create-access-key."""
    user = names("cli")
    assert aws_cli("iam", "create-user", "--user-name", user).returncode == 0
    attached = aws_cli("iam", "attach-user-policy", "--user-name", user, "--policy-arn", READ_WRITE)
    assert attached.returncode == 0, attached.stderr
    key = aws_cli("iam", "create-access-key", "--user-name", user).output["AccessKey"]
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[default]\naws_access_key_id = {key['AccessKeyId']}\n"
        f"aws_secret_access_key = {key['SecretAccessKey']}\n"
    )
    name = unique_name()
    made = aws_cli(
        "secretsmanager",
        "create-secret",
        "--name",
        name,
        "--secret-string",
        "from cli",
        credentials_file=credentials,
    )
    assert made.returncode == 0, made.stderr
    who = aws_cli("sts", "get-caller-identity", credentials_file=credentials).output
    assert who["Arn"] == f"arn:aws:iam::{account.id}:user/{user}"
    denied = aws_cli("iam", "create-user", "--user-name", user + "x", credentials_file=credentials)
    assert denied.returncode != 0 and "AccessDenied" in denied.stderr


# -- emergency access ---------------------------------------------------------------------------


def admin_command(server: ServerProcess, *args: str) -> Any:
    argv = [sys.executable, "-m", "secretsd", *args, "--json", "--data-dir", str(server.data_dir)]
    if server.database_url:
        argv += ["--database", server.database_url]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env=scrubbed_environ(), check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_emergency_access_undoes_a_lock_out(
    account: Account, unique_name: NameFactory, client_factory: ClientFactory
) -> None:
    name = unique_name()
    account.sm.create_secret(Name=name, SecretString="locked")
    key_id = account.kms.create_key()["KeyMetadata"]["KeyId"]
    # Deny everyone everything on the secret, and give the key a policy that names nobody here.
    account.sm.put_resource_policy(
        SecretId=name,
        ResourcePolicy=policy(
            {"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:*", "Resource": "*"}
        ),
    )
    account.kms.put_key_policy(
        KeyId=key_id,
        PolicyName="default",
        Policy=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ),
        BypassPolicyLockoutSafetyCheck=True,
    )
    with pytest.raises(ClientError):
        account.sm.delete_resource_policy(SecretId=name)
    with pytest.raises(ClientError):
        account.kms.describe_key(KeyId=key_id)

    listed = {a["account_id"] for a in admin_command(account.server, "account", "list")}
    assert account.id in listed
    root = admin_command(account.server, "emergency-access", "--account", account.id)
    assert root["Arn"] == f"arn:aws:iam::{account.id}:root"
    as_root = Credentials(root["AccessKeyId"], root["SecretAccessKey"])
    sts = client_factory("sts", server=account.server, credentials=as_root)
    assert sts.get_caller_identity()["Arn"] == root["Arn"]
    client_factory(
        "secretsmanager", server=account.server, credentials=as_root
    ).delete_resource_policy(SecretId=name)
    client_factory("kms", server=account.server, credentials=as_root).put_key_policy(
        KeyId=key_id,
        PolicyName="default",
        Policy=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account.id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ),
    )
    assert account.sm.get_secret_value(SecretId=name)["SecretString"] == "locked"
    assert account.kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id

    # The root user may also get a session (at most one hour long, as AWS caps it).
    token = sts.get_session_token(DurationSeconds=43200)["Credentials"]
    lifetime = token["Expiration"] - datetime.now(UTC)
    assert timedelta(minutes=55) < lifetime <= timedelta(hours=1), lifetime
    root_session = Credentials(
        token["AccessKeyId"], token["SecretAccessKey"], token["SessionToken"]
    )
    as_session = client_factory("sts", server=account.server, credentials=root_session)
    assert as_session.get_caller_identity()["Arn"] == root["Arn"]

    revoked = admin_command(account.server, "emergency-access", "--account", account.id, "--revoke")
    assert revoked["Revoked"] == 1
    with pytest.raises(ClientError) as exc:
        sts.get_caller_identity()
    assert error(exc)[0] in ("InvalidClientTokenId", "UnrecognizedClientException")


# -- request condition keys -----------------------------------------------------------------------


def test_request_condition_keys(
    account: Account, unique_name: NameFactory, names: Callable[[str], str]
) -> None:
    """Each Secrets Manager condition key is filled from the request, as AWS documents."""
    base = unique_name("keys")
    lambda_arn = f"arn:aws:lambda:us-east-1:{account.id}:function:rotator"
    statements = [
        # CreateSecret only for names under base/, only with a team tag, never with other tags.
        {
            "Effect": "Allow",
            "Action": ["secretsmanager:CreateSecret", "secretsmanager:TagResource"],
            "Resource": "*",
            "Condition": {
                "StringLike": {"secretsmanager:Name": f"{base}/*"},
                "StringEquals": {"aws:RequestTag/owner": "${aws:username}"},
                "ForAllValues:StringEquals": {"aws:TagKeys": ["owner"]},
            },
        },
        {"Effect": "Allow", "Action": "secretsmanager:PutSecretValue", "Resource": "*"},
        # Reading only the AWSCURRENT label, explicitly asked for.
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
            "Condition": {"StringEquals": {"secretsmanager:VersionStage": "AWSCURRENT"}},
        },
        # Deleting only with the longest recovery window, never forced.
        {
            "Effect": "Allow",
            "Action": "secretsmanager:DeleteSecret",
            "Resource": "*",
            "Condition": {"NumericEquals": {"secretsmanager:RecoveryWindowInDays": "30"}},
        },
        {
            "Effect": "Deny",
            "Action": "secretsmanager:DeleteSecret",
            "Resource": "*",
            "Condition": {"Bool": {"secretsmanager:ForceDeleteWithoutRecovery": "true"}},
        },
        # Resource policies only with BlockPublicPolicy.
        {
            "Effect": "Allow",
            "Action": "secretsmanager:PutResourcePolicy",
            "Resource": "*",
            "Condition": {"Bool": {"secretsmanager:BlockPublicPolicy": "true"}},
        },
        # Rotation only with one function (which the caller must also be allowed to invoke).
        {
            "Effect": "Allow",
            "Action": "secretsmanager:RotateSecret",
            "Resource": "*",
            "Condition": {"ArnEquals": {"secretsmanager:RotationLambdaARN": lambda_arn}},
        },
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": lambda_arn},
        # Principal tags.
        {
            "Effect": "Allow",
            "Action": "secretsmanager:DescribeSecret",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalTag/clearance": "high"}},
        },
    ]
    user = account.user(names("keys"), inline=policy(*statements), tags={"clearance": "high"})
    sm = account.client("secretsmanager", user)

    def denied(call: Callable[..., Any], **kwargs: Any) -> str:
        with pytest.raises(ClientError) as exc:
            call(**kwargs)
        assert error(exc)[0] == "AccessDeniedException", error(exc)
        return error(exc)[1]

    owner = [{"Key": "owner", "Value": user.name}]
    name = f"{base}/db"
    denied(sm.create_secret, Name=unique_name("elsewhere"), SecretString="x", Tags=owner)
    denied(sm.create_secret, Name=name, SecretString="x")  # no owner tag
    denied(sm.create_secret, Name=name, SecretString="x", Tags=[{"Key": "owner", "Value": "bob"}])
    denied(sm.create_secret, Name=name, SecretString="x", Tags=[*owner, {"Key": "x", "Value": "y"}])
    arn = sm.create_secret(Name=name, SecretString="x", Tags=owner)["ARN"]

    denied(sm.get_secret_value, SecretId=arn)  # no VersionStage in the request
    assert sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"] == "x"
    denied(sm.get_secret_value, SecretId=arn, VersionStage="AWSPREVIOUS")

    assert sm.describe_secret(SecretId=arn)["Name"] == name
    public = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": user.arn},
            "Action": "secretsmanager:DescribeSecret",
            "Resource": "*",
        }
    )
    denied(sm.put_resource_policy, SecretId=arn, ResourcePolicy=public)
    sm.put_resource_policy(SecretId=arn, ResourcePolicy=public, BlockPublicPolicy=True)

    # Allowed, then the function is unknown to Secrets Manager (nothing is saved).
    assert denied(sm.rotate_secret, SecretId=arn, RotationLambdaARN=lambda_arn).startswith(
        "Secrets Manager cannot invoke the specified Lambda function."
    )
    assert "secretsmanager:RotateSecret" in denied(
        sm.rotate_secret, SecretId=arn, RotationLambdaARN=lambda_arn + "-other"
    )

    denied(sm.delete_secret, SecretId=arn, RecoveryWindowInDays=7)
    assert "explicit deny" in denied(
        sm.delete_secret, SecretId=arn, ForceDeleteWithoutRecovery=True
    )
    sm.delete_secret(SecretId=arn, RecoveryWindowInDays=30)


def test_rotation_also_needs_lambda_invoke_function(
    account: Account, unique_name: NameFactory, names: Callable[[str], str]
) -> None:
    """AWS: "You also need lambda:InvokeFunction permissions on the rotation function"."""
    everything = {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}
    user = account.user(names("rotator"), inline=policy(everything))
    sm = account.client("secretsmanager", user)
    arn = sm.create_secret(Name=unique_name(), SecretString="x")["ARN"]
    function = (
        f"arn:aws:lambda:us-east-1:{account.id}:function:secretsd-builtin-postgresql-single-user"
    )
    with pytest.raises(ClientError) as exc:
        sm.rotate_secret(SecretId=arn, RotationLambdaARN=function)
    assert error(exc) == (
        "AccessDeniedException",
        denied_message(
            user.arn, "lambda:InvokeFunction", function, no_identity_policy("lambda:InvokeFunction")
        ),
    )
    assert "RotationEnabled" not in sm.describe_secret(SecretId=arn)

    invoke = {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": function}
    account.iam.put_user_policy(
        UserName=user.name, PolicyName="inline", PolicyDocument=policy(everything, invoke)
    )
    # Allowed now: the built-in rotator then fails at createSecret (the value is no credential).
    assert sm.rotate_secret(SecretId=arn, RotationLambdaARN=function)["ARN"] == arn
    assert sm.describe_secret(SecretId=arn)["RotationEnabled"] is True
