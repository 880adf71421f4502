"""The STS API (query protocol) through the AWS CLI and boto3: who am I, sessions, roles."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from support.clients import BASE_CONFIG, DEFAULT_REGION
from support.factories import AwsCli, ClientFactory
from support.names import NameFactory
from support.server import Credentials, ServerProcess, scrubbed_environ

SM_READ_WRITE = "arn:aws:iam::aws:policy/SecretsManagerReadWrite"


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = exc.value.response
    return (
        str(response["Error"]["Code"]),
        str(response["Error"]["Message"]),
        int(response["ResponseMetadata"]["HTTPStatusCode"]),
    )


def _policy(*actions: str) -> str:
    statement = {"Effect": "Allow", "Action": list(actions), "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _trust(principal: str, *actions: str) -> str:
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": list(actions or ("sts:AssumeRole",)),
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@dataclass
class Caller:
    """An IAM user with a key, allowed to assume roles (and tag sessions)."""

    name: str
    arn: str
    account: str
    key: dict[str, Any]

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.key["AccessKeyId"], self.key["SecretAccessKey"])

    def credentials_file(self, directory: Path) -> Path:
        path = directory / f"{self.name}.credentials"
        path.write_text(
            "[default]\n"
            f"aws_access_key_id = {self.key['AccessKeyId']}\n"
            f"aws_secret_access_key = {self.key['SecretAccessKey']}\n"
        )
        return path


@pytest.fixture
def iam(client_factory: ClientFactory) -> Any:
    return client_factory("iam")


@pytest.fixture
def caller(iam: Any, unique_name: NameFactory) -> Caller:
    name = unique_name("u")
    user = iam.create_user(UserName=name)["User"]
    iam.put_user_policy(
        UserName=name,
        PolicyName="assume",
        PolicyDocument=_policy("sts:AssumeRole", "sts:TagSession"),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Caller(name, user["Arn"], user["Arn"].split(":")[4], key)


def _session_client(
    server: ServerProcess, service: str, creds: dict[str, Any], config: Config | None = None
) -> Any:
    return boto3.session.Session().client(
        service,
        endpoint_url=server.endpoint,
        region_name=DEFAULT_REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=BASE_CONFIG.merge(config) if config else BASE_CONFIG,
    )


def test_cli_get_caller_identity(aws_cli: AwsCli, iam: Any) -> None:
    result = aws_cli("sts", "get-caller-identity")
    assert result.returncode == 0, result.stderr
    me = iam.get_user()["User"]
    assert result.output == {
        "UserId": me["UserId"],
        "Account": me["Arn"].split(":")[4],
        "Arn": me["Arn"],
    }


def test_cli_assume_role_gives_working_temporary_credentials(
    aws_cli: AwsCli,
    iam: Any,
    caller: Caller,
    server: ServerProcess,
    unique_name: NameFactory,
    tmp_path: Path,
) -> None:
    role = iam.create_role(RoleName=unique_name("r"), AssumeRolePolicyDocument=_trust(caller.arn))[
        "Role"
    ]
    iam.attach_role_policy(RoleName=role["RoleName"], PolicyArn=SM_READ_WRITE)
    before = datetime.now(UTC)
    result = aws_cli(
        "sts", "assume-role", "--role-arn", role["Arn"], "--role-session-name", "cli-session",
        credentials_file=caller.credentials_file(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    creds = result.output["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    assert len(creds["SecretAccessKey"]) == 40 and len(creds["SessionToken"]) >= 200
    expires = datetime.fromisoformat(creds["Expiration"].replace("Z", "+00:00"))
    assert timedelta(minutes=59) < expires - before < timedelta(minutes=61)
    assumed = result.output["AssumedRoleUser"]
    assert assumed == {
        "AssumedRoleId": f"{role['RoleId']}:cli-session",
        "Arn": f"arn:aws:sts::{caller.account}:assumed-role/{role['RoleName']}/cli-session",
    }
    assert "PackedPolicySize" not in result.output
    sts = _session_client(server, "sts", creds)
    assert sts.get_caller_identity()["Arn"] == assumed["Arn"]
    assert sts.get_caller_identity()["UserId"] == assumed["AssumedRoleId"]
    sm = _session_client(server, "secretsmanager", creds)
    name = unique_name("s")
    sm.create_secret(Name=name, SecretString="from a role")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "from a role"
    # A wrong token for the session's key is refused.
    forged = _session_client(server, "sts", {**creds, "SessionToken": creds["SessionToken"][:-4]})
    with pytest.raises(ClientError) as exc:
        forged.get_caller_identity()
    assert _error(exc)[0] == "InvalidClientTokenId"


def test_assume_role_duration_and_session_name(
    iam: Any,
    caller: Caller,
    client_factory: ClientFactory,
    server: ServerProcess,
    unique_name: NameFactory,
) -> None:
    role = iam.create_role(
        RoleName=unique_name("r"),
        AssumeRolePolicyDocument=_trust(caller.arn),
        MaxSessionDuration=7200,
    )["Role"]
    sts = client_factory("sts", credentials=caller.credentials)
    long = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="s1", DurationSeconds=7200)
    remaining = long["Credentials"]["Expiration"] - datetime.now(UTC)
    assert timedelta(minutes=119) < remaining < timedelta(minutes=121)
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=role["Arn"], RoleSessionName="s1", DurationSeconds=7201)
    assert _error(exc) == (
        "ValidationError",
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        400,
    )
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=role["Arn"], RoleSessionName="bad name")
    assert _error(exc) == (
        "ValidationError",
        "1 validation error detected: Value 'bad name' at 'roleSessionName' failed to satisfy"
        " constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        400,
    )
    unchecked = client_factory(
        "sts", credentials=caller.credentials, config=Config(parameter_validation=False)
    )
    with pytest.raises(ClientError) as exc:
        unchecked.assume_role(RoleArn=role["Arn"], RoleSessionName="s1", DurationSeconds=60)
    assert _error(exc)[1] == (
        "1 validation error detected: Value '60' at 'durationSeconds' failed to satisfy"
        " constraint: Member must have value greater than or equal to 900"
    )
    # Role chaining: a role session may not ask for more than an hour.
    chained = iam.create_role(
        RoleName=unique_name("c"),
        AssumeRolePolicyDocument=_trust(f"arn:aws:iam::{caller.account}:root"),
        MaxSessionDuration=7200,
    )["Role"]
    iam.put_role_policy(
        RoleName=role["RoleName"], PolicyName="chain", PolicyDocument=_policy("sts:AssumeRole")
    )
    session = _session_client(server, "sts", long["Credentials"])
    with pytest.raises(ClientError) as exc:
        session.assume_role(RoleArn=chained["Arn"], RoleSessionName="s2", DurationSeconds=7200)
    assert _error(exc) == (
        "ValidationError",
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by"
        " role chaining.",
        400,
    )
    second = session.assume_role(RoleArn=chained["Arn"], RoleSessionName="s2")
    assert second["AssumedRoleUser"]["Arn"].endswith(f"assumed-role/{chained['RoleName']}/s2")


def test_assume_role_is_checked_against_trust_and_existence(
    iam: Any, caller: Caller, client_factory: ClientFactory, unique_name: NameFactory
) -> None:
    sts = client_factory("sts", credentials=caller.credentials)
    somebody = iam.create_user(UserName=unique_name("e"))["User"]["Arn"]
    other = iam.create_role(RoleName=unique_name("o"), AssumeRolePolicyDocument=_trust(somebody))[
        "Role"
    ]
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=other["Arn"], RoleSessionName="s1")
    code, message, status = _error(exc)
    assert (code, status) == ("AccessDenied", 403)
    assert message.startswith(
        f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource:"
        f" {other['Arn']}"
    )
    # Once the trust policy names the caller, it may assume the role.
    iam.update_assume_role_policy(RoleName=other["RoleName"], PolicyDocument=_trust(caller.arn))
    assert iam.get_role(RoleName=other["RoleName"])["Role"]["AssumeRolePolicyDocument"] == (
        json.loads(_trust(caller.arn))
    )
    sts.assume_role(RoleArn=other["Arn"], RoleSessionName="s1")
    with pytest.raises(ClientError) as exc:
        iam.update_assume_role_policy(RoleName=other["RoleName"], PolicyDocument="{}")
    assert _error(exc)[0] == "MalformedPolicyDocument"
    missing = f"arn:aws:iam::{caller.account}:role/{unique_name('m')}"
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=missing, RoleSessionName="s1")
    assert _error(exc) == (
        "AccessDenied",
        f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: {missing}",
        403,
    )
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn="arn:aws:iam::123456789012:user/not-a-role", RoleSessionName="s1")
    assert _error(exc) == (
        "ValidationError",
        "arn:aws:iam::123456789012:user/not-a-role is invalid",
        400,
    )


def test_session_tags(
    iam: Any, caller: Caller, client_factory: ClientFactory, unique_name: NameFactory
) -> None:
    role = iam.create_role(
        RoleName=unique_name("t"),
        AssumeRolePolicyDocument=_trust(caller.arn, "sts:AssumeRole", "sts:TagSession"),
        Tags=[{"Key": "team", "Value": "role"}],
    )["Role"]
    sts = client_factory("sts", credentials=caller.credentials)
    tagged = sts.assume_role(
        RoleArn=role["Arn"],
        RoleSessionName="tagged",
        Tags=[{"Key": "project", "Value": "x"}],
    )
    assert 0 < tagged["PackedPolicySize"] <= 100
    # Without sts:TagSession in the trust policy, passing tags is refused.
    plain = iam.create_role(RoleName=unique_name("p"), AssumeRolePolicyDocument=_trust(caller.arn))[
        "Role"
    ]
    with pytest.raises(ClientError) as exc:
        sts.assume_role(
            RoleArn=plain["Arn"], RoleSessionName="s1", Tags=[{"Key": "k", "Value": "v"}]
        )
    code, message, status = _error(exc)
    assert (code, status) == ("AccessDenied", 403)
    assert "sts:TagSession" in message


def test_get_session_token(
    iam: Any, caller: Caller, client_factory: ClientFactory, server: ServerProcess
) -> None:
    sts = client_factory("sts", credentials=caller.credentials)
    creds = sts.get_session_token()["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    remaining = creds["Expiration"] - datetime.now(UTC)
    assert timedelta(hours=11, minutes=59) < remaining < timedelta(hours=12, minutes=1)
    short = sts.get_session_token(DurationSeconds=900)["Credentials"]
    assert short["Expiration"] - datetime.now(UTC) < timedelta(minutes=16)
    session = _session_client(server, "sts", creds)
    me = session.get_caller_identity()
    assert (
        me["Arn"] == caller.arn
        and me["UserId"] == iam.get_user(UserName=caller.name)["User"]["UserId"]
    )
    with pytest.raises(ClientError) as exc:
        session.get_session_token()
    assert _error(exc) == (
        "AccessDenied",
        "Cannot call GetSessionToken with session credentials",
        403,
    )
    with pytest.raises(ClientError) as exc:
        _session_client(server, "iam", creds).list_users()
    assert _error(exc) == (
        "InvalidClientTokenId",
        "The security token included in the request is invalid",
        403,
    )


def _new_account(server: ServerProcess) -> Credentials:
    """A second account in the deployment (`secretsd account create`), with its admin's key."""
    out = _admin_command(server, "account", "create")
    return Credentials(out["AccessKeyId"], out["SecretAccessKey"])


def _admin_command(server: ServerProcess, *command: str) -> dict[str, Any]:
    """The JSON a `secretsd` admin command prints, run on the server's data."""
    args = [sys.executable, "-m", "secretsd", *command, "--json"]
    args += ["--data-dir", str(server.data_dir)]
    if server.database_url:
        args += ["--database", server.database_url]
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=60, env=scrubbed_environ(), check=False
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def test_cross_account_assume_role_needs_both_sides(
    iam: Any,
    caller: Caller,
    client_factory: ClientFactory,
    server: ServerProcess,
    unique_name: NameFactory,
) -> None:
    other_iam = client_factory("iam", credentials=_new_account(server))
    role = other_iam.create_role(
        RoleName=unique_name("x"), AssumeRolePolicyDocument=_trust(caller.arn)
    )["Role"]
    other_account = role["Arn"].split(":")[4]
    assert other_account != caller.account
    sts = client_factory("sts", credentials=caller.credentials)
    assumed = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="away")
    session = _session_client(server, "sts", assumed["Credentials"])
    me = session.get_caller_identity()
    assert (me["Account"], me["Arn"], me["UserId"]) == (
        other_account,
        f"arn:aws:sts::{other_account}:assumed-role/{role['RoleName']}/away",
        f"{role['RoleId']}:away",
    )
    # Across accounts the caller's own identity policy must allow too.
    iam.delete_user_policy(UserName=caller.name, PolicyName="assume")
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=role["Arn"], RoleSessionName="away")
    code, message, status = _error(exc)
    assert (code, status) == ("AccessDenied", 403)
    assert message.startswith(
        f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: "
        f"{role['Arn']}"
    )


def test_root_user_may_not_assume_roles(
    iam: Any,
    caller: Caller,
    client_factory: ClientFactory,
    server: ServerProcess,
    unique_name: NameFactory,
) -> None:
    out = _admin_command(server, "emergency-access", "--account", caller.account)
    root = Credentials(out["AccessKeyId"], out["SecretAccessKey"])
    role = iam.create_role(
        RoleName=unique_name("r"),
        AssumeRolePolicyDocument=_trust(f"arn:aws:iam::{caller.account}:root"),
    )["Role"]
    sts = client_factory("sts", credentials=root)
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{caller.account}:root"
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=role["Arn"], RoleSessionName="root")
    assert _error(exc) == ("AccessDenied", "Roles may not be assumed by root accounts.", 403)
    _admin_command(server, "emergency-access", "--account", caller.account, "--revoke")
