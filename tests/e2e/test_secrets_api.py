"""Every Secrets Manager operation through boto3 against a real server, as AWS answers it.

The expectations come from shared/reference/aws-behaviour.md (recorded AWS responses).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

ARN_RE = re.compile(
    r"^arn:aws:secretsmanager:us-east-1:\d{12}:secret:(?P<name>.+)-(?P<suffix>[A-Za-z0-9]{6})$"
)
NOT_FOUND = "Secrets Manager can't find the specified secret."
MARKED = "You can't perform this operation on the secret because it was marked for deletion."


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def strip_meta(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def test_create_and_get_string_secret(sm: Any, unique_name: Any) -> None:
    name = unique_name()
    created = sm.create_secret(Name=name, SecretString='{"username":"saanvi"}')
    assert set(strip_meta(created)) == {"ARN", "Name", "VersionId"}
    match = ARN_RE.match(created["ARN"])
    assert match and match["name"] == name
    uuid.UUID(created["VersionId"])
    got = sm.get_secret_value(SecretId=name)
    assert set(strip_meta(got)) == {
        "ARN",
        "Name",
        "VersionId",
        "SecretString",
        "VersionStages",
        "CreatedDate",
    }
    assert got["SecretString"] == '{"username":"saanvi"}'
    assert got["VersionStages"] == ["AWSCURRENT"]
    assert got["VersionId"] == created["VersionId"]


@pytest.mark.parametrize("value", [b"\x00\x01\x02\xff", b"\xfe\xfd", bytes(range(256)) * 256])
def test_binary_round_trip(sm: Any, unique_name: Any, value: bytes) -> None:
    name = unique_name()
    sm.create_secret(Name=name, SecretBinary=value)
    got = sm.get_secret_value(SecretId=name)
    assert got["SecretBinary"] == value
    assert "SecretString" not in got
    sm.put_secret_value(SecretId=name, SecretBinary=value[::-1])
    assert sm.get_secret_value(SecretId=name)["SecretBinary"] == value[::-1]


def test_largest_values_round_trip(sm: Any, unique_name: Any) -> None:
    name = unique_name()
    text = "é" * 32768  # 65,536 bytes of UTF-8
    sm.create_secret(Name=name, SecretString="x" * 65536)
    sm.put_secret_value(SecretId=name, SecretString=text)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == text
    with pytest.raises(ClientError) as exc:
        sm.put_secret_value(SecretId=name, SecretString="é" * 32769)  # 65,538 bytes
    assert error_of(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        sm.put_secret_value(SecretId=name, SecretString="x" * 65537)
    code, message, status = error_of(exc)
    assert (code, status) == ("ValidationException", 400)
    assert message == (
        "1 validation error detected: Value at 'secretString' failed to satisfy constraint:"
        " Member must have length less than or equal to 65536"
    )


def test_secret_id_forms(sm: Any, unique_name: Any) -> None:
    name = unique_name()
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    partial = arn[: -len("-XXXXXX")]
    for secret_id in (name, arn, partial):
        assert sm.get_secret_value(SecretId=secret_id)["SecretString"] == "v"


def test_recreated_name_gets_new_suffix(sm: Any, unique_name: Any) -> None:
    name = unique_name()
    first = sm.create_secret(Name=name, SecretString="v")["ARN"]
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    second = sm.create_secret(Name=name, SecretString="v")["ARN"]
    assert first != second and first[:-6] == second[:-6]
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=first)
    assert error_of(exc) == ("ResourceNotFoundException", NOT_FOUND, 400)


@pytest.mark.parametrize("bad", ["Inv Name", " Inv Name", " Inv*Name? ", " Inv *?!]Name\\-"])
def test_invalid_names(sm: Any, bad: str) -> None:
    expected = (
        "ValidationException",
        "Invalid name. Must be a valid name containing alphanumeric characters, or any of the"
        " following: -/_+=.@!",
        400,
    )
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=bad, SecretString="v")
    assert error_of(exc) == expected
    for call in (
        lambda: sm.describe_secret(SecretId=bad),
        lambda: sm.get_secret_value(SecretId=bad),
        lambda: sm.delete_secret(SecretId=bad, ForceDeleteWithoutRecovery=True),
        lambda: sm.put_secret_value(SecretId=bad, SecretString="v"),
        lambda: sm.tag_resource(SecretId=bad, Tags=[{"Key": "a", "Value": "b"}]),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == expected


def test_valid_unusual_names(sm: Any, unique_name: Any) -> None:
    base = unique_name()
    for name in (f"{base}/_+=.@-Name", f"{base}/_+=.@-Name-a1b2", f"{base}/_+=.@-Name-a1b2c3-"):
        created = sm.create_secret(Name=name, SecretString="v")
        assert created["Name"] == name
        assert sm.get_secret_value(SecretId=created["ARN"][:-7])["SecretString"] == "v"


def test_name_length_limit(sm: Any) -> None:
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name="a" * 513, SecretString="v")
    assert error_of(exc) == (
        "ValidationException",
        f"1 validation error detected: Value '{'a' * 513}' at 'name' failed to satisfy constraint:"
        " Member must have length less than or equal to 512",
        400,
    )
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name="n", Description="d" * 2049)
    assert error_of(exc)[0] == "ValidationException"
    assert "at 'description'" in error_of(exc)[1]


def test_create_without_value_then_put(sm: Any, unique_name: Any) -> None:
    name = unique_name()
    created = sm.create_secret(Name=name, Description="")
    assert set(strip_meta(created)) == {"ARN", "Name"}
    described = strip_meta(sm.describe_secret(SecretId=name))
    assert set(described) == {"ARN", "CreatedDate", "LastChangedDate", "Name"}
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=name)
    assert error_of(exc) == (
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT",
        400,
    )
    put = sm.put_secret_value(SecretId=name, SecretString="first")
    assert put["VersionStages"] == ["AWSCURRENT"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "first"


def test_duplicate_name_and_tokens(sm: Any, unique_name: Any) -> None:
    name = unique_name()
    token = str(uuid.uuid4())
    first = sm.create_secret(Name=name, SecretString="v", ClientRequestToken=token)
    again = sm.create_secret(Name=name, SecretString="v", ClientRequestToken=token)
    assert again["VersionId"] == first["VersionId"] == token
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name, SecretString="other", ClientRequestToken=token)
    assert error_of(exc) == (
        "ResourceExistsException",
        f"You can't use ClientRequestToken {token} because that value is already in use for a"
        f" version of secret {first['ARN']}.",
        400,
    )
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name, SecretString="v")
    assert error_of(exc) == (
        "ResourceExistsException",
        f"The operation failed because the secret {name} already exists.",
        400,
    )
    # PutSecretValue idempotency
    token2 = str(uuid.uuid4())
    put = sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=token2)
    put_again = sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=token2)
    assert put["VersionId"] == put_again["VersionId"] == token2
    assert put_again["VersionStages"] == ["AWSCURRENT"]
    versions = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    assert len(versions) == 2
    with pytest.raises(ClientError) as exc:
        sm.put_secret_value(SecretId=name, SecretString="three", ClientRequestToken=token2)
    assert error_of(exc)[0] == "ResourceExistsException"
    # UpdateSecret idempotency
    token3 = str(uuid.uuid4())
    assert (
        sm.update_secret(SecretId=name, SecretString="u", ClientRequestToken=token3)["VersionId"]
        == token3
    )
    assert (
        sm.update_secret(SecretId=name, SecretString="u", ClientRequestToken=token3)["VersionId"]
        == token3
    )
    with pytest.raises(ClientError) as exc:
        sm.update_secret(SecretId=name, SecretString="u2", ClientRequestToken=token3)
    assert error_of(exc)[0] == "ResourceExistsException"


def test_both_values_refused(sm: Any, unique_name: Any) -> None:
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=unique_name(), SecretString="s", SecretBinary=b"b")
    assert error_of(exc)[0] == "InvalidParameterException"


def test_staging_labels_put_cycle(sm: Any, unique_name: Any) -> None:
    name = unique_name()
    v1 = sm.create_secret(Name=name, SecretString="1")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="2")["VersionId"]
    v3 = sm.put_secret_value(SecretId=name, SecretString="3")["VersionId"]
    described = sm.describe_secret(SecretId=name)
    assert described["VersionIdsToStages"] == {v3: ["AWSCURRENT"], v2: ["AWSPREVIOUS"]}
    listed = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert {v["VersionId"] for v in listed} == {v2, v3}
    assert "NextToken" not in sm.list_secret_version_ids(SecretId=name)
    everything = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    deprecated = [v for v in everything if v["VersionId"] == v1]
    assert deprecated and "VersionStages" not in deprecated[0]
    assert all(v["KmsKeyIds"] == ["DefaultEncryptionKey"] for v in everything)
    # custom labels do not move AWSCURRENT
    v4 = sm.put_secret_value(
        SecretId=name, SecretString="4", VersionStages=["SAMPLESTAGE1", "SAMPLESTAGE0"]
    )
    assert v4["VersionStages"] == ["SAMPLESTAGE0", "SAMPLESTAGE1"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "3"
    assert sm.get_secret_value(SecretId=name, VersionStage="SAMPLESTAGE0")["SecretString"] == "4"
    # AWSPREVIOUS read
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "2"
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")
    assert error_of(exc) == (
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret value for staging label: AWSPENDING",
        400,
    )
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=name, VersionId=v2, VersionStage="AWSCURRENT")
    assert error_of(exc) == (
        "InvalidRequestException",
        "You provided a VersionStage that is not associated to the provided VersionId.",
        400,
    )
    missing = str(uuid.uuid4())
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=name, VersionId=missing)
    assert error_of(exc) == (
        "ResourceNotFoundException",
        f"Secrets Manager can't find the specified secret value for VersionId: {missing}",
        400,
    )


def test_update_secret_version_stage(sm: Any, unique_name: Any) -> None:
    name = unique_name()
    v1 = sm.create_secret(Name=name, SecretString="1")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="2", VersionStages=["AWSPENDING"])[
        "VersionId"
    ]
    with pytest.raises(ClientError) as exc:
        sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v2)
    assert error_of(exc) == (
        "InvalidParameterException",
        "The parameter RemoveFromVersionId can't be empty. Staging label AWSCURRENT is currently"
        f" attached to version {v1}, so you must explicitly reference that version in"
        " RemoveFromVersionId.",
        400,
    )
    out = sm.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v2, RemoveFromVersionId=v1
    )
    assert set(strip_meta(out)) == {"ARN", "Name"}
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "2"
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages == {v2: ["AWSCURRENT", "AWSPENDING"], v1: ["AWSPREVIOUS"]}
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSPENDING", RemoveFromVersionId=v2)
    assert sm.describe_secret(SecretId=name)["VersionIdsToStages"][v2] == ["AWSCURRENT"]


def test_update_secret_description_and_value(sm: Any, unique_name: Any) -> None:
    name = unique_name()
    sm.create_secret(Name=name, SecretString="1")
    out = sm.update_secret(SecretId=name, Description="new description")
    assert set(strip_meta(out)) == {"ARN", "Name"}
    described = sm.describe_secret(SecretId=name)
    assert described["Description"] == "new description"
    before = described["LastChangedDate"]
    out = sm.update_secret(SecretId=name, SecretString="2")
    assert set(strip_meta(out)) == {"ARN", "Name", "VersionId"}
    out2 = sm.update_secret(SecretId=name, SecretString="2")
    after = sm.describe_secret(SecretId=name)
    assert after["LastChangedDate"] > before
    assert after["VersionIdsToStages"] == {
        out2["VersionId"]: ["AWSCURRENT"],
        out["VersionId"]: ["AWSPREVIOUS"],
    }


def test_last_changed_strictly_increasing(sm: Any, unique_name: Any) -> None:
    name = unique_name()
    sm.create_secret(Name=name, SecretString="1")
    dates = []
    for i in range(5):
        sm.update_secret(SecretId=name, SecretString=str(i))
        dates.append(sm.describe_secret(SecretId=name)["LastChangedDate"])
    assert all(a < b for a, b in itertools.pairwise(dates))


def test_timestamps_have_millisecond_fractions(server: Any, sm: Any, unique_name: Any) -> None:
    import httpx
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    name = unique_name()
    sm.create_secret(Name=name, SecretString="1")
    body = json.dumps({"SecretId": name})
    request = AWSRequest(
        method="POST",
        url=server.endpoint + "/",
        data=body,
        headers={
            "X-Amz-Target": "secretsmanager.DescribeSecret",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    creds = server.credentials
    SigV4Auth(
        Credentials(creds.access_key_id, creds.secret_access_key), "secretsmanager", "us-east-1"
    ).add_auth(request)
    response = httpx.post(server.endpoint + "/", content=body, headers=dict(request.headers))
    assert response.status_code == 200
    assert "x-amzn-requestid" in response.headers
    raw = response.json()
    assert isinstance(raw["CreatedDate"], float | int)
    assert abs(raw["CreatedDate"] - time.time()) < 120
    assert round(raw["CreatedDate"], 3) == raw["CreatedDate"]


def test_last_accessed_date(sm: Any, unique_name: Any) -> None:
    name = unique_name()
    sm.create_secret(Name=name, SecretString="1")
    assert "LastAccessedDate" not in sm.describe_secret(SecretId=name)
    versions = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert "LastAccessedDate" not in versions[0]
    sm.get_secret_value(SecretId=name)
    first = sm.describe_secret(SecretId=name)["LastAccessedDate"]
    sm.get_secret_value(SecretId=name)
    assert sm.describe_secret(SecretId=name)["LastAccessedDate"] == first
    assert first.hour == first.minute == first.second == 0
    assert "LastAccessedDate" in sm.list_secret_version_ids(SecretId=name)["Versions"][0]


def test_tags(sm: Any, unique_name: Any) -> None:
    name = unique_name()
    sm.create_secret(Name=name, SecretString="v")
    assert "Tags" not in sm.describe_secret(SecretId=name)
    out = sm.tag_resource(
        SecretId=name, Tags=[{"Key": "tag1", "Value": "v1"}, {"Key": "tag2", "Value": "v2"}]
    )
    assert strip_meta(out) == {}
    assert sm.describe_secret(SecretId=name)["Tags"] == [
        {"Key": "tag1", "Value": "v1"},
        {"Key": "tag2", "Value": "v2"},
    ]
    sm.untag_resource(SecretId=name, TagKeys=["tag1", "tag2"])
    assert sm.describe_secret(SecretId=name)["Tags"] == []
    with pytest.raises(ClientError) as exc:
        sm.tag_resource(SecretId=name, Tags=[{"Key": "aws:reserved", "Value": "x"}])
    assert error_of(exc)[0] == "InvalidParameterException"
    many = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    sm.tag_resource(SecretId=name, Tags=many)
    with pytest.raises(ClientError) as exc:
        sm.tag_resource(SecretId=name, Tags=[{"Key": "k50", "Value": "v"}])
    assert error_of(exc)[0] == "InvalidParameterException"
    assert [t["Key"] for t in sm.describe_secret(SecretId=name)["Tags"]] == [
        f"k{i}" for i in range(50)
    ]


def test_delete_restore_and_errors(sm: Any, unique_name: Any) -> None:
    name = unique_name()
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    for days in (6, 31, 0):
        with pytest.raises(ClientError) as exc:
            sm.delete_secret(SecretId=name, RecoveryWindowInDays=days)
        assert error_of(exc) == (
            "InvalidParameterException",
            "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
            400,
        )
    with pytest.raises(ClientError) as exc:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=7, ForceDeleteWithoutRecovery=True)
    assert error_of(exc)[0] == "InvalidParameterException"
    before = time.time()
    deleted = sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    assert set(strip_meta(deleted)) == {"ARN", "Name", "DeletionDate"}
    assert abs(deleted["DeletionDate"].timestamp() - (before + 7 * 86400)) < 120
    described = sm.describe_secret(SecretId=name)
    assert "DeletedDate" in described
    for call in (
        lambda: sm.get_secret_value(SecretId=name),
        lambda: sm.put_secret_value(SecretId=name, SecretString="x"),
        lambda: sm.update_secret(SecretId=name, SecretString="x"),
        lambda: sm.tag_resource(SecretId=name, Tags=[{"Key": "a", "Value": "b"}]),
        lambda: sm.untag_resource(SecretId=name, TagKeys=["a"]),
        lambda: sm.get_resource_policy(SecretId=name),
        lambda: sm.delete_secret(SecretId=name),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == ("InvalidRequestException", MARKED, 400)
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name, SecretString="v")
    assert error_of(exc) == (
        "InvalidRequestException",
        "You can't create this secret because a secret with this name is already scheduled for"
        " deletion.",
        400,
    )
    names = [
        s["Name"]
        for s in sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]
    ]
    assert names == []
    planned = sm.list_secrets(
        IncludePlannedDeletion=True, Filters=[{"Key": "name", "Values": [name]}]
    )
    assert [s["Name"] for s in planned["SecretList"]] == [name]
    restored = sm.restore_secret(SecretId=name)
    assert strip_meta(restored) == {"ARN": arn, "Name": name}
    assert "DeletedDate" not in sm.describe_secret(SecretId=name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"
    # force delete of a scheduled secret, and of one that never existed
    sm.delete_secret(SecretId=name)
    forced = sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    assert set(strip_meta(forced)) == {"ARN", "Name", "DeletionDate"}
    with pytest.raises(ClientError) as exc:
        sm.describe_secret(SecretId=name)
    assert error_of(exc) == ("ResourceNotFoundException", NOT_FOUND, 400)
    ghost = sm.delete_secret(SecretId=unique_name("ghost"), ForceDeleteWithoutRecovery=True)
    assert ghost["ARN"] and ghost["Name"] and ghost["DeletionDate"]


def test_not_found_everywhere(sm: Any, unique_name: Any) -> None:
    name = unique_name("missing")
    for call in (
        lambda: sm.get_secret_value(SecretId=name),
        lambda: sm.describe_secret(SecretId=name),
        lambda: sm.list_secret_version_ids(SecretId=name),
        lambda: sm.put_secret_value(SecretId=name, SecretString="x"),
        lambda: sm.update_secret(SecretId=name, Description="x"),
        lambda: sm.delete_secret(SecretId=name),
        lambda: sm.restore_secret(SecretId=name),
        lambda: sm.tag_resource(SecretId=name, Tags=[]),
        lambda: sm.get_resource_policy(SecretId=name),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == ("ResourceNotFoundException", NOT_FOUND, 400)
        assert exc.value.response["Message"] == NOT_FOUND  # type: ignore[typeddict-item]


def test_modelled_exception_classes(sm: Any, unique_name: Any) -> None:
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.describe_secret(SecretId=unique_name())
    name = unique_name()
    sm.create_secret(Name=name)
    with pytest.raises(sm.exceptions.ResourceExistsException):
        sm.create_secret(Name=name)
    with pytest.raises(sm.exceptions.InvalidParameterException):
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=3)


def test_resource_policies(sm: Any, unique_name: Any) -> None:
    name = unique_name()
    sm.create_secret(Name=name, SecretString="v")
    got = sm.get_resource_policy(SecretId=name)
    assert set(strip_meta(got)) == {"ARN", "Name"}
    assert sm.list_resource_policies(SecretId=name)["ResourcePolicies"] == []
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            }
        ],
    }
    out = sm.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps(policy))
    assert set(strip_meta(out)) == {"ARN", "Name"}
    got = sm.get_resource_policy(SecretId=name)
    assert json.loads(got["ResourcePolicy"]) == policy
    assert sm.list_resource_policies(SecretId=name)["ResourcePolicies"] == [
        {"PolicyName": "default"}
    ]
    valid = sm.validate_resource_policy(ResourcePolicy=json.dumps(policy))
    assert valid["PolicyValidationPassed"] is True and valid["ValidationErrors"] == []
    public = dict(policy, Statement=[dict(policy["Statement"][0], Principal="*")])  # type: ignore[arg-type]
    with pytest.raises(ClientError) as exc:
        sm.put_resource_policy(
            SecretId=name, ResourcePolicy=json.dumps(public), BlockPublicPolicy=True
        )
    assert error_of(exc)[0] == "PublicPolicyException"
    assert (
        sm.validate_resource_policy(ResourcePolicy=json.dumps(public))["PolicyValidationPassed"]
        is False
    )
    with pytest.raises(ClientError) as exc:
        sm.put_resource_policy(SecretId=name, ResourcePolicy="{not json")
    assert error_of(exc)[0] == "MalformedPolicyDocumentException"
    out = sm.delete_resource_policy(SecretId=name)
    assert set(strip_meta(out)) == {"ARN", "Name"}
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=name)
    with pytest.raises(ClientError) as exc:
        sm.put_resource_policy(SecretId=name, ResourcePolicy="x" * 20481)
    assert error_of(exc)[0] == "ValidationException"


def test_get_random_password(sm: Any) -> None:
    assert len(sm.get_random_password()["RandomPassword"]) == 32
    pw = sm.get_random_password(PasswordLength=120, ExcludeCharacters="xyzDje@?!.")[
        "RandomPassword"
    ]
    assert len(pw) == 120 and not set(pw) & set("xyzDje@?!.")
    pw = sm.get_random_password(PasswordLength=64, ExcludePunctuation=True, ExcludeUppercase=True)[
        "RandomPassword"
    ]
    assert pw.isalnum() and pw == pw.lower()
    assert sm.get_random_password(
        PasswordLength=50, ExcludeLowercase=True, ExcludeUppercase=True, ExcludePunctuation=True
    )["RandomPassword"].isdigit()
    # Space is an optional class (not required by RequireEachIncludedType), so look in a long
    # password: the chance of none in 4,096 characters is about e^-43.
    spaced = sm.get_random_password(PasswordLength=4096, IncludeSpace=True)["RandomPassword"]
    assert " " in spaced
    with pytest.raises(ClientError) as exc:
        sm.get_random_password(PasswordLength=4097)
    assert error_of(exc)[0] == "ValidationException"
    passwords = {sm.get_random_password()["RandomPassword"] for _ in range(20)}
    assert len(passwords) == 20


def test_batch_get_secret_value(sm: Any, unique_name: Any) -> None:
    prefix = unique_name("batch")
    arns = [sm.create_secret(Name=f"{prefix}/{i}", SecretString=f"v{i}")["ARN"] for i in range(3)]
    missing = f"{prefix}/missing"
    out = sm.batch_get_secret_value(SecretIdList=[*arns, missing])
    assert sorted(v["SecretString"] for v in out["SecretValues"]) == ["v0", "v1", "v2"]
    assert out["Errors"] == [
        {"SecretId": missing, "ErrorCode": "ResourceNotFoundException", "Message": NOT_FOUND}
    ]
    by_filter = sm.batch_get_secret_value(
        Filters=[{"Key": "name", "Values": [prefix]}], MaxResults=2
    )
    assert len(by_filter["SecretValues"]) == 2 and "NextToken" in by_filter
    rest = sm.batch_get_secret_value(
        Filters=[{"Key": "name", "Values": [prefix]}],
        MaxResults=2,
        NextToken=by_filter["NextToken"],
    )
    assert len(rest["SecretValues"]) == 1 and "NextToken" not in rest
    for kwargs in (
        {},
        {"SecretIdList": arns, "Filters": [{"Key": "name", "Values": ["x"]}]},
        {"SecretIdList": arns, "MaxResults": 2},
    ):
        with pytest.raises(ClientError) as exc:
            sm.batch_get_secret_value(**kwargs)
        assert error_of(exc)[0] == "InvalidParameterException"


def test_list_secrets_filters(sm: Any, unique_name: Any) -> None:
    run = unique_name("flt").replace("-", "")
    specs = [
        (f"{run}testing1/one", "a secret"),
        (f"/{run}testing2/two", "an secret"),
        (f"{run}testing3/three", "asecret"),
        (f"/{run}testing4/four", "thesecret"),
    ]
    for name, description in specs:
        sm.create_secret(
            Name=name, Description=description, Tags=[{"Key": f"{run}key", "Value": name}]
        )

    def names(*filters: dict[str, Any]) -> set[str]:
        scoped = [{"Key": "tag-key", "Values": [f"{run}key"]}, *filters]
        return {s["Name"] for s in sm.list_secrets(Filters=scoped)["SecretList"]}

    all_names = {n for n, _ in specs}
    assert names() == all_names
    assert names({"Key": "name", "Values": [f"/{run}"]}) == {specs[1][0], specs[3][0]}
    assert names({"Key": "name", "Values": [f"!/{run}"]}) == {specs[0][0], specs[2][0]}
    assert names({"Key": "description", "Values": ["a"]}) == {specs[0][0], specs[1][0], specs[2][0]}
    assert names({"Key": "description", "Values": ["!a"]}) == {specs[3][0]}
    assert names({"Key": "description", "Values": ["a secret"]}) == {specs[0][0], specs[1][0]}
    assert names({"Key": "description", "Values": ["!c"]}) == all_names
    assert (
        names({"Key": "description", "Values": ["a"]}, {"Key": "name", "Values": ["secret"]})
        == set()
    )
    assert names({"Key": "tag-value", "Values": [f"/{run}testing2"]}) == {specs[1][0]}
    assert names({"Key": "all", "Values": ["thesecret"]}) == {specs[3][0]}
    with pytest.raises(ClientError) as exc:
        sm.list_secrets(Filters=[{"Key": "bogus", "Values": ["x"]}])
    code, message, _ = error_of(exc)
    assert code == "ValidationException"
    assert (
        "at 'filters.1.member.key' failed to satisfy constraint: Member must satisfy enum value set"
        in message
    )


def test_list_secrets_pagination_and_sorting(sm: Any, unique_name: Any) -> None:
    prefix = unique_name("page")
    created = [
        sm.create_secret(Name=f"{prefix}/{i:02d}", SecretString="v")["Name"] for i in range(7)
    ]
    flt = [{"Key": "name", "Values": [prefix]}]
    seen: list[str] = []
    token = None
    for _ in range(10):
        kwargs: dict[str, Any] = {"Filters": flt, "MaxResults": 3}
        if token:
            kwargs["NextToken"] = token
        page = sm.list_secrets(**kwargs)
        seen += [s["Name"] for s in page["SecretList"]]
        assert all(
            "SecretVersionsToStages" in s and "VersionIdsToStages" not in s
            for s in page["SecretList"]
        )
        token = page.get("NextToken")
        if not token:
            break
    assert seen == created
    desc = sm.list_secrets(Filters=flt, SortBy="name", SortOrder="desc")["SecretList"]
    assert [s["Name"] for s in desc] == created[::-1]
    paginator = sm.get_paginator("list_secrets")
    total = [
        s["Name"]
        for p in paginator.paginate(Filters=flt, PaginationConfig={"PageSize": 2})
        for s in p["SecretList"]
    ]
    assert total == created
    with pytest.raises(ClientError) as exc:
        sm.list_secrets(NextToken="bm90LWEtdG9rZW4=")
    assert error_of(exc)[0] == "InvalidNextTokenException"


def test_next_token_bound_to_its_listing(sm: Any, sm_factory: Any, unique_name: Any) -> None:
    prefix = unique_name("bound")
    for i in range(3):
        sm.create_secret(Name=f"{prefix}/{i}", SecretString="v")
    page = sm.list_secrets(Filters=[{"Key": "name", "Values": [prefix]}], MaxResults=1)
    other_region = sm_factory("eu-west-1")
    with pytest.raises(ClientError) as exc:
        other_region.list_secrets(
            Filters=[{"Key": "name", "Values": [prefix]}], MaxResults=1, NextToken=page["NextToken"]
        )
    assert error_of(exc)[0] == "InvalidNextTokenException"
    tampered = page["NextToken"][:-4] + (
        "AAAA" if not page["NextToken"].endswith("AAAA") else "BBBB"
    )
    with pytest.raises(ClientError) as exc:
        sm.list_secrets(
            Filters=[{"Key": "name", "Values": [prefix]}], MaxResults=1, NextToken=tampered
        )
    assert error_of(exc)[0] == "InvalidNextTokenException"


def test_regions_are_separate(sm: Any, sm_factory: Any, unique_name: Any) -> None:
    name = unique_name()
    sm.create_secret(Name=name, SecretString="east")
    west = sm_factory("us-west-2")
    with pytest.raises(ClientError) as exc:
        west.get_secret_value(SecretId=name)
    assert error_of(exc)[0] == "ResourceNotFoundException"
    arn = west.create_secret(Name=name, SecretString="west")["ARN"]
    assert ":us-west-2:" in arn
    assert west.get_secret_value(SecretId=name)["SecretString"] == "west"
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "east"


def test_not_yet_supported_operations(sm: Any, unique_name: Any) -> None:
    name = unique_name()
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    with pytest.raises(ClientError) as exc:
        sm.associate_cross_account_replica(
            SecretId=name, CrossAccountReplicaARN=arn.replace("us-east-1", "us-west-2")
        )
    code, message, status = error_of(exc)
    assert (code, status) == ("InvalidRequestException", 400)
    assert "not supported" in message


def test_secret_values_never_logged(server: Any, sm: Any, unique_name: Any) -> None:
    canary = "CANARY-" + uuid.uuid4().hex
    name = unique_name()
    sm.create_secret(Name=name, SecretString=canary)
    sm.put_secret_value(SecretId=name, SecretBinary=canary.encode() + b"-bin")
    sm.get_secret_value(SecretId=name)
    with pytest.raises(ClientError):
        sm.put_secret_value(SecretId=name, SecretString=canary + "x" * 70000)
    with pytest.raises(ClientError):
        sm.create_secret(Name=name + " bad", SecretString=canary)
    logs = server.logs()
    assert canary not in logs
    assert base64.b64encode(canary.encode()).decode()[:20] not in logs
