"""IAM-style policy documents and AWS's evaluation logic, independent of the server."""

from secretsd.policy.context import ContextValue, RequestContext, account_root, request_tag_keys
from secretsd.policy.document import (
    Policy,
    PolicyKind,
    PolicySyntaxError,
    PrincipalSet,
    Statement,
    parse_policy,
)
from secretsd.policy.evaluate import Decision, StatementRef, context_free, evaluate
from secretsd.policy.messages import access_denied_message

__all__ = [
    "ContextValue",
    "Decision",
    "Policy",
    "PolicyKind",
    "PolicySyntaxError",
    "PrincipalSet",
    "RequestContext",
    "Statement",
    "StatementRef",
    "access_denied_message",
    "account_root",
    "context_free",
    "evaluate",
    "parse_policy",
    "request_tag_keys",
]
