"""What Secrets Manager needs of Lambda: invoking a function as an AWS service principal.

Rotation (service/rotation) depends on this protocol only; the Lambda implementation
(functions, environments, the Runtime API) provides it. Both sides are built against this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

SECRETS_MANAGER_PRINCIPAL = "secretsmanager.amazonaws.com"
# Function names of the built-in rotators: rotation routes these to secretsd itself, so Lambda
# refuses to create functions under them (one would never be invoked by a rotation).
BUILTIN_FUNCTION_PREFIX = "secretsd-builtin-"


@dataclass(frozen=True, slots=True)
class Invocation:
    """The outcome of one invocation, as Lambda's Invoke reports it."""

    # The function's response payload (its JSON result, or the error document when
    # `function_error` is set), at most 6 MB.
    payload: bytes
    # "Unhandled" when the function raised, timed out or ran out of memory (Lambda's
    # X-Amz-Function-Error); None on success.
    function_error: str | None
    executed_version: str = "$LATEST"
    # The last 4 KB of the invocation's log, as Lambda's LogResult (plain text here).
    log_tail: str = ""


class FunctionNotInvokable(Exception):
    """The function does not exist, or its resource policy does not let the service principal
    invoke it for this source (Secrets Manager then answers AccessDeniedException "Secrets
    Manager cannot invoke the specified Lambda function. ...")."""


class FunctionInvoker(Protocol):
    def check_service_may_invoke(
        self, function_arn: str, *, principal: str, source_account: str, source_arn: str
    ) -> None:
        """Raise FunctionNotInvokable unless `function_arn` exists and its resource policy
        allows `principal` (with aws:SourceAccount / aws:SourceArn) lambda:InvokeFunction."""
        ...

    async def invoke_as_service(
        self,
        function_arn: str,
        payload: bytes,
        *,
        principal: str,
        source_account: str,
        source_arn: str,
    ) -> Invocation:
        """Invoke synchronously (RequestResponse) on behalf of `principal`, after the same
        check as check_service_may_invoke. Function failures come back as an Invocation with
        function_error set; only FunctionNotInvokable is raised."""
        ...
