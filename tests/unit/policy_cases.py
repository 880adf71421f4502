"""Decision table for the policy engine, built from AWS's documented policy examples.

Every case is plain data: a description, the documentation page it comes from, the caller, the
identity policies, the resource policy, the request, and the expected decision (`allowed`,
`explicit_deny` or `implicit_deny`, and for denials the policy type AWS names in its message).
The policies are those of the cited pages, with the pages' placeholders (Region, AccountId,
SecretName) filled in with the example account ids AWS itself uses (111122223333, 444455556666).
`group` only fans one documented policy out over several requests.
"""

from __future__ import annotations

from typing import Any

SM_IDENTITY = (
    "https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_iam-policies.html"
)
SM_RESOURCE = "https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_resource-policies.html"
SM_CROSS = "https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_examples_cross.html"
SM_KEYS = (
    "https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_iam-permissions.html"
)
SM_ABAC = "https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access-abac.html"
SM_TAGS = "https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_tags.html"
IAM_OPS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html"
IAM_MULTI = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html"
IAM_LOGIC = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-logic-multiple-context-keys-or-values.html"
IAM_VARS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html"
IAM_EVAL = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html"
IAM_CROSS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html"
IAM_DENYALLOW = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html"
IAM_PRINCIPAL = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html"
)
IAM_NOTPRINCIPAL = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html"
)
IAM_NOTACTION = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html"
)
IAM_NOTRESOURCE = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notresource.html"
)
IAM_ACTION = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html"
)
IAM_RESOURCE = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html"
)
IAM_EX_MFA = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_aws_mfa-dates.html"
IAM_EX_IP = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_aws_deny-ip.html"
)
IAM_EX_DATES = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_aws-dates.html"
)
IAM_EX_REGION = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_aws_deny-requested-region.html"
IAM_GLOBAL = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html"
)
IAM_VERSION = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_version.html"
)

A = "111122223333"  # the resource owner's account in every example
B = "444455556666"  # the other account
REGION = "us-east-1"


def secret(name: str, account: str = A) -> str:
    return f"arn:aws:secretsmanager:{REGION}:{account}:secret:{name}"


MY_SECRET = secret("MySecret-a1b2c3")
PROD_DB = secret("prod/db-XyZ123")
DEV_APP = secret("dev/app-AbC123")
TEST_ENV = secret("TestEnv/api-key-Qw12Er")
KMS_KEY = f"arn:aws:kms:{REGION}:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
LAMBDA = f"arn:aws:lambda:{REGION}:{A}:function:MyRotationFunction"

ALICE: dict[str, Any] = {
    "principal_arn": f"arn:aws:iam::{A}:user/alice",
    "principal_account": A,
    "principal_type": "User",
    "username": "alice",
    "userid": "AIDAJQABLZS4A3QDU576Q",
}
BOB: dict[str, Any] = {
    "principal_arn": f"arn:aws:iam::{A}:user/bob",
    "principal_account": A,
    "principal_type": "User",
    "username": "bob",
    "userid": "AIDAJ45Q7YFFAREXAMPLE",
}
ROLE = f"arn:aws:iam::{A}:role/EC2RoleToAccessSecrets"
ROLE_SESSION: dict[str, Any] = {
    "principal_arn": ROLE,
    "caller_arn": f"arn:aws:sts::{A}:assumed-role/EC2RoleToAccessSecrets/i-0abc",
    "principal_account": A,
    "principal_type": "AssumedRole",
    "userid": "AROADBQP57FF2AEXAMPLE:i-0abc",
}
ROOT: dict[str, Any] = {
    "principal_arn": f"arn:aws:iam::{A}:root",
    "principal_account": A,
    "principal_type": "Account",
    "userid": A,
}
EXT_ROLE_ARN = f"arn:aws:iam::{B}:role/EC2RoleToAccessSecrets"
EXT_ROLE: dict[str, Any] = {
    "principal_arn": EXT_ROLE_ARN,
    "caller_arn": f"arn:aws:sts::{B}:assumed-role/EC2RoleToAccessSecrets/app",
    "principal_account": B,
    "principal_type": "AssumedRole",
    "userid": "AROAEXTERNAL00EXAMPLE:app",
}
EXT_USER: dict[str, Any] = {
    "principal_arn": f"arn:aws:iam::{B}:user/carol",
    "principal_account": B,
    "principal_type": "User",
    "username": "carol",
    "userid": "AIDAEXTERNALEXAMPLE01",
}


def tagged(principal: dict[str, Any], **tags: str) -> dict[str, Any]:
    return {**principal, "principal_tags": tags}


def doc(*statements: dict[str, Any], version: str | None = "2012-10-17") -> dict[str, Any]:
    out: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        out["Version"] = version
    return out


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


CASES: list[dict[str, Any]] = []


def group(
    description: str,
    source: str,
    *,
    identity: list[dict[str, Any]] | None = None,
    resource_policy: dict[str, Any] | None = None,
    rows: list[tuple[str, dict[str, Any], dict[str, Any], str]],
) -> None:
    """rows: (what varies, principal, request, expected) where expected is `allowed`,
    `explicit_deny:<identity|resource>` or `implicit_deny:<identity|resource>`."""
    for label, principal, request, expected in rows:
        CASES.append(
            {
                "description": f"{description}: {label}",
                "source": source,
                "principal": principal,
                "identity_policies": identity or [],
                "resource_policy": resource_policy,
                "request": request,
                "expected": expected,
            }
        )


def req(
    action: str,
    resource: str = "*",
    resource_account: str | None = A,
    **keys: Any,
) -> dict[str, Any]:
    """A request; keyword keys use `__` for `:` and `_S_` for `/` (aws__SourceIp)."""
    names = {k.replace("__", ":").replace("_S_", "/"): v for k, v in keys.items()}
    return {
        "action": action,
        "resource": resource,
        "resource_account": resource_account if resource != "*" else None,
        "condition_keys": names,
    }


GET = "secretsmanager:GetSecretValue"
DESCRIBE = "secretsmanager:DescribeSecret"
LIST = "secretsmanager:ListSecrets"
CREATE = "secretsmanager:CreateSecret"
PUT = "secretsmanager:PutSecretValue"
DELETE = "secretsmanager:DeleteSecret"
UPDATE = "secretsmanager:UpdateSecret"
ROTATE = "secretsmanager:RotateSecret"
TAG = "secretsmanager:TagResource"
PUT_POLICY = "secretsmanager:PutResourcePolicy"
BATCH = "secretsmanager:BatchGetSecretValue"
RANDOM = "secretsmanager:GetRandomPassword"
REPLICATE = "secretsmanager:ReplicateSecretToRegions"

# --- Secrets Manager identity-based policy examples -------------------------------------------

group(
    "SM identity: retrieve an individual secret value",
    SM_IDENTITY + "#auth-and-access_examples_read",
    identity=[doc(allow(GET, MY_SECRET))],
    rows=[
        ("that secret", ALICE, req(GET, MY_SECRET), "allowed"),
        ("another secret", ALICE, req(GET, PROD_DB), "implicit_deny:identity"),
        ("other action on it", ALICE, req(DESCRIBE, MY_SECRET), "implicit_deny:identity"),
        ("put value", ALICE, req(PUT, MY_SECRET), "implicit_deny:identity"),
        ("ListSecrets", ALICE, req(LIST), "implicit_deny:identity"),
        ("lowercase action", ALICE, req("secretsmanager:getsecretvalue", MY_SECRET), "allowed"),
        (
            "same name other account",
            ALICE,
            req(GET, secret("MySecret-a1b2c3", B), B),
            "implicit_deny:identity",
        ),
        (
            "case of ARN differs",
            ALICE,
            req(GET, secret("mysecret-a1b2c3")),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "SM identity: no policies at all is an implicit deny",
    IAM_DENYALLOW,
    identity=[],
    rows=[
        ("get", BOB, req(GET, MY_SECRET), "implicit_deny:identity"),
        ("list", BOB, req(LIST), "implicit_deny:identity"),
        ("role session", ROLE_SESSION, req(GET, MY_SECRET), "implicit_deny:identity"),
        ("create", BOB, req(CREATE, MY_SECRET), "implicit_deny:identity"),
        ("root user has full access", ROOT, req(GET, MY_SECRET), "allowed"),
        ("root user lists", ROOT, req(LIST), "allowed"),
    ],
)
group(
    "SM identity: read and describe individual secrets",
    SM_IDENTITY + "#auth-and-access_examples_read",
    identity=[doc(allow([GET, DESCRIBE], [MY_SECRET, PROD_DB]))],
    rows=[
        ("get first", ALICE, req(GET, MY_SECRET), "allowed"),
        ("describe second", ALICE, req(DESCRIBE, PROD_DB), "allowed"),
        ("get third", ALICE, req(GET, DEV_APP), "implicit_deny:identity"),
        ("delete first", ALICE, req(DELETE, MY_SECRET), "implicit_deny:identity"),
        ("role session describes", ROLE_SESSION, req(DESCRIBE, MY_SECRET), "allowed"),
    ],
)
group(
    "SM identity: retrieve a group of secret values in a batch",
    SM_IDENTITY + "#auth-and-access_examples_batch",
    identity=[
        doc(
            allow(BATCH, "*"),
            allow(GET, [MY_SECRET, PROD_DB]),
        )
    ],
    rows=[
        ("batch itself (resource *)", ALICE, req(BATCH), "allowed"),
        ("member secret 1", ALICE, req(GET, MY_SECRET), "allowed"),
        ("member secret 2", ALICE, req(GET, PROD_DB), "allowed"),
        ("non-member secret", ALICE, req(GET, DEV_APP), "implicit_deny:identity"),
        ("describe member", ALICE, req(DESCRIBE, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "SM identity: wildcards select secrets by path",
    SM_IDENTITY + "#auth-and-access_examples_wildcard",
    identity=[doc(allow(GET, secret("TestEnv/*")))],
    rows=[
        ("under the path", ALICE, req(GET, TEST_ENV), "allowed"),
        ("nested deeper", ALICE, req(GET, secret("TestEnv/a/b/c-Qw12Er")), "allowed"),
        ("other path", ALICE, req(GET, PROD_DB), "implicit_deny:identity"),
        (
            "path case differs",
            ALICE,
            req(GET, secret("testenv/api-Qw12Er")),
            "implicit_deny:identity",
        ),
        (
            "other region",
            ALICE,
            req(GET, TEST_ENV.replace(REGION, "eu-west-1")),
            "implicit_deny:identity",
        ),
        ("describe", ALICE, req(DESCRIBE, TEST_ENV), "implicit_deny:identity"),
    ],
)
group(
    "SM identity: secret ARN with six ? for the random suffix",
    SM_IDENTITY + "#auth-and-access_examples_wildcard",
    identity=[doc(allow(GET, secret("MySecret-??????")))],
    rows=[
        ("any suffix", ALICE, req(GET, secret("MySecret-Zz9Yy8")), "allowed"),
        ("the example secret", ALICE, req(GET, MY_SECRET), "allowed"),
        ("suffix too short", ALICE, req(GET, secret("MySecret-abc")), "implicit_deny:identity"),
        ("suffix too long", ALICE, req(GET, secret("MySecret-abcdefg")), "implicit_deny:identity"),
        ("longer name", ALICE, req(GET, secret("MySecretX-a1b2c3")), "implicit_deny:identity"),
    ],
)
group(
    "SM identity: all secrets in one region and account with a service wildcard action",
    IAM_ACTION,
    identity=[doc(allow("secretsmanager:*", f"arn:aws:secretsmanager:{REGION}:{A}:secret:*"))],
    rows=[
        ("get", ALICE, req(GET, MY_SECRET), "allowed"),
        ("delete", ALICE, req(DELETE, PROD_DB), "allowed"),
        ("rotate", ALICE, req(ROTATE, DEV_APP), "allowed"),
        ("list needs resource *", ALICE, req(LIST), "implicit_deny:identity"),
        (
            "other account's secret",
            ALICE,
            req(GET, secret("x-abcdef", B), B),
            "implicit_deny:identity",
        ),
        ("kms action", ALICE, req("kms:Decrypt", KMS_KEY), "implicit_deny:identity"),
    ],
)
group(
    "SecretsManagerReadWrite-style: secretsmanager:* on *",
    "https://docs.aws.amazon.com/aws-managed-policy/latest/reference/SecretsManagerReadWrite.html",
    identity=[doc(allow("secretsmanager:*", "*"))],
    rows=[
        ("get", ALICE, req(GET, MY_SECRET), "allowed"),
        ("list", ALICE, req(LIST), "allowed"),
        ("random password", ALICE, req(RANDOM), "allowed"),
        ("create", ALICE, req(CREATE, secret("new-abcdef")), "allowed"),
        ("put resource policy", ALICE, req(PUT_POLICY, MY_SECRET), "allowed"),
        (
            "iam action",
            ALICE,
            req("iam:CreateUser", f"arn:aws:iam::{A}:user/x"),
            "implicit_deny:identity",
        ),
        ("mixed-case action", ALICE, req("SecretsManager:GetSecretValue", MY_SECRET), "allowed"),
        ("role session", ROLE_SESSION, req(PUT, PROD_DB), "allowed"),
    ],
)
group(
    "Action wildcards: secretsmanager:Get* and secretsmanager:*Secret",
    IAM_ACTION,
    identity=[
        doc(allow(["secretsmanager:Get*", "secretsmanager:*Secret", "secretsmanager:List?ecrets"]))
    ],
    rows=[
        ("GetSecretValue", ALICE, req(GET, MY_SECRET), "allowed"),
        ("GetRandomPassword", ALICE, req(RANDOM), "allowed"),
        ("GetResourcePolicy", ALICE, req("secretsmanager:GetResourcePolicy", MY_SECRET), "allowed"),
        ("DescribeSecret", ALICE, req(DESCRIBE, MY_SECRET), "allowed"),
        ("DeleteSecret", ALICE, req(DELETE, MY_SECRET), "allowed"),
        ("ListSecrets via ?", ALICE, req(LIST), "allowed"),
        ("PutSecretValue", ALICE, req(PUT, MY_SECRET), "implicit_deny:identity"),
        ("TagResource", ALICE, req(TAG, MY_SECRET), "implicit_deny:identity"),
        (
            "ListSecretVersionIds",
            ALICE,
            req("secretsmanager:ListSecretVersionIds", MY_SECRET),
            "implicit_deny:identity",
        ),
        (
            "kms:GetPublicKey is another service",
            ALICE,
            req("kms:GetPublicKey", KMS_KEY),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "SM identity: permission to create secrets (with tags needs TagResource)",
    SM_IDENTITY + "#auth-and-access_examples_create",
    identity=[doc(allow([CREATE, TAG, RANDOM], "*"))],
    rows=[
        ("create", ALICE, req(CREATE, secret("new-abcdef")), "allowed"),
        ("tag", ALICE, req(TAG, secret("new-abcdef")), "allowed"),
        ("random password", ALICE, req(RANDOM), "allowed"),
        ("get value", ALICE, req(GET, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "SM identity: deny a specific KMS key for encrypting secrets",
    SM_IDENTITY + "#auth-and-access_examples_kms",
    identity=[
        doc(
            allow([CREATE, UPDATE], "*"),
            deny(
                [CREATE, UPDATE],
                "*",
                Condition={"StringEquals": {"secretsmanager:KmsKeyId": KMS_KEY}},
            ),
        )
    ],
    rows=[
        (
            "create with that key",
            ALICE,
            req(CREATE, MY_SECRET, secretsmanager__KmsKeyId=KMS_KEY),
            "explicit_deny:identity",
        ),
        (
            "update with that key",
            ALICE,
            req(UPDATE, MY_SECRET, secretsmanager__KmsKeyId=KMS_KEY),
            "explicit_deny:identity",
        ),
        (
            "create with another key",
            ALICE,
            req(CREATE, MY_SECRET, secretsmanager__KmsKeyId=KMS_KEY[:-2] + "ff"),
            "allowed",
        ),
        ("create with default key", ALICE, req(CREATE, MY_SECRET), "allowed"),
        (
            "key id differs in case",
            ALICE,
            req(CREATE, MY_SECRET, secretsmanager__KmsKeyId=KMS_KEY.upper()),
            "allowed",
        ),
        (
            "condition key name in other case",
            ALICE,
            req(CREATE, MY_SECRET, SecretsManager__KMSKeyID=KMS_KEY),
            "explicit_deny:identity",
        ),
    ],
)
group(
    "SM ABAC: secret tag must match the principal's tag (policy variable)",
    SM_ABAC,
    identity=[
        doc(
            allow(
                [GET, DESCRIBE],
                "*",
                Condition={
                    "StringEquals": {
                        "secretsmanager:ResourceTag/AccessProject": "${aws:PrincipalTag/AccessProject}"
                    }
                },
            )
        )
    ],
    rows=[
        (
            "tags match",
            tagged(ALICE, AccessProject="alpha"),
            req(GET, MY_SECRET, **{"secretsmanager:ResourceTag/AccessProject": "alpha"}),
            "allowed",
        ),
        (
            "tags differ",
            tagged(ALICE, AccessProject="alpha"),
            req(GET, MY_SECRET, **{"secretsmanager:ResourceTag/AccessProject": "beta"}),
            "implicit_deny:identity",
        ),
        (
            "secret untagged",
            tagged(ALICE, AccessProject="alpha"),
            req(GET, MY_SECRET),
            "implicit_deny:identity",
        ),
        (
            "principal untagged",
            ALICE,
            req(GET, MY_SECRET, **{"secretsmanager:ResourceTag/AccessProject": "alpha"}),
            "implicit_deny:identity",
        ),
        (
            "tag key case-insensitive",
            tagged(ALICE, accessproject="alpha"),
            req(GET, MY_SECRET, **{"secretsmanager:resourcetag/ACCESSPROJECT": "alpha"}),
            "allowed",
        ),
        (
            "tag value case-sensitive",
            tagged(ALICE, AccessProject="alpha"),
            req(GET, MY_SECRET, **{"secretsmanager:ResourceTag/AccessProject": "Alpha"}),
            "implicit_deny:identity",
        ),
        (
            "role session tags",
            tagged(ROLE_SESSION, AccessProject="alpha"),
            req(DESCRIBE, MY_SECRET, **{"secretsmanager:ResourceTag/AccessProject": "alpha"}),
            "allowed",
        ),
        (
            "principal tag with a * is literal",
            tagged(ALICE, AccessProject="*"),
            req(GET, MY_SECRET, **{"secretsmanager:ResourceTag/AccessProject": "alpha"}),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "SM tags: access secrets with a given tag value",
    SM_TAGS,
    identity=[
        doc(
            allow(
                [DESCRIBE, GET],
                "*",
                Condition={"StringEquals": {"secretsmanager:ResourceTag/ServerName": "ServerABC"}},
            )
        )
    ],
    rows=[
        (
            "tagged ServerABC",
            ALICE,
            req(GET, MY_SECRET, **{"secretsmanager:ResourceTag/ServerName": "ServerABC"}),
            "allowed",
        ),
        (
            "tagged other server",
            ALICE,
            req(GET, MY_SECRET, **{"secretsmanager:ResourceTag/ServerName": "ServerXYZ"}),
            "implicit_deny:identity",
        ),
        (
            "aws:ResourceTag is a different key",
            ALICE,
            req(GET, MY_SECRET, **{"aws:ResourceTag/ServerName": "ServerABC"}),
            "implicit_deny:identity",
        ),
        ("untagged", ALICE, req(DESCRIBE, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "SM tags: create secrets only with required tags (Null on aws:RequestTag)",
    SM_TAGS,
    identity=[
        doc(
            allow([CREATE, TAG], "*"),
            deny(CREATE, "*", Condition={"Null": {"aws:RequestTag/Owner": "true"}}),
        )
    ],
    rows=[
        (
            "with Owner tag",
            ALICE,
            req(CREATE, MY_SECRET, **{"aws:RequestTag/Owner": "alice"}),
            "allowed",
        ),
        ("without tags", ALICE, req(CREATE, MY_SECRET), "explicit_deny:identity"),
        (
            "with other tag only",
            ALICE,
            req(CREATE, MY_SECRET, **{"aws:RequestTag/Team": "x"}),
            "explicit_deny:identity",
        ),
        ("tagging later is another action", ALICE, req(TAG, MY_SECRET), "allowed"),
    ],
)
group(
    "SM tags: only allowed tag keys (ForAllValues:StringEquals aws:TagKeys)",
    SM_TAGS,
    identity=[
        doc(
            allow(
                [CREATE, TAG],
                "*",
                Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["Owner", "CostCenter"]}},
            )
        )
    ],
    rows=[
        (
            "both allowed keys",
            ALICE,
            req(CREATE, MY_SECRET, aws__TagKeys=["Owner", "CostCenter"]),
            "allowed",
        ),
        ("one allowed key", ALICE, req(TAG, MY_SECRET, aws__TagKeys=["Owner"]), "allowed"),
        (
            "one extra key",
            ALICE,
            req(TAG, MY_SECRET, aws__TagKeys=["Owner", "Secret"]),
            "implicit_deny:identity",
        ),
        ("no tags: ForAllValues true on missing key", ALICE, req(CREATE, MY_SECRET), "allowed"),
        ("empty tag list", ALICE, req(CREATE, MY_SECRET, aws__TagKeys=[]), "allowed"),
        (
            "key in other case",
            ALICE,
            req(TAG, MY_SECRET, aws__TagKeys=["owner"]),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "SM: deny tags other than approved (ForAnyValue:StringNotEquals)",
    IAM_MULTI,
    identity=[
        doc(
            allow(TAG, "*"),
            deny(
                TAG,
                "*",
                Condition={"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["Owner", "CostCenter"]}},
            ),
        )
    ],
    rows=[
        ("approved keys", ALICE, req(TAG, MY_SECRET, aws__TagKeys=["Owner"]), "allowed"),
        (
            "an unapproved key",
            ALICE,
            req(TAG, MY_SECRET, aws__TagKeys=["Owner", "Rogue"]),
            "explicit_deny:identity",
        ),
        ("no keys: ForAnyValue false", ALICE, req(TAG, MY_SECRET), "allowed"),
    ],
)
group(
    "SM: rotation only with a given Lambda (ArnLike secretsmanager:RotationLambdaARN)",
    SM_KEYS,
    identity=[
        doc(
            allow(
                ROTATE,
                "*",
                Condition={
                    "ArnLike": {
                        "secretsmanager:RotationLambdaARN": f"arn:aws:lambda:*:{A}:function:MyRotation*"
                    }
                },
            )
        )
    ],
    rows=[
        (
            "matching function",
            ALICE,
            req(ROTATE, MY_SECRET, secretsmanager__RotationLambdaARN=LAMBDA),
            "allowed",
        ),
        (
            "other region same function",
            ALICE,
            req(
                ROTATE,
                MY_SECRET,
                secretsmanager__RotationLambdaARN=LAMBDA.replace(REGION, "eu-west-1"),
            ),
            "allowed",
        ),
        (
            "other account",
            ALICE,
            req(ROTATE, MY_SECRET, secretsmanager__RotationLambdaARN=LAMBDA.replace(A, B)),
            "implicit_deny:identity",
        ),
        (
            "other function",
            ALICE,
            req(
                ROTATE,
                MY_SECRET,
                secretsmanager__RotationLambdaARN=f"arn:aws:lambda:{REGION}:{A}:function:Other",
            ),
            "implicit_deny:identity",
        ),
        ("no lambda in request", ALICE, req(ROTATE, MY_SECRET), "implicit_deny:identity"),
        (
            "not an ARN",
            ALICE,
            req(ROTATE, MY_SECRET, secretsmanager__RotationLambdaARN="MyRotationFunction"),
            "implicit_deny:identity",
        ),
        (
            "region * does not span colons",
            ALICE,
            req(
                ROTATE,
                MY_SECRET,
                secretsmanager__RotationLambdaARN=f"arn:aws:lambda:a:b:{A}:function:MyRotationX",
            ),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "SM: deny immediate deletion (Bool secretsmanager:ForceDeleteWithoutRecovery)",
    SM_KEYS,
    identity=[
        doc(
            allow(DELETE, "*"),
            deny(
                DELETE,
                "*",
                Condition={"Bool": {"secretsmanager:ForceDeleteWithoutRecovery": "true"}},
            ),
        )
    ],
    rows=[
        (
            "force delete",
            ALICE,
            req(DELETE, MY_SECRET, secretsmanager__ForceDeleteWithoutRecovery=True),
            "explicit_deny:identity",
        ),
        (
            "force delete as string",
            ALICE,
            req(DELETE, MY_SECRET, secretsmanager__ForceDeleteWithoutRecovery="true"),
            "explicit_deny:identity",
        ),
        (
            "force delete TRUE",
            ALICE,
            req(DELETE, MY_SECRET, secretsmanager__ForceDeleteWithoutRecovery="TRUE"),
            "explicit_deny:identity",
        ),
        (
            "with recovery window",
            ALICE,
            req(DELETE, MY_SECRET, secretsmanager__ForceDeleteWithoutRecovery=False),
            "allowed",
        ),
        ("key absent", ALICE, req(DELETE, MY_SECRET), "allowed"),
    ],
)
group(
    "SM: recovery window at least 7 days (NumericLessThan secretsmanager:RecoveryWindowInDays)",
    SM_KEYS,
    identity=[
        doc(
            allow(DELETE, "*"),
            deny(
                DELETE,
                "*",
                Condition={"NumericLessThan": {"secretsmanager:RecoveryWindowInDays": "14"}},
            ),
        )
    ],
    rows=[
        (
            "7 days",
            ALICE,
            req(DELETE, MY_SECRET, secretsmanager__RecoveryWindowInDays=7),
            "explicit_deny:identity",
        ),
        (
            "13 days",
            ALICE,
            req(DELETE, MY_SECRET, secretsmanager__RecoveryWindowInDays=13),
            "explicit_deny:identity",
        ),
        (
            "14 days",
            ALICE,
            req(DELETE, MY_SECRET, secretsmanager__RecoveryWindowInDays=14),
            "allowed",
        ),
        (
            "30 days",
            ALICE,
            req(DELETE, MY_SECRET, secretsmanager__RecoveryWindowInDays=30),
            "allowed",
        ),
        (
            "as string",
            ALICE,
            req(DELETE, MY_SECRET, secretsmanager__RecoveryWindowInDays="7"),
            "explicit_deny:identity",
        ),
        ("absent", ALICE, req(DELETE, MY_SECRET), "allowed"),
        (
            "not a number",
            ALICE,
            req(DELETE, MY_SECRET, secretsmanager__RecoveryWindowInDays="soon"),
            "allowed",
        ),
    ],
)
group(
    "SM: resource policies must block public access (Bool secretsmanager:BlockPublicPolicy)",
    SM_KEYS,
    identity=[
        doc(
            allow(
                PUT_POLICY, "*", Condition={"Bool": {"secretsmanager:BlockPublicPolicy": "true"}}
            ),
        )
    ],
    rows=[
        (
            "block true",
            ALICE,
            req(PUT_POLICY, MY_SECRET, secretsmanager__BlockPublicPolicy=True),
            "allowed",
        ),
        (
            "block false",
            ALICE,
            req(PUT_POLICY, MY_SECRET, secretsmanager__BlockPublicPolicy=False),
            "implicit_deny:identity",
        ),
        ("not given", ALICE, req(PUT_POLICY, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "SM: name prefix (StringLike secretsmanager:Name) on create",
    SM_KEYS,
    identity=[doc(allow(CREATE, "*", Condition={"StringLike": {"secretsmanager:Name": "dev/*"}}))],
    rows=[
        ("dev name", ALICE, req(CREATE, DEV_APP, secretsmanager__Name="dev/app"), "allowed"),
        (
            "prod name",
            ALICE,
            req(CREATE, PROD_DB, secretsmanager__Name="prod/db"),
            "implicit_deny:identity",
        ),
        (
            "dev without slash",
            ALICE,
            req(CREATE, DEV_APP, secretsmanager__Name="devapp"),
            "implicit_deny:identity",
        ),
        ("no name key", ALICE, req(CREATE, DEV_APP), "implicit_deny:identity"),
        (
            "uppercase DEV",
            ALICE,
            req(CREATE, DEV_APP, secretsmanager__Name="DEV/app"),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "SM: read only the AWSCURRENT version (ForAnyValue:StringEquals secretsmanager:VersionStage)",
    SM_KEYS,
    identity=[
        doc(
            allow(
                GET,
                "*",
                Condition={
                    "ForAnyValue:StringEquals": {"secretsmanager:VersionStage": "AWSCURRENT"}
                },
            )
        )
    ],
    rows=[
        (
            "AWSCURRENT",
            ALICE,
            req(GET, MY_SECRET, secretsmanager__VersionStage="AWSCURRENT"),
            "allowed",
        ),
        (
            "AWSPREVIOUS",
            ALICE,
            req(GET, MY_SECRET, secretsmanager__VersionStage="AWSPREVIOUS"),
            "implicit_deny:identity",
        ),
        (
            "stage not passed (boto3/aws-cli issue 5031)",
            ALICE,
            req(GET, MY_SECRET),
            "implicit_deny:identity",
        ),
        (
            "several stages incl. current",
            ALICE,
            req(GET, MY_SECRET, secretsmanager__VersionStage=["AWSPENDING", "AWSCURRENT"]),
            "allowed",
        ),
    ],
)
group(
    "SM: replication limited to regions (ForAllValues:StringEquals secretsmanager:AddReplicaRegions)",
    SM_KEYS,
    identity=[
        doc(
            allow(
                REPLICATE,
                "*",
                Condition={
                    "ForAllValues:StringEquals": {
                        "secretsmanager:AddReplicaRegions": ["eu-west-1", "eu-central-1"]
                    }
                },
            )
        )
    ],
    rows=[
        (
            "one allowed",
            ALICE,
            req(REPLICATE, MY_SECRET, secretsmanager__AddReplicaRegions=["eu-west-1"]),
            "allowed",
        ),
        (
            "both allowed",
            ALICE,
            req(
                REPLICATE,
                MY_SECRET,
                secretsmanager__AddReplicaRegions=["eu-west-1", "eu-central-1"],
            ),
            "allowed",
        ),
        (
            "one outside",
            ALICE,
            req(REPLICATE, MY_SECRET, secretsmanager__AddReplicaRegions=["eu-west-1", "us-west-2"]),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "SM: description must be set (StringNotEquals on an empty value)",
    SM_KEYS,
    identity=[
        doc(
            allow(
                [CREATE, UPDATE],
                "*",
                Condition={"StringNotEqualsIfExists": {"secretsmanager:Description": ""}},
            )
        )
    ],
    rows=[
        (
            "with description",
            ALICE,
            req(CREATE, MY_SECRET, secretsmanager__Description="db creds"),
            "allowed",
        ),
        (
            "empty description",
            ALICE,
            req(CREATE, MY_SECRET, secretsmanager__Description=""),
            "implicit_deny:identity",
        ),
        ("no description (IfExists)", ALICE, req(UPDATE, MY_SECRET), "allowed"),
    ],
)
group(
    "SM: SecretId condition on a partial name (StringLike secretsmanager:SecretId)",
    SM_KEYS,
    identity=[
        doc(
            allow(
                GET,
                "*",
                Condition={
                    "StringLike": {
                        "secretsmanager:SecretId": [
                            "MySecret",
                            "arn:aws:secretsmanager:*:*:secret:MySecret-*",
                        ]
                    }
                },
            )
        )
    ],
    rows=[
        ("by name", ALICE, req(GET, MY_SECRET, secretsmanager__SecretId="MySecret"), "allowed"),
        ("by full ARN", ALICE, req(GET, MY_SECRET, secretsmanager__SecretId=MY_SECRET), "allowed"),
        (
            "by other name",
            ALICE,
            req(GET, PROD_DB, secretsmanager__SecretId="prod/db"),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "SM: resource/AllowRotationLambdaArn must match",
    SM_KEYS,
    identity=[
        doc(
            allow(
                ROTATE,
                "*",
                Condition={"ArnEquals": {"secretsmanager:resource/AllowRotationLambdaArn": LAMBDA}},
            )
        )
    ],
    rows=[
        (
            "equal",
            ALICE,
            req(ROTATE, MY_SECRET, **{"secretsmanager:resource/AllowRotationLambdaArn": LAMBDA}),
            "allowed",
        ),
        (
            "different",
            ALICE,
            req(
                ROTATE,
                MY_SECRET,
                **{"secretsmanager:resource/AllowRotationLambdaArn": LAMBDA + "2"},
            ),
            "implicit_deny:identity",
        ),
        ("missing", ALICE, req(ROTATE, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "SM: rotate immediately forbidden (Bool secretsmanager:RotateImmediately, deny)",
    SM_KEYS,
    identity=[
        doc(
            allow(ROTATE, "*"),
            deny(ROTATE, "*", Condition={"Bool": {"secretsmanager:RotateImmediately": "true"}}),
        )
    ],
    rows=[
        (
            "immediately",
            ALICE,
            req(ROTATE, MY_SECRET, secretsmanager__RotateImmediately=True),
            "explicit_deny:identity",
        ),
        (
            "scheduled",
            ALICE,
            req(ROTATE, MY_SECRET, secretsmanager__RotateImmediately=False),
            "allowed",
        ),
        ("absent", ALICE, req(ROTATE, MY_SECRET), "allowed"),
    ],
)
group(
    "SM: primary region condition (StringEquals secretsmanager:SecretPrimaryRegion)",
    SM_KEYS,
    identity=[
        doc(
            allow(
                GET, "*", Condition={"StringEquals": {"secretsmanager:SecretPrimaryRegion": REGION}}
            )
        )
    ],
    rows=[
        (
            "primary us-east-1",
            ALICE,
            req(GET, MY_SECRET, secretsmanager__SecretPrimaryRegion=REGION),
            "allowed",
        ),
        (
            "primary elsewhere",
            ALICE,
            req(GET, MY_SECRET, secretsmanager__SecretPrimaryRegion="eu-west-1"),
            "implicit_deny:identity",
        ),
    ],
)

# --- Secrets Manager resource-based policy examples --------------------------------------------

group(
    "SM resource: retrieve a secret across accounts (role in other account)",
    SM_RESOURCE + "#auth-and-access_resource-policies_cross-account",
    identity=[doc(allow(GET, "*"))],
    resource_policy=doc(
        {"Effect": "Allow", "Principal": {"AWS": EXT_ROLE_ARN}, "Action": GET, "Resource": "*"}
    ),
    rows=[
        ("external role session", EXT_ROLE, req(GET, MY_SECRET), "allowed"),
        (
            "external role, other action",
            EXT_ROLE,
            req(DESCRIBE, MY_SECRET),
            "implicit_deny:identity",
        ),
        ("external user not named", EXT_USER, req(GET, MY_SECRET), "implicit_deny:resource"),
        ("same-account alice (identity allows)", ALICE, req(GET, MY_SECRET), "allowed"),
    ],
)
group(
    "SM cross-account: identity policy of the caller must allow too",
    IAM_CROSS,
    identity=[],
    resource_policy=doc(
        {"Effect": "Allow", "Principal": {"AWS": EXT_ROLE_ARN}, "Action": GET, "Resource": "*"}
    ),
    rows=[
        (
            "external role without identity policy",
            EXT_ROLE,
            req(GET, MY_SECRET),
            "implicit_deny:identity",
        ),
        ("same-account user without policy", ALICE, req(GET, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "SM cross-account: identity policy allows but no resource policy",
    SM_CROSS,
    identity=[doc(allow(GET, secret("MySecret-??????")))],
    resource_policy=None,
    rows=[
        ("external role", EXT_ROLE, req(GET, MY_SECRET), "implicit_deny:resource"),
        ("external user", EXT_USER, req(GET, MY_SECRET), "implicit_deny:resource"),
        ("same account", ALICE, req(GET, MY_SECRET), "allowed"),
    ],
)
group(
    "SM resource: share with a whole account (account principal)",
    IAM_PRINCIPAL + "#principal-accounts",
    identity=[doc(allow(GET, "*"))],
    resource_policy=doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{B}:root"},
            "Action": GET,
            "Resource": "*",
        }
    ),
    rows=[
        ("external user with identity allow", EXT_USER, req(GET, MY_SECRET), "allowed"),
        ("external role with identity allow", EXT_ROLE, req(GET, MY_SECRET), "allowed"),
        (
            "describe: caller's identity policy does not allow",
            EXT_USER,
            req(DESCRIBE, MY_SECRET),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "SM resource: account given as a bare 12-digit id",
    IAM_PRINCIPAL + "#principal-accounts",
    identity=[doc(allow(GET, "*"))],
    resource_policy=doc(
        {"Effect": "Allow", "Principal": {"AWS": B}, "Action": GET, "Resource": "*"}
    ),
    rows=[
        ("external user", EXT_USER, req(GET, MY_SECRET), "allowed"),
        ("external role", EXT_ROLE, req(GET, MY_SECRET), "allowed"),
    ],
)
group(
    "Account principal delegates: it grants nothing without the account's identity policies",
    IAM_PRINCIPAL + "#principal-accounts",
    identity=[],
    resource_policy=doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": [A, B]},
            "Action": "secretsmanager:*",
            "Resource": "*",
        }
    ),
    rows=[
        (
            "same-account user, no identity policy",
            ALICE,
            req(GET, MY_SECRET),
            "implicit_deny:identity",
        ),
        (
            "same-account role, no identity policy",
            ROLE_SESSION,
            req(GET, MY_SECRET),
            "implicit_deny:identity",
        ),
        (
            "external user, no identity policy",
            EXT_USER,
            req(GET, MY_SECRET),
            "implicit_deny:identity",
        ),
        ("root of the owning account", ROOT, req(GET, MY_SECRET), "allowed"),
    ],
)
group(
    "Same account: a resource policy naming the user allows without an identity policy",
    IAM_EVAL + "#reference_policies_evaluation-logic_policies_evaluation_example",
    identity=[],
    resource_policy=doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ALICE["principal_arn"]},
            "Action": [GET, DESCRIBE],
            "Resource": "*",
        }
    ),
    rows=[
        ("alice gets", ALICE, req(GET, MY_SECRET), "allowed"),
        ("alice describes", ALICE, req(DESCRIBE, MY_SECRET), "allowed"),
        ("alice deletes", ALICE, req(DELETE, MY_SECRET), "implicit_deny:identity"),
        ("bob gets", BOB, req(GET, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "Same account: a resource policy naming the role covers its sessions",
    IAM_PRINCIPAL + "#principal-roles",
    identity=[],
    resource_policy=doc(
        {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": GET, "Resource": "*"}
    ),
    rows=[
        ("role session", ROLE_SESSION, req(GET, MY_SECRET), "allowed"),
        ("user", ALICE, req(GET, MY_SECRET), "implicit_deny:identity"),
        ("other action", ROLE_SESSION, req(PUT, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "Same account: a resource policy naming the session ARN",
    IAM_PRINCIPAL + "#sts-session-principals",
    identity=[],
    resource_policy=doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ROLE_SESSION["caller_arn"]},
            "Action": GET,
            "Resource": "*",
        }
    ),
    rows=[
        ("that session", ROLE_SESSION, req(GET, MY_SECRET), "allowed"),
        (
            "another session of the role",
            {**ROLE_SESSION, "caller_arn": ROLE_SESSION["caller_arn"] + "x"},
            req(GET, MY_SECRET),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "Same account: either identity or resource policy suffices",
    IAM_EVAL + "#reference_policies_evaluation-logic_policies_evaluation_example",
    identity=[doc(allow(DESCRIBE, "*"))],
    resource_policy=doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ALICE["principal_arn"]},
            "Action": GET,
            "Resource": "*",
        }
    ),
    rows=[
        ("describe via identity", ALICE, req(DESCRIBE, MY_SECRET), "allowed"),
        ("get via resource", ALICE, req(GET, MY_SECRET), "allowed"),
        ("put via neither", ALICE, req(PUT, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "SM resource: deny beats allow (explicit deny in a resource-based policy)",
    SM_RESOURCE,
    identity=[doc(allow("secretsmanager:*", "*"))],
    resource_policy=doc(
        {
            "Effect": "Deny",
            "Principal": {"AWS": BOB["principal_arn"]},
            "Action": "secretsmanager:*",
            "Resource": "*",
        },
    ),
    rows=[
        ("bob denied", BOB, req(GET, MY_SECRET), "explicit_deny:resource"),
        ("bob describe denied", BOB, req(DESCRIBE, MY_SECRET), "explicit_deny:resource"),
        ("alice allowed", ALICE, req(GET, MY_SECRET), "allowed"),
        ("root is not the denied user", ROOT, req(GET, MY_SECRET), "allowed"),
    ],
)
group(
    "SM resource: deny everyone except one role (Principal * with StringNotEquals aws:PrincipalArn)",
    SM_RESOURCE,
    identity=[doc(allow("secretsmanager:*", "*"))],
    resource_policy=doc(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": GET,
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:PrincipalArn": ROLE}},
        }
    ),
    rows=[
        ("the role's session", ROLE_SESSION, req(GET, MY_SECRET), "allowed"),
        ("alice", ALICE, req(GET, MY_SECRET), "explicit_deny:resource"),
        ("root", ROOT, req(GET, MY_SECRET), "explicit_deny:resource"),
        ("alice describe (other action)", ALICE, req(DESCRIBE, MY_SECRET), "allowed"),
        ("external role session", EXT_ROLE, req(GET, MY_SECRET), "explicit_deny:resource"),
    ],
)
group(
    "SM resource: deny unless the principal is in the owning account (aws:PrincipalAccount)",
    IAM_GLOBAL + "#condition-keys-principalaccount",
    identity=[doc(allow(GET, "*"))],
    resource_policy=doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam::{B}:root"]},
            "Action": GET,
            "Resource": "*",
        },
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "secretsmanager:*",
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:PrincipalAccount": [A, B]}},
        },
    ),
    rows=[
        ("owner account", ALICE, req(GET, MY_SECRET), "allowed"),
        ("trusted account", EXT_USER, req(GET, MY_SECRET), "allowed"),
        (
            "third account",
            {
                **EXT_USER,
                "principal_arn": "arn:aws:iam::999988887777:user/eve",
                "principal_account": "999988887777",
            },
            req(GET, MY_SECRET),
            "explicit_deny:resource",
        ),
    ],
)
group(
    "SM resource: public policy (Principal *) same account vs cross account",
    IAM_CROSS,
    identity=[],
    resource_policy=doc({"Effect": "Allow", "Principal": "*", "Action": GET, "Resource": "*"}),
    rows=[
        ("same-account user with no identity policy", ALICE, req(GET, MY_SECRET), "allowed"),
        (
            "external user with no identity policy",
            EXT_USER,
            req(GET, MY_SECRET),
            "implicit_deny:identity",
        ),
        ("another same-account user", BOB, req(GET, MY_SECRET), "allowed"),
    ],
)
group(
    'SM resource: {"AWS": "*"} principal',
    IAM_PRINCIPAL + "#principal-anonymous",
    identity=[doc(allow(GET, "*"))],
    resource_policy=doc(
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": GET, "Resource": "*"}
    ),
    rows=[
        ("external user with identity allow", EXT_USER, req(GET, MY_SECRET), "allowed"),
        ("external role with identity allow", EXT_ROLE, req(GET, MY_SECRET), "allowed"),
    ],
)
group(
    "SM resource: service principal",
    IAM_PRINCIPAL + "#principal-services",
    identity=[],
    resource_policy=doc(
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": GET,
            "Resource": "*",
        }
    ),
    rows=[
        (
            "lambda service",
            {**ROOT, "principal_type": "Service", "service_principal": "lambda.amazonaws.com"},
            req(GET, MY_SECRET),
            "allowed",
        ),
        (
            "other service",
            {**ROOT, "principal_type": "Service", "service_principal": "ec2.amazonaws.com"},
            req(GET, MY_SECRET),
            "implicit_deny:identity",
        ),
        ("a user", ALICE, req(GET, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "SM resource: only AWSCURRENT for the other account (version stage in a resource policy)",
    SM_CROSS,
    identity=[doc(allow(GET, "*"))],
    resource_policy=doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{B}:root"},
            "Action": GET,
            "Resource": "*",
            "Condition": {
                "ForAnyValue:StringEquals": {"secretsmanager:VersionStage": "AWSCURRENT"}
            },
        }
    ),
    rows=[
        (
            "current",
            EXT_ROLE,
            req(GET, MY_SECRET, secretsmanager__VersionStage="AWSCURRENT"),
            "allowed",
        ),
        (
            "previous",
            EXT_ROLE,
            req(GET, MY_SECRET, secretsmanager__VersionStage="AWSPREVIOUS"),
            "implicit_deny:resource",
        ),
        ("not passed", EXT_ROLE, req(GET, MY_SECRET), "implicit_deny:resource"),
    ],
)
group(
    "NotPrincipal with Deny: exempt only when account, role and session are all listed",
    IAM_NOTPRINCIPAL,
    identity=[doc(allow(GET, "*"))],
    resource_policy=doc(
        {
            "Effect": "Deny",
            "NotPrincipal": {"AWS": [f"arn:aws:iam::{A}:root", ROLE, ROLE_SESSION["caller_arn"]]},
            "Action": GET,
            "Resource": "*",
        }
    ),
    rows=[
        ("listed session", ROLE_SESSION, req(GET, MY_SECRET), "allowed"),
        (
            "other session of the role",
            {**ROLE_SESSION, "caller_arn": ROLE_SESSION["caller_arn"] + "2"},
            req(GET, MY_SECRET),
            "explicit_deny:resource",
        ),
        ("user in the account", ALICE, req(GET, MY_SECRET), "explicit_deny:resource"),
        ("account root", ROOT, req(GET, MY_SECRET), "allowed"),
    ],
)
group(
    "NotPrincipal with Deny: a user ARN alone does not exempt the user",
    IAM_NOTPRINCIPAL,
    identity=[doc(allow(GET, "*"))],
    resource_policy=doc(
        {
            "Effect": "Deny",
            "NotPrincipal": {"AWS": [ALICE["principal_arn"]]},
            "Action": GET,
            "Resource": "*",
        }
    ),
    rows=[
        ("alice", ALICE, req(GET, MY_SECRET), "explicit_deny:resource"),
        ("bob", BOB, req(GET, MY_SECRET), "explicit_deny:resource"),
    ],
)
group(
    "NotPrincipal with Deny: user and account listed",
    IAM_NOTPRINCIPAL,
    identity=[doc(allow(GET, "*"))],
    resource_policy=doc(
        {
            "Effect": "Deny",
            "NotPrincipal": {"AWS": [ALICE["principal_arn"], A]},
            "Action": GET,
            "Resource": "*",
        }
    ),
    rows=[
        ("alice exempt", ALICE, req(GET, MY_SECRET), "allowed"),
        ("bob denied", BOB, req(GET, MY_SECRET), "explicit_deny:resource"),
        ("root exempt", ROOT, req(GET, MY_SECRET), "allowed"),
    ],
)
group(
    "Identity deny beats resource allow",
    IAM_DENYALLOW,
    identity=[doc(deny(GET, secret("prod/*")))],
    resource_policy=doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ALICE["principal_arn"]},
            "Action": GET,
            "Resource": "*",
        }
    ),
    rows=[
        ("prod secret", ALICE, req(GET, PROD_DB), "explicit_deny:identity"),
        ("other secret", ALICE, req(GET, MY_SECRET), "allowed"),
    ],
)
group(
    "Resource deny for a cross-account caller whose identity allows",
    IAM_CROSS,
    identity=[doc(allow("secretsmanager:*", "*"))],
    resource_policy=doc(
        {"Effect": "Allow", "Principal": {"AWS": B}, "Action": "secretsmanager:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": {"AWS": B}, "Action": DELETE, "Resource": "*"},
    ),
    rows=[
        ("get", EXT_USER, req(GET, MY_SECRET), "allowed"),
        (
            "delete denied via account principal",
            EXT_USER,
            req(DELETE, MY_SECRET),
            "explicit_deny:resource",
        ),
        ("owner deletes", ALICE, req(DELETE, MY_SECRET), "allowed"),
    ],
)

# --- IAM global condition examples --------------------------------------------------------------

SOURCE_IP_DENY = deny(
    "*",
    "*",
    Condition={
        "NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]},
        "Bool": {"aws:ViaAWSService": "false"},
    },
)
group(
    "IAM: deny access based on source IP",
    IAM_EX_IP,
    identity=[doc(allow("secretsmanager:*", "*")), doc(SOURCE_IP_DENY)],
    rows=[
        (
            "inside first range",
            ALICE,
            req(GET, MY_SECRET, aws__SourceIp="192.0.2.10", aws__ViaAWSService=False),
            "allowed",
        ),
        (
            "inside second range",
            ALICE,
            req(GET, MY_SECRET, aws__SourceIp="203.0.113.255", aws__ViaAWSService=False),
            "allowed",
        ),
        (
            "outside",
            ALICE,
            req(GET, MY_SECRET, aws__SourceIp="198.51.100.7", aws__ViaAWSService=False),
            "explicit_deny:identity",
        ),
        (
            "outside but via AWS service",
            ALICE,
            req(GET, MY_SECRET, aws__SourceIp="198.51.100.7", aws__ViaAWSService=True),
            "allowed",
        ),
        (
            "ipv6 source",
            ALICE,
            req(GET, MY_SECRET, aws__SourceIp="2001:db8::1", aws__ViaAWSService=False),
            "explicit_deny:identity",
        ),
        (
            "boundary address",
            ALICE,
            req(GET, MY_SECRET, aws__SourceIp="192.0.3.0", aws__ViaAWSService=False),
            "explicit_deny:identity",
        ),
        (
            "no source ip key (negated op true), not via service",
            ALICE,
            req(GET, MY_SECRET, aws__ViaAWSService=False),
            "explicit_deny:identity",
        ),
        ("no keys at all: Bool false on missing", ALICE, req(GET, MY_SECRET), "allowed"),
    ],
)
group(
    "IAM: IpAddress allow with IPv4 and IPv6 ranges",
    IAM_OPS + "#Conditions_IPAddress",
    identity=[
        doc(
            allow(
                GET,
                "*",
                Condition={
                    "IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]}
                },
            )
        )
    ],
    rows=[
        ("v4 in range", ALICE, req(GET, MY_SECRET, aws__SourceIp="203.0.113.5"), "allowed"),
        (
            "v6 in range",
            ALICE,
            req(GET, MY_SECRET, aws__SourceIp="2001:db8:1234:5678::abcd"),
            "allowed",
        ),
        (
            "v6 out of range",
            ALICE,
            req(GET, MY_SECRET, aws__SourceIp="2001:db8:1234:5679::1"),
            "implicit_deny:identity",
        ),
        (
            "v4 out of range",
            ALICE,
            req(GET, MY_SECRET, aws__SourceIp="203.0.114.5"),
            "implicit_deny:identity",
        ),
        (
            "not an address",
            ALICE,
            req(GET, MY_SECRET, aws__SourceIp="localhost"),
            "implicit_deny:identity",
        ),
        ("missing", ALICE, req(GET, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "IAM: single address without a mask is a /32",
    IAM_OPS + "#Conditions_IPAddress",
    identity=[doc(allow(GET, "*", Condition={"IpAddress": {"aws:SourceIp": "203.0.113.7"}}))],
    rows=[
        ("that address", ALICE, req(GET, MY_SECRET, aws__SourceIp="203.0.113.7"), "allowed"),
        (
            "neighbour",
            ALICE,
            req(GET, MY_SECRET, aws__SourceIp="203.0.113.8"),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "IAM: deny everything except IAM self-management unless MFA (BoolIfExists)",
    IAM_EX_MFA,
    identity=[
        doc(
            allow("*", "*"),
            {
                "Sid": "DenyAllExceptListedIfNoMFA",
                "Effect": "Deny",
                "NotAction": [
                    "iam:CreateVirtualMFADevice",
                    "iam:EnableMFADevice",
                    "iam:GetUser",
                    "iam:ListMFADevices",
                    "sts:GetSessionToken",
                ],
                "Resource": "*",
                "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
            },
        )
    ],
    rows=[
        ("no MFA key (long-term keys)", ALICE, req(GET, MY_SECRET), "explicit_deny:identity"),
        (
            "MFA false",
            ALICE,
            req(GET, MY_SECRET, aws__MultiFactorAuthPresent=False),
            "explicit_deny:identity",
        ),
        ("MFA true", ALICE, req(GET, MY_SECRET, aws__MultiFactorAuthPresent=True), "allowed"),
        ("listed action without MFA", ALICE, req("sts:GetSessionToken"), "allowed"),
        (
            "listed iam action without MFA",
            ALICE,
            req("iam:GetUser", ALICE["principal_arn"]),
            "allowed",
        ),
        (
            "unlisted iam action",
            ALICE,
            req("iam:CreateUser", f"arn:aws:iam::{A}:user/x"),
            "explicit_deny:identity",
        ),
    ],
)
group(
    "IAM: plain Bool on MFA (no IfExists) is false when the key is missing",
    IAM_OPS + "#Conditions_IfExists",
    identity=[
        doc(
            allow("*", "*"),
            deny("*", "*", Condition={"Bool": {"aws:MultiFactorAuthPresent": "false"}}),
        )
    ],
    rows=[
        ("missing key: deny does not apply", ALICE, req(GET, MY_SECRET), "allowed"),
        (
            "false: denied",
            ALICE,
            req(GET, MY_SECRET, aws__MultiFactorAuthPresent="false"),
            "explicit_deny:identity",
        ),
        ("true", ALICE, req(GET, MY_SECRET, aws__MultiFactorAuthPresent="true"), "allowed"),
    ],
)
group(
    "IAM: allow within a date range (aws:CurrentTime)",
    IAM_EX_DATES,
    identity=[
        doc(
            allow(
                GET,
                "*",
                Condition={
                    "DateGreaterThan": {"aws:CurrentTime": "2020-04-01T00:00:00Z"},
                    "DateLessThan": {"aws:CurrentTime": "2020-06-30T23:59:59Z"},
                },
            )
        )
    ],
    rows=[
        ("inside", ALICE, req(GET, MY_SECRET, aws__CurrentTime="2020-05-15T12:00:00Z"), "allowed"),
        (
            "before",
            ALICE,
            req(GET, MY_SECRET, aws__CurrentTime="2020-03-31T23:59:59Z"),
            "implicit_deny:identity",
        ),
        (
            "after",
            ALICE,
            req(GET, MY_SECRET, aws__CurrentTime="2020-07-01T00:00:00Z"),
            "implicit_deny:identity",
        ),
        (
            "on the start instant (not greater)",
            ALICE,
            req(GET, MY_SECRET, aws__CurrentTime="2020-04-01T00:00:00Z"),
            "implicit_deny:identity",
        ),
        (
            "offset time inside",
            ALICE,
            req(GET, MY_SECRET, aws__CurrentTime="2020-04-01T01:00:00+00:30"),
            "allowed",
        ),
        ("missing time", ALICE, req(GET, MY_SECRET), "implicit_deny:identity"),
        (
            "epoch seconds inside",
            ALICE,
            req(GET, MY_SECRET, aws__CurrentTime=1589544000),
            "allowed",
        ),
    ],
)
group(
    "IAM: DateLessThanEquals / DateGreaterThanEquals / DateEquals / DateNotEquals with epoch policy values",
    IAM_OPS + "#Conditions_Date",
    identity=[
        doc(
            allow(GET, "*", Condition={"DateLessThanEquals": {"aws:EpochTime": "1700000000"}}),
            allow(
                DESCRIBE,
                "*",
                Condition={"DateGreaterThanEquals": {"aws:CurrentTime": "2023-11-14"}},
            ),
            allow(
                PUT, "*", Condition={"DateEquals": {"aws:TokenIssueTime": "2023-11-14T22:13:20Z"}}
            ),
            allow(
                UPDATE,
                "*",
                Condition={"DateNotEquals": {"aws:TokenIssueTime": "2023-11-14T22:13:20Z"}},
            ),
        )
    ],
    rows=[
        ("epoch equal", ALICE, req(GET, MY_SECRET, aws__EpochTime=1700000000), "allowed"),
        (
            "epoch later",
            ALICE,
            req(GET, MY_SECRET, aws__EpochTime=1700000001),
            "implicit_deny:identity",
        ),
        (
            "date-only boundary",
            ALICE,
            req(DESCRIBE, MY_SECRET, aws__CurrentTime="2023-11-14T00:00:00Z"),
            "allowed",
        ),
        (
            "day before",
            ALICE,
            req(DESCRIBE, MY_SECRET, aws__CurrentTime="2023-11-13T23:59:59Z"),
            "implicit_deny:identity",
        ),
        (
            "equal instant",
            ALICE,
            req(PUT, MY_SECRET, aws__TokenIssueTime="2023-11-14T22:13:20Z"),
            "allowed",
        ),
        (
            "equal instant as epoch",
            ALICE,
            req(PUT, MY_SECRET, aws__TokenIssueTime=1700000000),
            "allowed",
        ),
        (
            "not equal",
            ALICE,
            req(UPDATE, MY_SECRET, aws__TokenIssueTime="2023-11-14T22:13:21Z"),
            "allowed",
        ),
        (
            "equal for NotEquals",
            ALICE,
            req(UPDATE, MY_SECRET, aws__TokenIssueTime="2023-11-14T22:13:20Z"),
            "implicit_deny:identity",
        ),
        ("missing for NotEquals (negated: true)", ALICE, req(UPDATE, MY_SECRET), "allowed"),
    ],
)
group(
    "IAM: deny requests without TLS (aws:SecureTransport)",
    IAM_GLOBAL + "#condition-keys-securetransport",
    identity=[doc(allow(GET, "*"))],
    resource_policy=doc(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "secretsmanager:*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ),
    rows=[
        ("https", ALICE, req(GET, MY_SECRET, aws__SecureTransport=True), "allowed"),
        ("http", ALICE, req(GET, MY_SECRET, aws__SecureTransport=False), "explicit_deny:resource"),
    ],
)
group(
    "IAM: temporary credentials only (Null aws:TokenIssueTime)",
    IAM_OPS + "#Conditions_Null",
    identity=[doc(allow(GET, "*", Condition={"Null": {"aws:TokenIssueTime": "false"}}))],
    rows=[
        (
            "session credentials",
            ROLE_SESSION,
            req(GET, MY_SECRET, aws__TokenIssueTime="2024-01-01T00:00:00Z"),
            "allowed",
        ),
        ("long-term keys", ALICE, req(GET, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "IAM: long-term credentials only (Null true)",
    IAM_OPS + "#Conditions_Null",
    identity=[doc(allow(GET, "*", Condition={"Null": {"aws:TokenIssueTime": "true"}}))],
    rows=[
        (
            "session credentials",
            ROLE_SESSION,
            req(GET, MY_SECRET, aws__TokenIssueTime="2024-01-01T00:00:00Z"),
            "implicit_deny:identity",
        ),
        ("long-term keys", ALICE, req(GET, MY_SECRET), "allowed"),
    ],
)
group(
    "IAM: deny outside approved regions (StringNotEquals aws:RequestedRegion with NotAction)",
    IAM_EX_REGION,
    identity=[
        doc(
            allow("secretsmanager:*", "*"),
            {
                "Sid": "DenyAllOutsideRequestedRegions",
                "Effect": "Deny",
                "NotAction": ["iam:*", "sts:*", "support:*"],
                "Resource": "*",
                "Condition": {
                    "StringNotEquals": {"aws:RequestedRegion": ["eu-central-1", "eu-west-1"]}
                },
            },
        )
    ],
    rows=[
        ("eu-west-1", ALICE, req(GET, MY_SECRET, aws__RequestedRegion="eu-west-1"), "allowed"),
        (
            "eu-central-1",
            ALICE,
            req(GET, MY_SECRET, aws__RequestedRegion="eu-central-1"),
            "allowed",
        ),
        (
            "us-east-1",
            ALICE,
            req(GET, MY_SECRET, aws__RequestedRegion="us-east-1"),
            "explicit_deny:identity",
        ),
        ("region missing: negated op true", ALICE, req(GET, MY_SECRET), "explicit_deny:identity"),
        (
            "sts action exempt (NotAction)",
            ALICE,
            req("sts:GetCallerIdentity", aws__RequestedRegion="us-east-1"),
            "implicit_deny:identity",
        ),
        (
            "iam action exempt but not allowed",
            ALICE,
            req("iam:GetUser", ALICE["principal_arn"], aws__RequestedRegion="us-east-1"),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "IAM: NotAction allow (everything except IAM)",
    IAM_NOTACTION,
    identity=[doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})],
    rows=[
        ("secrets manager", ALICE, req(GET, MY_SECRET), "allowed"),
        ("kms", ALICE, req("kms:Decrypt", KMS_KEY), "allowed"),
        ("iam", ALICE, req("iam:CreateUser", f"arn:aws:iam::{A}:user/x"), "implicit_deny:identity"),
        (
            "IAM in other case",
            ALICE,
            req("IAM:CreateUser", f"arn:aws:iam::{A}:user/x"),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "IAM: NotResource deny (everything but one secret)",
    IAM_NOTRESOURCE,
    identity=[doc(allow(GET, "*"), {"Effect": "Deny", "Action": GET, "NotResource": MY_SECRET})],
    rows=[
        ("the one secret", ALICE, req(GET, MY_SECRET), "allowed"),
        ("any other", ALICE, req(GET, PROD_DB), "explicit_deny:identity"),
        (
            "describe unaffected but not allowed",
            ALICE,
            req(DESCRIBE, PROD_DB),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "IAM: NotResource allow with a wildcard",
    IAM_NOTRESOURCE,
    identity=[doc({"Effect": "Allow", "Action": GET, "NotResource": secret("prod/*")})],
    rows=[
        ("non-prod", ALICE, req(GET, DEV_APP), "allowed"),
        ("prod", ALICE, req(GET, PROD_DB), "implicit_deny:identity"),
    ],
)
group(
    "IAM: multiple keys AND, multiple values OR (principal tags)",
    IAM_LOGIC,
    identity=[
        doc(
            allow(
                GET,
                "*",
                Condition={
                    "StringEquals": {
                        "aws:PrincipalTag/department": ["finance", "hr", "legal"],
                        "aws:PrincipalTag/role": ["audit", "security"],
                    }
                },
            )
        )
    ],
    rows=[
        (
            "finance auditor",
            tagged(ALICE, department="finance", role="audit"),
            req(GET, MY_SECRET),
            "allowed",
        ),
        (
            "legal security",
            tagged(ALICE, department="legal", role="security"),
            req(GET, MY_SECRET),
            "allowed",
        ),
        (
            "hr engineer",
            tagged(ALICE, department="hr", role="engineer"),
            req(GET, MY_SECRET),
            "implicit_deny:identity",
        ),
        (
            "it auditor",
            tagged(ALICE, department="it", role="audit"),
            req(GET, MY_SECRET),
            "implicit_deny:identity",
        ),
        (
            "department only",
            tagged(ALICE, department="finance"),
            req(GET, MY_SECRET),
            "implicit_deny:identity",
        ),
        ("no tags", ALICE, req(GET, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "IAM: negated operator with several values (StringNotEquals ANDs the negations)",
    IAM_LOGIC,
    identity=[
        doc(
            allow(GET, "*"),
            deny(
                GET,
                "*",
                Condition={"StringNotEquals": {"aws:PrincipalTag/team": ["blue", "green"]}},
            ),
        )
    ],
    rows=[
        ("blue", tagged(ALICE, team="blue"), req(GET, MY_SECRET), "allowed"),
        ("green", tagged(ALICE, team="green"), req(GET, MY_SECRET), "allowed"),
        ("red", tagged(ALICE, team="red"), req(GET, MY_SECRET), "explicit_deny:identity"),
        ("untagged (negated, missing: true)", ALICE, req(GET, MY_SECRET), "explicit_deny:identity"),
    ],
)
group(
    "IAM: StringNotEqualsIfExists lets missing keys through",
    IAM_OPS + "#Conditions_IfExists",
    identity=[
        doc(
            allow(GET, "*"),
            deny(
                GET, "*", Condition={"StringNotEqualsIfExists": {"aws:PrincipalTag/team": "blue"}}
            ),
        )
    ],
    rows=[
        ("blue", tagged(ALICE, team="blue"), req(GET, MY_SECRET), "allowed"),
        ("red", tagged(ALICE, team="red"), req(GET, MY_SECRET), "explicit_deny:identity"),
        ("untagged", ALICE, req(GET, MY_SECRET), "explicit_deny:identity"),
    ],
)
group(
    "IAM: StringEqualsIfExists",
    IAM_OPS + "#Conditions_IfExists",
    identity=[
        doc(
            allow(
                GET,
                "*",
                Condition={"StringEqualsIfExists": {"secretsmanager:ResourceTag/env": "dev"}},
            )
        )
    ],
    rows=[
        ("dev", ALICE, req(GET, MY_SECRET, **{"secretsmanager:ResourceTag/env": "dev"}), "allowed"),
        (
            "prod",
            ALICE,
            req(GET, MY_SECRET, **{"secretsmanager:ResourceTag/env": "prod"}),
            "implicit_deny:identity",
        ),
        ("untagged", ALICE, req(GET, MY_SECRET), "allowed"),
    ],
)
group(
    "IAM: StringEqualsIgnoreCase and StringNotEqualsIgnoreCase",
    IAM_OPS + "#Conditions_String",
    identity=[
        doc(
            allow(
                GET, "*", Condition={"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "Blue"}}
            ),
            deny(
                GET,
                "*",
                Condition={"StringNotEqualsIgnoreCase": {"aws:PrincipalTag/site": ["HQ", "lab"]}},
            ),
        )
    ],
    rows=[
        ("BLUE at hq", tagged(ALICE, team="BLUE", site="hq"), req(GET, MY_SECRET), "allowed"),
        ("blue at LAB", tagged(ALICE, team="blue", site="LAB"), req(GET, MY_SECRET), "allowed"),
        (
            "blue at home",
            tagged(ALICE, team="blue", site="home"),
            req(GET, MY_SECRET),
            "explicit_deny:identity",
        ),
        (
            "red at hq",
            tagged(ALICE, team="red", site="hq"),
            req(GET, MY_SECRET),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "IAM: StringLike with * and ? in condition values",
    IAM_OPS + "#Conditions_String",
    identity=[
        doc(
            allow(
                GET, "*", Condition={"StringLike": {"aws:PrincipalTag/project": ["web-*", "db-??"]}}
            )
        )
    ],
    rows=[
        ("web-frontend", tagged(ALICE, project="web-frontend"), req(GET, MY_SECRET), "allowed"),
        ("web-", tagged(ALICE, project="web-"), req(GET, MY_SECRET), "allowed"),
        ("db-01", tagged(ALICE, project="db-01"), req(GET, MY_SECRET), "allowed"),
        ("db-001", tagged(ALICE, project="db-001"), req(GET, MY_SECRET), "implicit_deny:identity"),
        (
            "WEB-x case",
            tagged(ALICE, project="WEB-x"),
            req(GET, MY_SECRET),
            "implicit_deny:identity",
        ),
        ("api", tagged(ALICE, project="api"), req(GET, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "IAM: StringNotLike in a deny",
    IAM_OPS + "#Conditions_String",
    identity=[
        doc(
            allow(GET, "*"),
            deny(
                GET,
                "*",
                Condition={
                    "StringNotLike": {
                        "aws:userid": ["AIDAJQABLZS4A3QDU576Q", "AROADBQP57FF2AEXAMPLE:*"]
                    }
                },
            ),
        )
    ],
    rows=[
        ("alice's user id", ALICE, req(GET, MY_SECRET), "allowed"),
        ("any session of the role", ROLE_SESSION, req(GET, MY_SECRET), "allowed"),
        ("bob", BOB, req(GET, MY_SECRET), "explicit_deny:identity"),
    ],
)
group(
    "IAM: StringEquals is case-sensitive",
    IAM_OPS + "#Conditions_String",
    identity=[
        doc(
            allow(
                GET,
                "*",
                Condition={"StringEquals": {"aws:PrincipalTag/job-category": "iamuser-admin"}},
            )
        )
    ],
    rows=[
        (
            "exact",
            tagged(ALICE, **{"job-category": "iamuser-admin"}),
            req(GET, MY_SECRET),
            "allowed",
        ),
        (
            "upper",
            tagged(ALICE, **{"job-category": "IAMUSER-ADMIN"}),
            req(GET, MY_SECRET),
            "implicit_deny:identity",
        ),
        (
            "wildcard is literal in StringEquals",
            tagged(ALICE, **{"job-category": "iamuser-*"}),
            req(GET, MY_SECRET),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "IAM: numeric operators",
    IAM_OPS + "#Conditions_Numeric",
    identity=[
        doc(
            allow(
                GET,
                "*",
                Condition={"NumericLessThanEquals": {"secretsmanager:RecoveryWindowInDays": "10"}},
            ),
            allow(
                DESCRIBE,
                "*",
                Condition={"NumericGreaterThan": {"secretsmanager:RecoveryWindowInDays": "10"}},
            ),
            allow(
                PUT,
                "*",
                Condition={"NumericEquals": {"secretsmanager:RecoveryWindowInDays": ["7", "30"]}},
            ),
            allow(
                UPDATE,
                "*",
                Condition={"NumericNotEquals": {"secretsmanager:RecoveryWindowInDays": "7"}},
            ),
            allow(
                TAG,
                "*",
                Condition={
                    "NumericGreaterThanEquals": {"secretsmanager:RecoveryWindowInDays": "7.5"}
                },
            ),
        )
    ],
    rows=[
        (
            "10 <= 10",
            ALICE,
            req(GET, MY_SECRET, secretsmanager__RecoveryWindowInDays=10),
            "allowed",
        ),
        (
            "11 <= 10",
            ALICE,
            req(GET, MY_SECRET, secretsmanager__RecoveryWindowInDays=11),
            "implicit_deny:identity",
        ),
        (
            "11 > 10",
            ALICE,
            req(DESCRIBE, MY_SECRET, secretsmanager__RecoveryWindowInDays=11),
            "allowed",
        ),
        (
            "10 > 10",
            ALICE,
            req(DESCRIBE, MY_SECRET, secretsmanager__RecoveryWindowInDays=10),
            "implicit_deny:identity",
        ),
        (
            "30 in [7,30]",
            ALICE,
            req(PUT, MY_SECRET, secretsmanager__RecoveryWindowInDays=30),
            "allowed",
        ),
        (
            "8 in [7,30]",
            ALICE,
            req(PUT, MY_SECRET, secretsmanager__RecoveryWindowInDays=8),
            "implicit_deny:identity",
        ),
        (
            "8 != 7",
            ALICE,
            req(UPDATE, MY_SECRET, secretsmanager__RecoveryWindowInDays=8),
            "allowed",
        ),
        (
            "7 != 7",
            ALICE,
            req(UPDATE, MY_SECRET, secretsmanager__RecoveryWindowInDays=7),
            "implicit_deny:identity",
        ),
        ("missing != 7 (negated)", ALICE, req(UPDATE, MY_SECRET), "allowed"),
        ("8 >= 7.5", ALICE, req(TAG, MY_SECRET, secretsmanager__RecoveryWindowInDays=8), "allowed"),
        (
            "7 >= 7.5",
            ALICE,
            req(TAG, MY_SECRET, secretsmanager__RecoveryWindowInDays=7),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "IAM: BinaryEquals compares base64 values",
    IAM_OPS + "#Conditions_BinaryEquals",
    identity=[
        doc(
            allow(
                GET,
                "*",
                Condition={"BinaryEquals": {"example:key": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="}},
            )
        )
    ],
    rows=[
        (
            "same base64",
            ALICE,
            req(GET, MY_SECRET, example__key="QmluYXJ5VmFsdWVJbkJhc2U2NA=="),
            "allowed",
        ),
        ("same bytes", ALICE, req(GET, MY_SECRET, example__key=b"BinaryValueInBase64"), "allowed"),
        (
            "different",
            ALICE,
            req(GET, MY_SECRET, example__key="b3RoZXI="),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "IAM: ArnLike on aws:PrincipalArn with wildcards per component",
    IAM_OPS + "#Conditions_ARN",
    identity=[
        doc(
            allow(
                GET,
                "*",
                Condition={"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/EC2Role*"}},
            )
        )
    ],
    rows=[
        ("role in this account", ROLE_SESSION, req(GET, MY_SECRET), "allowed"),
        ("user", ALICE, req(GET, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "IAM: ArnEquals / ArnNotEquals / ArnNotLike",
    IAM_OPS + "#Conditions_ARN",
    identity=[
        doc(
            allow(GET, "*", Condition={"ArnEquals": {"aws:PrincipalArn": ROLE}}),
            deny(GET, "*", Condition={"ArnNotLike": {"aws:PrincipalArn": [f"arn:aws:iam::{A}:*"]}}),
            allow(DESCRIBE, "*", Condition={"ArnNotEquals": {"aws:PrincipalArn": ROLE}}),
        )
    ],
    rows=[
        ("role gets", ROLE_SESSION, req(GET, MY_SECRET), "allowed"),
        ("alice gets", ALICE, req(GET, MY_SECRET), "implicit_deny:identity"),
        (
            "external role denied by ArnNotLike",
            {**ROLE_SESSION, "principal_arn": EXT_ROLE_ARN},
            req(GET, MY_SECRET),
            "explicit_deny:identity",
        ),
        ("alice describes (not the role)", ALICE, req(DESCRIBE, MY_SECRET), "allowed"),
        ("role describes", ROLE_SESSION, req(DESCRIBE, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "IAM: aws:PrincipalType",
    IAM_GLOBAL + "#condition-keys-principaltype",
    identity=[
        doc(allow(GET, "*", Condition={"StringEquals": {"aws:PrincipalType": "AssumedRole"}}))
    ],
    rows=[
        ("role session", ROLE_SESSION, req(GET, MY_SECRET), "allowed"),
        ("user", ALICE, req(GET, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "IAM: ForAnyValue:StringLike on aws:TagKeys",
    IAM_MULTI,
    identity=[
        doc(allow(TAG, "*", Condition={"ForAnyValue:StringLike": {"aws:TagKeys": "cost-*"}}))
    ],
    rows=[
        (
            "has cost-center",
            ALICE,
            req(TAG, MY_SECRET, aws__TagKeys=["owner", "cost-center"]),
            "allowed",
        ),
        (
            "no cost key",
            ALICE,
            req(TAG, MY_SECRET, aws__TagKeys=["owner"]),
            "implicit_deny:identity",
        ),
        ("no keys", ALICE, req(TAG, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "IAM: ForAllValues:StringLike with IfExists-free missing key in a Deny is a trap",
    IAM_MULTI,
    identity=[
        doc(
            allow(TAG, "*"),
            deny(TAG, "*", Condition={"ForAllValues:StringLike": {"aws:TagKeys": "temp-*"}}),
        )
    ],
    rows=[
        (
            "all temp keys",
            ALICE,
            req(TAG, MY_SECRET, aws__TagKeys=["temp-a", "temp-b"]),
            "explicit_deny:identity",
        ),
        ("mixed keys", ALICE, req(TAG, MY_SECRET, aws__TagKeys=["temp-a", "owner"]), "allowed"),
        (
            "no keys: ForAllValues true, deny applies",
            ALICE,
            req(TAG, MY_SECRET),
            "explicit_deny:identity",
        ),
    ],
)
group(
    "IAM: ForAllValues:StringNotEquals",
    IAM_MULTI,
    identity=[
        doc(
            allow(
                TAG,
                "*",
                Condition={
                    "ForAllValues:StringNotEquals": {"aws:TagKeys": ["aws-reserved", "admin"]}
                },
            )
        )
    ],
    rows=[
        ("ordinary keys", ALICE, req(TAG, MY_SECRET, aws__TagKeys=["owner", "env"]), "allowed"),
        (
            "one reserved key",
            ALICE,
            req(TAG, MY_SECRET, aws__TagKeys=["owner", "admin"]),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "IAM: ForAnyValue with IfExists on a missing key",
    IAM_OPS + "#Conditions_IfExists",
    identity=[
        doc(
            allow(
                TAG, "*", Condition={"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "owner"}}
            )
        )
    ],
    rows=[
        ("missing", ALICE, req(TAG, MY_SECRET), "allowed"),
        ("present with owner", ALICE, req(TAG, MY_SECRET, aws__TagKeys=["owner"]), "allowed"),
        (
            "present without owner",
            ALICE,
            req(TAG, MY_SECRET, aws__TagKeys=["env"]),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "IAM: operator names and set prefixes are case-insensitive, keys too",
    IAM_OPS,
    identity=[
        doc(
            allow(
                GET,
                "*",
                Condition={
                    "stringequals": {"AWS:USERNAME": "alice"},
                    "forAnyValue:StringLike": {"aws:tagkeys": "a*"},
                },
            )
        )
    ],
    rows=[
        ("alice with a-key", ALICE, req(GET, MY_SECRET, aws__TagKeys=["abc"]), "allowed"),
        ("alice without tags", ALICE, req(GET, MY_SECRET), "implicit_deny:identity"),
        (
            "bob with a-key",
            BOB,
            req(GET, MY_SECRET, aws__TagKeys=["abc"]),
            "implicit_deny:identity",
        ),
    ],
)

# --- Policy variables ---------------------------------------------------------------------------

group(
    "Variables: ${aws:username} in Resource",
    IAM_VARS + "#policy-vars-intro",
    identity=[doc(allow("secretsmanager:*", secret("${aws:username}/*")))],
    rows=[
        ("alice's own", ALICE, req(GET, secret("alice/db-AbCdEf")), "allowed"),
        ("bob's own", BOB, req(PUT, secret("bob/x-AbCdEf")), "allowed"),
        ("alice on bob's", ALICE, req(GET, secret("bob/db-AbCdEf")), "implicit_deny:identity"),
        (
            "role session has no username",
            ROLE_SESSION,
            req(GET, secret("alice/db-AbCdEf")),
            "implicit_deny:identity",
        ),
        (
            "username case matters in ARN",
            ALICE,
            req(GET, secret("Alice/db-AbCdEf")),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "Variables: ${aws:userid} in Resource (works for role sessions)",
    IAM_VARS + "#policy-vars-infotouse",
    identity=[doc(allow(GET, secret("home/${aws:userid}/*")))],
    rows=[
        ("alice by id", ALICE, req(GET, secret("home/AIDAJQABLZS4A3QDU576Q/x-AbCdEf")), "allowed"),
        (
            "session by role-id:session",
            ROLE_SESSION,
            req(GET, secret("home/AROADBQP57FF2AEXAMPLE:i-0abc/x-AbCdEf")),
            "allowed",
        ),
        (
            "alice on another id",
            ALICE,
            req(GET, secret("home/AIDAOTHER/x-AbCdEf")),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "Variables: ${aws:PrincipalTag/team} in Resource",
    IAM_VARS + "#policy-vars-tags",
    identity=[doc(allow(GET, secret("${aws:PrincipalTag/team}/*")))],
    rows=[
        (
            "team prefix",
            tagged(ALICE, team="payments"),
            req(GET, secret("payments/key-AbCdEf")),
            "allowed",
        ),
        (
            "other team",
            tagged(ALICE, team="payments"),
            req(GET, secret("search/key-AbCdEf")),
            "implicit_deny:identity",
        ),
        (
            "untagged: value never matches",
            ALICE,
            req(GET, secret("payments/key-AbCdEf")),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "Variables: a missing variable removes only that value",
    IAM_VARS,
    identity=[doc(allow(GET, [secret("${aws:PrincipalTag/team}/*"), secret("shared/*")]))],
    rows=[
        ("shared without tag", ALICE, req(GET, secret("shared/k-AbCdEf")), "allowed"),
        ("team path without tag", ALICE, req(GET, secret("/k-AbCdEf")), "implicit_deny:identity"),
    ],
)
group(
    "Variables: ${aws:PrincipalAccount} in a resource policy condition",
    IAM_VARS,
    identity=[doc(allow(GET, "*"))],
    resource_policy=doc(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": GET,
            "Resource": "*",
            "Condition": {
                "StringNotEquals": {
                    "secretsmanager:ResourceTag/owner-account": "${aws:PrincipalAccount}"
                }
            },
        }
    ),
    rows=[
        (
            "tag names caller's account",
            ALICE,
            req(GET, MY_SECRET, **{"secretsmanager:ResourceTag/owner-account": A}),
            "allowed",
        ),
        (
            "tag names other account",
            ALICE,
            req(GET, MY_SECRET, **{"secretsmanager:ResourceTag/owner-account": B}),
            "explicit_deny:resource",
        ),
    ],
)
group(
    "Variables: special characters ${*}, ${?}, ${$} are literals",
    IAM_VARS + "#policy-vars-specialchars",
    identity=[
        doc(
            allow(GET, [secret("star${*}-??????"), secret("q${?}-??????"), secret("d${$}x-??????")])
        )
    ],
    rows=[
        ("literal star", ALICE, req(GET, secret("star*-AbCdEf")), "allowed"),
        (
            "star is not a wildcard",
            ALICE,
            req(GET, secret("starX-AbCdEf")),
            "implicit_deny:identity",
        ),
        ("literal question mark", ALICE, req(GET, secret("q?-AbCdEf")), "allowed"),
        (
            "question mark not a wildcard",
            ALICE,
            req(GET, secret("qX-AbCdEf")),
            "implicit_deny:identity",
        ),
        ("literal dollar", ALICE, req(GET, secret("d$x-AbCdEf")), "allowed"),
    ],
)
group(
    "Variables: ${*} in a StringLike condition is a literal asterisk",
    IAM_VARS + "#policy-vars-specialchars",
    identity=[
        doc(allow(GET, "*", Condition={"StringLike": {"aws:PrincipalTag/pattern": "a${*}b*"}}))
    ],
    rows=[
        ("a*b...", tagged(ALICE, pattern="a*bcd"), req(GET, MY_SECRET), "allowed"),
        ("axb...", tagged(ALICE, pattern="axbcd"), req(GET, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "Variables: default value when the key is missing",
    IAM_VARS + "#policy-vars-default-values",
    identity=[doc(allow(GET, secret("${aws:PrincipalTag/team, 'company-wide'}/*")))],
    rows=[
        ("tagged team", tagged(ALICE, team="web"), req(GET, secret("web/x-AbCdEf")), "allowed"),
        ("untagged uses default", ALICE, req(GET, secret("company-wide/x-AbCdEf")), "allowed"),
        ("untagged other", ALICE, req(GET, secret("web/x-AbCdEf")), "implicit_deny:identity"),
    ],
)
group(
    "Variables: not substituted in version 2008-10-17 (or without Version)",
    IAM_VERSION,
    identity=[
        doc(allow(GET, secret("${aws:username}/*")), version="2008-10-17"),
        doc(allow(DESCRIBE, secret("${aws:username}/*")), version=None),
    ],
    rows=[
        ("alice's path", ALICE, req(GET, secret("alice/db-AbCdEf")), "implicit_deny:identity"),
        (
            "literal ${aws:username} path",
            ALICE,
            req(GET, secret("${aws:username}/db-AbCdEf")),
            "allowed",
        ),
        (
            "no Version: alice's path",
            ALICE,
            req(DESCRIBE, secret("alice/db-AbCdEf")),
            "implicit_deny:identity",
        ),
        (
            "no Version: literal path",
            ALICE,
            req(DESCRIBE, secret("${aws:username}/db-AbCdEf")),
            "allowed",
        ),
    ],
)
group(
    "Variables: ${aws:username} in a condition value",
    IAM_VARS,
    identity=[
        doc(
            allow(
                GET,
                "*",
                Condition={"StringEquals": {"secretsmanager:ResourceTag/owner": "${aws:username}"}},
            )
        )
    ],
    rows=[
        (
            "owner is alice",
            ALICE,
            req(GET, MY_SECRET, **{"secretsmanager:ResourceTag/owner": "alice"}),
            "allowed",
        ),
        (
            "owner is bob",
            ALICE,
            req(GET, MY_SECRET, **{"secretsmanager:ResourceTag/owner": "bob"}),
            "implicit_deny:identity",
        ),
        (
            "role session has no username",
            ROLE_SESSION,
            req(GET, MY_SECRET, **{"secretsmanager:ResourceTag/owner": ""}),
            "implicit_deny:identity",
        ),
    ],
)

# --- Resource ARN matching ----------------------------------------------------------------------

group(
    "Resource: * spans colons and slashes",
    IAM_RESOURCE + "#reference_policies_elements_resource_wildcards",
    identity=[doc(allow(GET, "arn:aws:secretsmanager:*"))],
    rows=[
        ("any secret", ALICE, req(GET, PROD_DB), "allowed"),
        ("other account", ALICE, req(GET, secret("x-AbCdEf", B), B), "implicit_deny:resource"),
        ("kms key", ALICE, req(GET, KMS_KEY), "implicit_deny:identity"),
    ],
)
group(
    "Resource: wildcard in the account and region segments",
    IAM_RESOURCE,
    identity=[doc(allow(GET, "arn:aws:secretsmanager:*:*:secret:shared/*"))],
    rows=[
        ("this account", ALICE, req(GET, secret("shared/a-AbCdEf")), "allowed"),
        (
            "another region",
            ALICE,
            req(GET, secret("shared/a-AbCdEf").replace(REGION, "ap-south-1")),
            "allowed",
        ),
        ("not shared", ALICE, req(GET, PROD_DB), "implicit_deny:identity"),
    ],
)
group(
    "Resource: a ? matches exactly one character",
    IAM_RESOURCE,
    identity=[doc(allow(GET, secret("app?/key-*")))],
    rows=[
        ("app1", ALICE, req(GET, secret("app1/key-AbCdEf")), "allowed"),
        ("app12", ALICE, req(GET, secret("app12/key-AbCdEf")), "implicit_deny:identity"),
        ("app", ALICE, req(GET, secret("app/key-AbCdEf")), "implicit_deny:identity"),
    ],
)
group(
    "Resource: list of resources",
    IAM_RESOURCE,
    identity=[doc(allow(GET, [MY_SECRET, secret("dev/*")]))],
    rows=[
        ("first", ALICE, req(GET, MY_SECRET), "allowed"),
        ("second via wildcard", ALICE, req(GET, DEV_APP), "allowed"),
        ("neither", ALICE, req(GET, PROD_DB), "implicit_deny:identity"),
    ],
)

# --- Evaluation order: deny wins across policies -------------------------------------------------

group(
    "Evaluation: a deny in one attached policy beats an allow in another",
    IAM_DENYALLOW,
    identity=[
        doc(allow("secretsmanager:*", "*")),
        doc(deny(DELETE, "*")),
        doc(allow(DELETE, MY_SECRET)),
    ],
    rows=[
        ("delete", ALICE, req(DELETE, MY_SECRET), "explicit_deny:identity"),
        ("get", ALICE, req(GET, MY_SECRET), "allowed"),
        ("list", ALICE, req(LIST), "allowed"),
    ],
)
group(
    "Evaluation: deny with * action on one secret",
    IAM_DENYALLOW,
    identity=[doc(allow("*", "*"), deny("*", PROD_DB))],
    rows=[
        ("prod get", ALICE, req(GET, PROD_DB), "explicit_deny:identity"),
        ("prod describe", ALICE, req(DESCRIBE, PROD_DB), "explicit_deny:identity"),
        ("other get", ALICE, req(GET, MY_SECRET), "allowed"),
        ("list", ALICE, req(LIST), "allowed"),
    ],
)
group(
    "Evaluation: Sid and Id do not change the decision",
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_sid.html",
    identity=[
        {
            "Version": "2012-10-17",
            "Id": "S3-Account-Permissions",
            "Statement": [{"Sid": "1", **allow(GET, "*")}],
        }
    ],
    rows=[
        ("get", ALICE, req(GET, MY_SECRET), "allowed"),
        ("put", ALICE, req(PUT, MY_SECRET), "implicit_deny:identity"),
    ],
)
group(
    "Evaluation: Statement as a single object, Action and Resource as strings",
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html",
    identity=[
        {
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": GET, "Resource": MY_SECRET},
        }
    ],
    rows=[
        ("get", ALICE, req(GET, MY_SECRET), "allowed"),
        ("other", ALICE, req(GET, PROD_DB), "implicit_deny:identity"),
    ],
)
group(
    "Evaluation: condition in an allow with several operators (all must hold)",
    IAM_LOGIC,
    identity=[
        doc(
            allow(
                GET,
                "*",
                Condition={
                    "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
                    "Bool": {"aws:SecureTransport": "true"},
                    "StringEquals": {"aws:PrincipalTag/env": "prod"},
                },
            )
        )
    ],
    rows=[
        (
            "all hold",
            tagged(ALICE, env="prod"),
            req(GET, MY_SECRET, aws__SourceIp="10.1.2.3", aws__SecureTransport=True),
            "allowed",
        ),
        (
            "wrong ip",
            tagged(ALICE, env="prod"),
            req(GET, MY_SECRET, aws__SourceIp="11.1.2.3", aws__SecureTransport=True),
            "implicit_deny:identity",
        ),
        (
            "no tls",
            tagged(ALICE, env="prod"),
            req(GET, MY_SECRET, aws__SourceIp="10.1.2.3", aws__SecureTransport=False),
            "implicit_deny:identity",
        ),
        (
            "wrong tag",
            tagged(ALICE, env="dev"),
            req(GET, MY_SECRET, aws__SourceIp="10.1.2.3", aws__SecureTransport=True),
            "implicit_deny:identity",
        ),
    ],
)
group(
    "Cross account: root of the other account needs the resource policy",
    IAM_CROSS,
    identity=[],
    resource_policy=doc(
        {"Effect": "Allow", "Principal": {"AWS": B}, "Action": GET, "Resource": "*"}
    ),
    rows=[
        (
            "other root",
            {
                **ROOT,
                "principal_arn": f"arn:aws:iam::{B}:root",
                "principal_account": B,
                "userid": B,
            },
            req(GET, MY_SECRET),
            "allowed",
        ),
        (
            "other root, action not shared",
            {
                **ROOT,
                "principal_arn": f"arn:aws:iam::{B}:root",
                "principal_account": B,
                "userid": B,
            },
            req(PUT, MY_SECRET),
            "implicit_deny:resource",
        ),
    ],
)
group(
    "Cross account: resource policy condition on the caller's tag",
    IAM_CROSS,
    identity=[doc(allow(GET, "*"))],
    resource_policy=doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": B},
            "Action": GET,
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalTag/team": "data"}},
        }
    ),
    rows=[
        ("tagged data", tagged(EXT_USER, team="data"), req(GET, MY_SECRET), "allowed"),
        ("tagged web", tagged(EXT_USER, team="web"), req(GET, MY_SECRET), "implicit_deny:resource"),
        ("untagged", EXT_USER, req(GET, MY_SECRET), "implicit_deny:resource"),
    ],
)
group(
    "Cross account: identity deny in the caller's account wins",
    IAM_CROSS,
    identity=[doc(allow(GET, "*"), deny(GET, secret("*", A)))],
    resource_policy=doc(
        {"Effect": "Allow", "Principal": {"AWS": B}, "Action": GET, "Resource": "*"}
    ),
    rows=[("denied", EXT_USER, req(GET, MY_SECRET), "explicit_deny:identity")],
)
group(
    "Cross account: identity policy scoped to the other account's ARN",
    SM_CROSS,
    identity=[doc(allow(GET, f"arn:aws:secretsmanager:{REGION}:{A}:secret:*"))],
    resource_policy=doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": EXT_ROLE_ARN},
            "Action": [GET, DESCRIBE],
            "Resource": "*",
        }
    ),
    rows=[
        ("get", EXT_ROLE, req(GET, MY_SECRET), "allowed"),
        (
            "describe: identity doesn't allow",
            EXT_ROLE,
            req(DESCRIBE, MY_SECRET),
            "implicit_deny:identity",
        ),
        (
            "secret in a third account",
            EXT_ROLE,
            req(GET, secret("x-AbCdEf", "999988887777"), "999988887777"),
            "implicit_deny:identity",
        ),
    ],
)
