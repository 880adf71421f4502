"""CloudTrail records: one per API call (AwsApiCall) and one per service event (AwsServiceEvent).

Field names and shapes follow "CloudTrail record contents" (eventVersion 1.09): responseElements
only for calls that change something (null for read-only calls and for errors, so GetSecretValue
never carries its value); requestParameters and responseElements pass through the model-driven
redaction in `redact.py`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from secretsd.audit.chain import record_bytes
from secretsd.audit.redact import Redactor
from secretsd.auth.identity import Identity
from secretsd.store.events import ServiceEvent

EVENT_VERSION = "1.09"
# Where the caller's account is not known (a request refused before its key was found).
UNKNOWN_ACCOUNT = "unknown"
# KMS operations CloudTrail marks readOnly although their names do not say so.
_READ_ONLY_KMS = frozenset(
    {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateMac",
        "GenerateRandom",
        "ReEncrypt",
        "Sign",
        "Verify",
        "VerifyMac",
    }
)
# "Filter": CloudWatch Logs' FilterLogEvents (its response, function output, is never copied).
_READ_ONLY_PREFIXES = ("Get", "List", "Describe", "BatchGet", "Lookup", "Validate", "Filter")
# CloudTrail records an authorization failure as AccessDenied whatever the service calls it.
_ERROR_CODES = {"AccessDeniedException": "AccessDenied"}
# The resource LookupEvents' ResourceType/ResourceName attributes see, by request member.
_RESOURCE_MEMBERS = (
    ("secretsmanager", "SecretId", "AWS::SecretsManager::Secret"),
    ("secretsmanager", "Name", "AWS::SecretsManager::Secret"),
    ("kms", "KeyId", "AWS::KMS::Key"),
    ("kms", "AliasName", "AWS::KMS::Alias"),
    ("iam", "UserName", "AWS::IAM::User"),
    ("iam", "RoleName", "AWS::IAM::Role"),
    ("iam", "PolicyArn", "AWS::IAM::Policy"),
    ("iam", "GroupName", "AWS::IAM::Group"),
    ("sts", "RoleArn", "AWS::IAM::Role"),
)


@dataclass(slots=True)
class CallFacts:
    """What the endpoint knows about one call, whatever became of it. A route kind that is not
    JSON or query (say, a REST route) fills the same fields and hands them to the recorder.

    `request` and `response` are the call's parameters and result as the handler saw them (not
    yet redacted: the recorder redacts them with the service's model). Not frozen: a frozen
    dataclass's __init__ sets each of these fields through object.__setattr__, which cost
    more than the rest of the record on the GetSecretValue path; nothing changes it after."""

    service: str  # the SigV4 signing name: secretsmanager, kms, iam, sts, cloudtrail, ...
    operation: str  # "" when the request never named a known operation
    request_id: str
    time_ms: int
    status: int
    region: str = ""
    source_ip: str = ""
    user_agent: str = ""
    identity: Identity | None = None
    access_key_id: str | None = None  # as claimed, for requests refused before a principal
    request: Mapping[str, Any] | None = None
    response: Mapping[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    # The ARNs of the secrets the call resolved from the ids it was given (CallContext.resolved).
    resolved: tuple[str, ...] = ()


class AuditRecord(NamedTuple):
    """A record ready for its chain (account and region), already in its canonical bytes: the
    writer's buffer then holds no nested dicts for the garbage collector to walk and promote
    while they wait for their batch."""

    account_id: str
    region: str
    event_id: str
    time_ms: int
    line: bytes

    @property
    def body(self) -> dict[str, Any]:
        return render(self.line)


def make_record(account_id: str, region: str, time_ms: int, body: dict[str, Any]) -> AuditRecord:
    try:
        line = record_bytes(body)
    except orjson.JSONEncodeError:
        # A parameter with a lone surrogate (JSON's \ud800 escapes decode to one) is not
        # UTF-8: recorded with "?" in its place, as the call is recorded whatever it held.
        line = record_bytes(scrubbed(body))
    return AuditRecord(account_id, region, body["eventID"], time_ms, line)


def scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {scrubbed(k): scrubbed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrubbed(v) for v in value]
    return value


class EventIds:
    """UUIDv7 event ids (RFC 9562: the time first, so ids are appended at the end of their
    index instead of at random places in it; opaque to clients, as CloudTrail's are). The random
    bits come from os.urandom, read a few kilobytes at a time rather than one system call per
    id, and the time part is formatted once per millisecond."""

    def __init__(self, pool_ids: int = 200) -> None:
        self._chunk = 10 * pool_ids
        self._pool = ""
        self._at = 0
        self._ms = -1
        self._prefix = ""

    def new(self, time_ms: int) -> str:
        if self._at + 20 > len(self._pool):
            self._pool, self._at = os.urandom(self._chunk).hex(), 0
        r = self._pool[self._at : self._at + 20]
        self._at += 20
        if time_ms != self._ms:
            t = f"{time_ms & 0xFFFFFFFFFFFF:012x}"
            self._ms, self._prefix = time_ms, f"{t[:8]}-{t[8:12]}-7"
        return f"{self._prefix}{r[1:4]}-{_VARIANT[r[4]]}{r[5:8]}-{r[8:20]}"


# The variant bits (10xx) of a UUID's eighth byte, by the random hex digit they replace.
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def new_event_id(time_ms: int) -> str:
    """A UUIDv7 (see EventIds) where no EventIds is at hand: randomness for this one id only."""
    return EventIds(pool_ids=1).new(time_ms)


def event_time(time_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time_ms // 1000))


def is_read_only(service: str, operation: str) -> bool:
    if service == "kms" and operation in _READ_ONLY_KMS:
        return True
    return operation.startswith(_READ_ONLY_PREFIXES)


def user_identity(identity: Identity) -> dict[str, Any]:
    base: dict[str, Any] = {
        "principalId": identity.userid,
        "arn": identity.arn,
        "accountId": identity.account_id,
        "accessKeyId": identity.access_key_id,
    }
    if identity.owner_kind == "root":
        out = {"type": "Root", **base}
    elif identity.owner_kind == "role":
        role_id = identity.userid.split(":", 1)[0]
        out = {
            "type": "AssumedRole",
            **base,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": identity.principal_arn,
                    "accountId": identity.account_id,
                    "userName": identity.owner_name,
                },
            },
        }
    else:
        out = {"type": "IAMUser", **base, "userName": identity.owner_name}
    if identity.is_session:
        context = out.setdefault("sessionContext", {})
        attributes: dict[str, Any] = {"mfaAuthenticated": "false"}
        if identity.session_issued_ms is not None:
            attributes["creationDate"] = event_time(identity.session_issued_ms)
        context["attributes"] = attributes
    return out


_RESOURCE_KEYS = tuple(dict.fromkeys(("ARN", *(member for _, member, _ in _RESOURCE_MEMBERS))))


def resource_members(values: Mapping[str, Any]) -> dict[str, Any]:
    """The members of a call's parameters or result that `_resource` may name it by."""
    return {k: values[k] for k in _RESOURCE_KEYS if k in values}


def strip_result(facts: CallFacts, cache: RecordCache) -> None:
    """What a call's facts keep while they wait for their batch: of a read's (or a failure's)
    result only the members naming its resource, so no value a record never shows is held."""
    if facts.response is not None and (
        facts.error_code is not None or cache.read_only(facts.service, facts.operation)
    ):
        facts.response = resource_members(facts.response)


def _resource(facts: CallFacts) -> tuple[str | None, str | None]:
    # One secret resolved: its ARN, whatever the caller typed and whatever became of the call
    # (a refused GetSecretValue by name is found by the secret's ARN). Several (a batch): none
    # stands for the call.
    if facts.service == "secretsmanager" and len(set(facts.resolved)) == 1:
        return "AWS::SecretsManager::Secret", facts.resolved[0]
    for values in (facts.response, facts.request):
        if not values:
            continue
        if facts.service == "secretsmanager" and isinstance(values.get("ARN"), str):
            return "AWS::SecretsManager::Secret", values["ARN"]
        for service, member, kind in _RESOURCE_MEMBERS:
            if service == facts.service and isinstance(values.get(member), str):
                return kind, values[member]
    return None, None


class RecordCache:
    """Parts of records that repeat from call to call (a caller's userIdentity, whether an
    operation is read-only), and the event id source, kept per writer: a few microseconds per call on the hot path."""

    def __init__(self, max_identities: int = 10_000) -> None:
        self._who: dict[tuple[str, str, int | None], dict[str, Any]] = {}
        self._max = max_identities
        self._read_only: dict[tuple[str, str], bool] = {}
        self.ids = EventIds()

    def read_only(self, service: str, operation: str) -> bool:
        key = (service, operation)
        found = self._read_only.get(key)
        if found is None:
            if len(self._read_only) >= self._max:
                self._read_only.clear()
            found = self._read_only[key] = is_read_only(service, operation)
        return found

    def who(self, identity: Identity) -> dict[str, Any]:
        key = (identity.arn, identity.access_key_id, identity.session_issued_ms)
        found = self._who.get(key)
        if found is None:
            if len(self._who) >= self._max:
                self._who.clear()
            # Shared by the records of this caller: never modified after this.
            found = self._who[key] = user_identity(identity)
        return found


class CallSummary(NamedTuple):
    """What an API call's record says, reduced to what the record shows: parameters already
    redacted, a read's result dropped, the caller's userIdentity built. Everything in it is
    JSON (it crosses to the node's audit writer process, `audit/wire.py`); the record's event
    id, time and canonical bytes are made from it where it is chained (`summary_record`)."""

    account_id: str
    who: dict[str, Any]
    service: str
    operation: str
    request_id: str
    time_ms: int
    region: str
    source_ip: str
    user_agent: str
    request: dict[str, Any] | None
    response: dict[str, Any] | None
    read_only: bool
    error_code: str | None
    error_message: str | None
    resource_type: str | None
    resource_name: str | None


def summarize(
    facts: CallFacts, redactor: Redactor | None, cache: RecordCache | None = None
) -> CallSummary:
    identity = facts.identity
    account = identity.account_id if identity is not None else UNKNOWN_ACCOUNT
    read_only = (
        cache.read_only(facts.service, facts.operation)
        if cache is not None
        else is_read_only(facts.service, facts.operation)
    )
    error_code = facts.error_code
    failed = error_code is not None
    request = redactor.request(facts.operation, facts.request) if redactor else None
    response = (
        redactor.response(facts.operation, facts.response)
        if redactor and not read_only and not failed
        else None
    )
    if identity is not None:
        who = cache.who(identity) if cache is not None else user_identity(identity)
    else:
        who = {"type": "Unknown"}
        if facts.access_key_id:
            who["accessKeyId"] = facts.access_key_id
    resource_type, resource_name = _resource(facts)
    return CallSummary(
        account,
        who,
        facts.service,
        facts.operation,
        facts.request_id,
        facts.time_ms,
        facts.region or "us-east-1",
        facts.source_ip,
        facts.user_agent,
        request,
        response,
        read_only,
        _ERROR_CODES.get(error_code, error_code) if error_code is not None else None,
        (facts.error_message or "") if failed else None,
        resource_type,
        resource_name,
    )


# The stored form of an API call's record (see `compact_line`): a JSON array led by this tag.
COMPACT_TAG = "c1"


def summary_record(call: CallSummary, cache: RecordCache | None = None) -> AuditRecord:
    """The record of an API call, in its stored form: `compact_line`."""
    time_ms = call.time_ms
    event_id = cache.ids.new(time_ms) if cache is not None else new_event_id(time_ms)
    return AuditRecord(
        call.account_id, call.region, event_id, time_ms, compact_line(event_id, call)
    )


def compact_line(event_id: str, call: CallSummary) -> bytes:
    """An API call's record as stored and hashed: its event id and summary as one JSON array,
    from which `render` makes the CloudTrail record, field for field. Everything the record
    says is in it (so the chain covers all of it), without the 17 keys, constants and
    duplicates CloudTrail's shape adds: 40% fewer bytes, and no dict built or key sorted per
    call (ADR 0009)."""
    row = [COMPACT_TAG, event_id, *call]
    try:
        return orjson.dumps(row)
    except orjson.JSONEncodeError:
        # A parameter with a lone surrogate (JSON's \ud800 escapes decode to one) is not
        # UTF-8: recorded with "?" in its place, as the call is recorded whatever it held.
        return orjson.dumps(scrubbed(row))


def record_body(event_id: str, call: CallSummary) -> dict[str, Any]:
    """The CloudTrail record of an API call."""
    account = call.account_id
    body: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": call.who,
        "eventTime": event_time(call.time_ms),
        "eventSource": f"{call.service}.amazonaws.com",
        "eventName": call.operation or "Unknown",
        "awsRegion": call.region,
        "sourceIPAddress": call.source_ip,
        "userAgent": call.user_agent,
        "requestParameters": call.request,
        "responseElements": call.response,
        "requestID": call.request_id,
        "eventID": event_id,
        "readOnly": call.read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if call.error_code is not None:
        body["errorCode"] = call.error_code
        body["errorMessage"] = call.error_message or ""
    if call.resource_name is not None:
        body["resources"] = [
            {"type": call.resource_type, "ARN": call.resource_name, "accountId": account}
        ]
    return body


class NotARecord(ValueError):
    """A stored line that is neither form of a record."""


def render(line: str | bytes) -> dict[str, Any]:
    """The CloudTrail record a stored line holds: an API call's compact form, or a full
    record (service events, and API calls recorded before the compact form)."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise NotARecord("not JSON") from exc
    if isinstance(value, dict):
        return value
    if (
        not isinstance(value, list)
        or len(value) != len(CallSummary._fields) + 2
        or value[0] != COMPACT_TAG
        or not isinstance(value[1], str)
    ):
        raise NotARecord("neither a record nor a compact record")
    try:
        call = CallSummary(*value[2:])
        if not isinstance(call.who, dict) or not isinstance(call.time_ms, int):
            raise NotARecord("a compact record of the wrong shape")
        return record_body(value[1], call)
    except (TypeError, ValueError) as exc:
        raise NotARecord("a compact record of the wrong shape") from exc


def full_line(line: bytes) -> bytes:
    """A stored line as the CloudTrail record's canonical JSON (what exporters write)."""
    if line[:1] == b"{":
        return line
    return record_bytes(render(line))


def api_call_record(
    facts: CallFacts, redactor: Redactor | None, cache: RecordCache | None = None
) -> AuditRecord:
    return summary_record(summarize(facts, redactor, cache), cache)


def service_event_id(event: ServiceEvent) -> str:
    """A stable event id for a service event row, so it is published once only."""
    h = event.event_id.ljust(32, "0")[:32]
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def service_event_record(event: ServiceEvent) -> AuditRecord:
    source = event.event_source
    event_id = service_event_id(event)
    body: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": {"type": "AWSService", "accountId": event.account_id, "invokedBy": source},
        "eventTime": event_time(event.time_ms),
        "eventSource": source,
        "eventName": event.event_name,
        "awsRegion": event.region,
        "sourceIPAddress": source,
        "userAgent": source,
        "requestParameters": None,
        "responseElements": None,
        "requestID": new_event_id(event.time_ms),
        "eventID": event_id,
        "readOnly": False,
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": event.account_id,
        "serviceEventDetails": dict(event.details),
        "eventCategory": "Management",
    }
    resource_type = "AWS::SecretsManager::Secret" if source.startswith("secretsmanager") else None
    if event.resource_arn is not None:
        body["resources"] = [
            {"type": resource_type, "ARN": event.resource_arn, "accountId": event.account_id}
        ]
    return make_record(event.account_id, event.region, event.time_ms, body)
