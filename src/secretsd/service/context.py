"""Who is calling, where: everything the service needs to know about a request."""

from __future__ import annotations

from dataclasses import dataclass, field

from secretsd.auth.identity import Identity


@dataclass(frozen=True, slots=True)
class CallContext:
    identity: Identity
    region: str
    operation: str = ""
    source_ip: str = ""
    secure_transport: bool = False
    # The ARNs of the secrets the call looked up by the id it was given (a name, a partial
    # ARN): its audit record names the resolved ARN, as CloudTrail's does, so LookupEvents by
    # ResourceName finds a call made by name. Filled in by the service, per call.
    resolved: list[str] = field(default_factory=list, compare=False)

    @property
    def account_id(self) -> str:
        return self.identity.account_id

    @property
    def principal_arn(self) -> str:
        """The ARN AWS names in messages ("User: <arn> is not authorized ...")."""
        return self.identity.arn
