"""AccessDeniedException messages in AWS's words.

Format, from "Troubleshoot access denied error messages"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html): "User <arn> is
not authorized to perform <action> on <resource> because <context>", with "with an explicit deny in
a <type> policy" for explicit denials and "because no <type> policy allows the <action> action"
for implicit ones. Real Secrets Manager responses quoted in public bug reports:

- "User: arn:aws:sts::763606934258:assumed-role/DeployMaster/aws-go-sdk-1752762083142898432 is not
  authorized to perform: secretsmanager:DescribeSecret on resource: arn:aws:secretsmanager:us-east-1:
  763606934258:secret:/devops/monitoring/alertmanager-ev0FIK because no identity-based policy allows
  the secretsmanager:DescribeSecret action" (github.com/binbashar/le-tf-infra-aws pull 869)
- "User: arn:aws:sts::***:... is not authorized to perform: secretsmanager:ListSecrets because no
  identity-based policy allows the secretsmanager:ListSecrets action"
  (github.com/Kralizek/AWSSecretsManagerConfigurationExtensions issue 78): no "on resource:" part
  for actions without a resource.
- "... is not authorized to perform: secretsmanager:GetResourcePolicy on resource: arn:aws:
  secretsmanager:::secret:/<secret_name> because no resource-based policy allows the
  secretsmanager:GetResourcePolicy action" (github.com/hashicorp/terraform-provider-aws issue 35549).
- "... is not authorized to perform: secretsmanager:ListSecrets because no permissions boundary
  allows the secretsmanager:ListSecrets action" (same project, issue 76).
"""

from __future__ import annotations

from secretsd.policy.evaluate import Decision

# Article included: "with an explicit deny in an identity-based policy", "... in a resource-based
# policy" (the examples on the troubleshooting page above).
_TYPE_PHRASE = {"identity": "an identity-based policy", "resource": "a resource-based policy"}


def access_denied_message(caller_arn: str, action: str, resource: str, decision: Decision) -> str:
    """The message for a denied `decision`; `resource` "*" (or empty) omits the resource part."""
    head = f"User: {caller_arn} is not authorized to perform: {action}"
    if resource and resource != "*":
        head += f" on resource: {resource}"
    phrase = _TYPE_PHRASE[decision.policy_type or "identity"]
    if decision.reason == "explicit_deny":
        return f"{head} with an explicit deny in {phrase}"
    return f"{head} because no {phrase.split(' ', 1)[1]} allows the {action} action"
