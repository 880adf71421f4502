"""Key policies KMS applies when a key has none of its own."""

from __future__ import annotations

# The key policy of `aws/secretsmanager`: usable through Secrets Manager by every principal of the
# account that Secrets Manager allows, metadata readable directly (AWS's policy for this key,
# as GetKeyPolicy shows it; spacing normalised).
AWS_MANAGED_POLICY = """{
  "Version" : "2012-10-17",
  "Id" : "auto-secretsmanager-2",
  "Statement" : [ {
    "Sid" : "Allow access through AWS Secrets Manager for all principals in the account that are authorized to use AWS Secrets Manager",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "*"
    },
    "Action" : [ "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:CreateGrant", "kms:DescribeKey" ],
    "Resource" : "*",
    "Condition" : {
      "StringEquals" : {
        "kms:CallerAccount" : "{account}",
        "kms:ViaService" : "secretsmanager.{region}.amazonaws.com"
      }
    }
  }, {
    "Sid" : "Allow access through AWS Secrets Manager for all principals in the account that are authorized to use AWS Secrets Manager",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "*"
    },
    "Action" : "kms:GenerateDataKey*",
    "Resource" : "*",
    "Condition" : {
      "StringEquals" : {
        "kms:CallerAccount" : "{account}"
      },
      "StringLike" : {
        "kms:ViaService" : "secretsmanager.{region}.amazonaws.com"
      }
    }
  }, {
    "Sid" : "Allow direct access to key metadata to the account",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::{account}:root"
    },
    "Action" : [ "kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant" ],
    "Resource" : "*"
  } ]
}"""

DEFAULT_POLICY = """{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::%s:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}"""


def default_key_policy(account_id: str) -> str:
    return DEFAULT_POLICY % account_id


def key_policy(manager: str, account_id: str, region: str, policy: str | None) -> str:
    """The policy in force: the key's own, else the default for its kind."""
    if policy is not None:
        return policy
    if manager == "AWS":
        return AWS_MANAGED_POLICY.replace("{account}", account_id).replace("{region}", region)
    return default_key_policy(account_id)
