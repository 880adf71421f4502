"""STS: who am I, temporary credentials for a user (GetSessionToken) and for a role (AssumeRole).

A session is a row in sts_sessions: the secret sealed like a long-term key's, the session token
kept only as its SHA-256 digest. The authentication layer verifies them on later requests.

AWS's words used here:
- "The requested DurationSeconds exceeds the MaxSessionDuration set for this role." (400
  ValidationError; kreuzwerker/awsu#27, prowler-cloud/prowler#923).
- "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role
  chaining." (AssumeRole API reference describes the limit; the wording is from reports of the
  error, unverified against a recording here).
- "Cannot call GetSessionToken with session credentials" (403 AccessDenied; aws/aws-sdk-js#3670,
  aws/aws-sdk-php#1876).
- "Roles may not be assumed by root accounts." (403 AccessDenied; AWS CLI output quoted in
  several write-ups).
- "<arn> is invalid" for a RoleArn that is not a role ARN (ValidationError; emulators recorded
  against AWS, unverified).
- "User: <caller> is not authorized to perform: sts:AssumeRole on resource: <role arn>" when the
  role does not exist (AWS does not reveal whether it does).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from secretsd.auth.principals import new_access_key_id, new_secret_access_key
from secretsd.clock import Clock
from secretsd.errors import ServiceError
from secretsd.policy.context import ContextValue, request_tag_keys
from secretsd.service.authorization import Authorizer
from secretsd.service.context import CallContext
from secretsd.service.iam import role_arn
from secretsd.store.database import Database
from secretsd.store.iam_repository import IamRepository, RoleRecord, SessionRecord

DEFAULT_ROLE_SESSION_SECONDS = 3600
ROLE_CHAINING_MAX_SECONDS = 3600
DEFAULT_USER_SESSION_SECONDS = 43200
MAX_SESSION_TAGS = 50
EXPIRED_SESSION_GRACE_MS = 86_400_000
# Session tags are packed with the session policies; AWS reports their share of the packed limit
# as a percentage. The limit's size is not published: 2048 characters is an assumption.
_PACKED_LIMIT = 2048
_TOKEN_BYTES = 192
_ROLE_ARN = re.compile(r"^arn:aws:iam::(\d{12}):role(/(?:[\x21-\x7e]*/)?)([\w+=,.@-]{1,64})$")


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expires_ms: int


@dataclass(frozen=True, slots=True)
class AssumedRole:
    credentials: Credentials
    assumed_role_id: str
    arn: str
    packed_policy_size: int | None


def _validation(message: str) -> ServiceError:
    return ServiceError("ValidationError", message)


def _access_denied(message: str) -> ServiceError:
    return ServiceError("AccessDenied", message, 403)


def new_session_token() -> str:
    """A long, random, opaque token, as AWS's are (hundreds of base64 characters)."""
    return base64.b64encode(secrets.token_bytes(_TOKEN_BYTES)).decode()


def session_tags(
    role_tags: Sequence[tuple[str, str]], requested: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The role's tags with the session's tags overriding them (keys compared ignoring case)."""
    merged: dict[str, tuple[str, str]] = {k.lower(): (k, v) for k, v in role_tags}
    for key, value in requested:
        merged[key.lower()] = (key, value)
    return list(merged.values())


ROOT_SESSION_MAX_SECONDS = 3600


class StsService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        authorizer: Authorizer,
        seal: Callable[[str, str], bytes],
    ) -> None:
        self._db = db
        self._clock = clock
        self._authz = authorizer
        self._seal = seal

    def caller_identity(self, ctx: CallContext) -> tuple[str, str, str]:
        """(UserId, Account, Arn): no permission is needed to ask (AWS documents this)."""
        identity = ctx.identity
        return identity.userid, identity.account_id, identity.arn

    def _credentials(self, seconds: int) -> tuple[Credentials, bytes, bytes, int]:
        access_key_id = new_access_key_id("ASIA")
        secret = new_secret_access_key()
        token = new_session_token()
        now = self._clock.now_ms()
        creds = Credentials(access_key_id, secret, token, now + seconds * 1000)
        return (
            creds,
            self._seal(access_key_id, secret),
            hashlib.sha256(token.encode()).digest(),
            now,
        )

    def get_session_token(self, ctx: CallContext, duration_seconds: int | None) -> Credentials:
        identity = ctx.identity
        if identity.is_session:
            raise _access_denied("Cannot call GetSessionToken with session credentials")
        seconds = duration_seconds or DEFAULT_USER_SESSION_SECONDS
        if identity.is_root:
            # "Sessions for AWS account owners are restricted to a maximum of 3,600 seconds
            # (one hour). If the duration is longer than one hour, the session for AWS account
            # owners defaults to one hour." (STS API reference, GetSessionToken)
            seconds = min(seconds, ROOT_SESSION_MAX_SECONDS)
        creds, sealed, digest, now = self._credentials(seconds)
        record = SessionRecord(
            creds.access_key_id,
            identity.account_id,
            sealed,
            digest,
            "Root" if identity.is_root else "User",
            identity.principal_arn,
            identity.arn,
            identity.owner_name,
            identity.userid,
            tuple(identity.tags.items()),
            now,
            creds.expires_ms,
        )
        self._store(record)
        return creds

    def assume_role(
        self,
        ctx: CallContext,
        *,
        arn: str,
        session_name: str,
        duration_seconds: int | None,
        tags: Sequence[tuple[str, str]],
        external_id: str | None,
        source_identity: str | None,
        has_session_policy: bool,
    ) -> AssumedRole:
        match = _ROLE_ARN.match(arn)
        if match is None:
            raise _validation(f"{arn} is invalid")
        if ctx.identity.is_root:
            # AWS refuses the root user outright (403), before looking at the role.
            raise _access_denied("Roles may not be assumed by root accounts.")
        account, _, name = match.groups()
        with self._db.statement() as tx:
            role = IamRepository(tx).role(account, name)
        # STS words every refusal the same way, without saying which policy was missing:
        # "User: <arn> is not authorized to perform: sts:AssumeRole on resource: <role arn>"
        # (recorded in many public reports, e.g. github.com/Netflix/security_monkey issue 77,
        # github.com/aws/karpenter-provider-aws issue 4680).
        refusal = ServiceError(
            "AccessDeniedException",
            f"User: {ctx.identity.arn} is not authorized to perform: sts:AssumeRole on"
            f" resource: {arn}",
        )
        if role is None or role_arn(role.account_id, role.path, role.name) != arn:
            raise refusal
        keys: dict[str, ContextValue] = {}
        if external_id is not None:
            keys["sts:ExternalId"] = external_id
        if source_identity is not None:
            keys["sts:SourceIdentity"] = source_identity
        keys["sts:RoleSessionName"] = session_name
        allowed = self._authz.check(
            ctx,
            "sts:AssumeRole",
            arn,
            resource_account=role.account_id,
            resource_policy=role.trust_policy,
            condition_keys=keys,
            require_resource_policy=True,
        )
        if not allowed.allowed:
            raise refusal
        if tags:
            tag_keys = request_tag_keys(tags)
            self._authz.require(
                ctx,
                "sts:TagSession",
                arn,
                resource_account=role.account_id,
                resource_policy=role.trust_policy,
                condition_keys=tag_keys,
                require_resource_policy=True,
            )
        if has_session_policy:
            # Session policies would narrow the session; ignoring them would grant more than
            # asked, so they are refused (secretsd's own rule, not AWS's).
            raise _validation("Session policies (Policy, PolicyArns) are not supported.")
        seconds = self._duration(ctx, role, duration_seconds)
        creds, sealed, digest, now = self._credentials(seconds)
        assumed_id = f"{role.role_id}:{session_name}"
        caller_arn = f"arn:aws:sts::{role.account_id}:assumed-role/{role.name}/{session_name}"
        all_tags = session_tags(role.tags, tags)
        if len(all_tags) > MAX_SESSION_TAGS:
            raise _validation(
                f"1 validation error detected: Value at 'tags' failed to satisfy constraint:"
                f" Member must have length less than or equal to {MAX_SESSION_TAGS}"
            )
        record = SessionRecord(
            creds.access_key_id,
            role.account_id,
            sealed,
            digest,
            "AssumedRole",
            arn,
            caller_arn,
            role.name,
            assumed_id,
            tuple(all_tags),
            now,
            creds.expires_ms,
        )
        self._store(record)
        packed = None
        if tags:
            size = sum(len(k) + len(v) for k, v in tags)
            packed = max(1, math.ceil(100 * size / _PACKED_LIMIT))
        return AssumedRole(creds, assumed_id, caller_arn, packed)

    def assume_role_as_service(
        self, arn: str, *, principal: str, session_name: str, seconds: int
    ) -> AssumedRole:
        """Credentials of `arn` for an AWS service principal (Lambda running a function with
        its execution role): the role's trust policy must name the service."""
        match = _ROLE_ARN.match(arn)
        refusal = ServiceError(
            "AccessDeniedException",
            f"{principal} is not authorized to perform: sts:AssumeRole on resource: {arn}",
        )
        if match is None:
            raise refusal
        account, _, name = match.groups()
        with self._db.statement() as tx:
            role = IamRepository(tx).role(account, name)
        if role is None or role_arn(role.account_id, role.path, role.name) != arn:
            raise refusal
        decision = self._authz.check_service(
            principal,
            "sts:AssumeRole",
            arn,
            account_id=role.account_id,
            resource_policy=role.trust_policy,
        )
        if not decision.allowed:
            raise refusal
        seconds = min(seconds, role.max_session_seconds)
        creds, sealed, digest, now = self._credentials(seconds)
        assumed_id = f"{role.role_id}:{session_name}"
        caller_arn = f"arn:aws:sts::{role.account_id}:assumed-role/{role.name}/{session_name}"
        record = SessionRecord(
            creds.access_key_id,
            role.account_id,
            sealed,
            digest,
            "AssumedRole",
            arn,
            caller_arn,
            role.name,
            assumed_id,
            tuple(role.tags),
            now,
            creds.expires_ms,
        )
        self._store(record)
        return AssumedRole(creds, assumed_id, caller_arn, None)

    def purge_expired(self) -> int:
        """Forget sessions that expired over a day ago (until then a token is still told apart
        as expired rather than unknown)."""
        with self._db.transaction(write=True) as tx:
            return IamRepository(tx).delete_expired_sessions(
                self._clock.now_ms() - EXPIRED_SESSION_GRACE_MS
            )

    def _store(self, record: SessionRecord) -> None:
        with self._db.transaction(write=True) as tx:
            repo = IamRepository(tx)
            # Sessions long expired are swept as new ones are made (the expiry index keeps this
            # cheap); for a day after expiry a token is still told apart as expired.
            repo.delete_expired_sessions(record.created_ms - EXPIRED_SESSION_GRACE_MS)
            repo.insert_session(record)

    @staticmethod
    def _duration(ctx: CallContext, role: RoleRecord, requested: int | None) -> int:
        if requested is None:
            return min(DEFAULT_ROLE_SESSION_SECONDS, role.max_session_seconds)
        if ctx.identity.principal_type == "AssumedRole" and requested > ROLE_CHAINING_MAX_SECONDS:
            raise _validation(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed"
                " by role chaining."
            )
        if requested > role.max_session_seconds:
            raise _validation(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
            )
        return requested


def tags_of(params: Mapping[str, object]) -> list[tuple[str, str]]:
    raw = params.get("Tags") or []
    assert isinstance(raw, list)
    return [(t["Key"], t["Value"]) for t in raw]
