"""Lambda: functions (only $LATEST), their resource policies, and invoking them.

AWS's words used here (Lambda API reference and recorded CLI output):
- "Function not found: arn:aws:lambda:<region>:<account>:function:<name>" (404
  ResourceNotFoundException).
- "Function already exist: <name>" (409 ResourceConflictException).
- "The role defined for the function cannot be assumed by Lambda." (400
  InvalidParameterValueException).
- "Could not unzip uploaded file. Please check your file, then try to upload again." (400
  InvalidParameterValueException).
- "The statement id (<sid>) provided already exists. Please choose a unique statement id or remove
  the existing statement." (409 ResourceConflictException).
- "The resource you requested does not exist." (404, GetPolicy without a policy).
- "Could not parse request body into json: ..." (400 InvalidRequestContentException).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from secretsd.clock import Clock
from secretsd.errors import ServiceError
from secretsd.runtime.environment import (
    RESERVED_VARIABLES,
    FunctionSpec,
    RoleCredentials,
    RunResult,
)
from secretsd.runtime.pool import EnvironmentPool
from secretsd.runtime.sandbox import CodeRejected, check_zip
from secretsd.service.authorization import Authorizer
from secretsd.service.context import CallContext
from secretsd.service.invocation import (
    BUILTIN_FUNCTION_PREFIX,
    FunctionNotInvokable,
    Invocation,
)
from secretsd.service.sts import StsService
from secretsd.store.database import Database, StoreConflict
from secretsd.store.iam_repository import IamRepository
from secretsd.store.lambda_repository import FunctionRecord, FunctionRepository, LogRepository

LAMBDA_PRINCIPAL = "lambda.amazonaws.com"
RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13")
# AWS's direct-upload limit for a zipped deployment package, and for the unpacked code.
MAX_ZIP_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
MAX_EVENT_PAYLOAD = 256 * 1024
CREDENTIAL_SECONDS = 3600
MAX_VARIABLES_BYTES = 4096
_ROLE_ARN = re.compile(r"^arn:aws:iam::(\d{12}):role/(?:[\x21-\x7e]*/)?([\w+=,.@-]{1,64})$")
_FUNCTION_ARN = re.compile(
    r"^(?:arn:aws:lambda:([a-z0-9-]+):)?(?:(\d{12}):function:)?([a-zA-Z0-9_-]{1,140})(?::(\$LATEST|[a-zA-Z0-9_-]+))?$"
)
log = logging.getLogger("secretsd.lambda")
MSG_RESERVED_NAME = (
    f"Function names starting with '{BUILTIN_FUNCTION_PREFIX}' are reserved for secretsd's"
    " built-in rotators."
)
_SERVICE_PRINCIPAL = re.compile(r"^[a-z0-9.-]+\.amazonaws\.com(\.cn)?$")


@dataclass(frozen=True, slots=True)
class FunctionRef:
    account_id: str
    region: str
    name: str

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.name}"


@dataclass(frozen=True, slots=True)
class InvokeOutcome:
    status: int
    payload: bytes
    function_error: str | None = None
    log_result: str | None = None


def parse_function_arn(arn: str) -> FunctionRef | None:
    match = _FUNCTION_ARN.match(arn)
    if match is None or not arn.startswith("arn:"):
        return None
    region, account, name, qualifier = match.groups()
    if account is None or qualifier not in (None, "$LATEST"):
        return None
    return FunctionRef(account, region, name)


def _not_found(arn: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"Function not found: {arn}", 404)


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValueException", message)


def _last_modified(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0000"


class LambdaService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        authorizer: Authorizer,
        sts: StsService,
        pool: EnvironmentPool,
        endpoint: str,
    ) -> None:
        self._db = db
        self._clock = clock
        self._authz = authorizer
        self._sts = sts
        self._pool = pool
        self._endpoint = endpoint
        self._background: set[asyncio.Task[Any]] = set()

    # -- names ---------------------------------------------------------------------------------
    def _ref(
        self, ctx: CallContext, function_name: str, qualifier: str | None = None
    ) -> FunctionRef:
        match = _FUNCTION_ARN.match(function_name)
        if match is None:
            raise _invalid(
                f"1 validation error detected: Value '{function_name}' at 'functionName' failed"
                " to satisfy constraint: Member must satisfy regular expression pattern:"
                " (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?"
                "(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
            )
        region, account, name, name_qualifier = match.groups()
        ref = FunctionRef(account or ctx.account_id, region or ctx.region, name)
        wanted = name_qualifier or qualifier
        if len(name) > 64 or (account is not None and account != ctx.account_id):
            raise _not_found(ref.arn)
        if region is not None and region != ctx.region:
            raise _invalid(
                f"Functions from '{region}' are not reachable in this region ('{ctx.region}')"
            )
        if wanted not in (None, "$LATEST"):
            raise _not_found(f"{ref.arn}:{wanted}")
        return ref

    def _record(self, ref: FunctionRef) -> FunctionRecord:
        with self._db.statement() as tx:
            record = FunctionRepository(tx).get(ref.account_id, ref.region, ref.name)
        if record is None:
            raise _not_found(ref.arn)
        return record

    def _authorize(
        self, ctx: CallContext, action: str, ref: FunctionRef, policy: str | None = None
    ) -> None:
        self._require(
            ctx,
            f"lambda:{action}",
            ref.arn,
            resource_account=ref.account_id,
            resource_policy=policy,
        )

    def _require(
        self,
        ctx: CallContext,
        action: str,
        resource: str,
        *,
        resource_account: str | None = None,
        resource_policy: str | None = None,
    ) -> None:
        # Lambda answers a refusal with HTTP 403 (Secrets Manager, with 400).
        try:
            self._authz.require(
                ctx,
                action,
                resource,
                resource_account=resource_account,
                resource_policy=resource_policy,
            )
        except ServiceError as exc:
            raise ServiceError(exc.code, exc.message, 403) from exc

    def _policy_of(self, ref: FunctionRef) -> str | None:
        with self._db.statement() as tx:
            record = FunctionRepository(tx).get(ref.account_id, ref.region, ref.name)
        return None if record is None else record.policy_json

    # -- configuration -------------------------------------------------------------------------
    def configuration(self, record: FunctionRecord) -> dict[str, Any]:
        config = json.loads(record.config_json)
        ref = FunctionRef(record.account_id, record.region, record.name)
        out: dict[str, Any] = {
            "FunctionName": record.name,
            "FunctionArn": ref.arn,
            "Runtime": config["Runtime"],
            "Role": config["Role"],
            "Handler": config["Handler"],
            "CodeSize": record.code_size,
            "Description": config.get("Description", ""),
            "Timeout": config["Timeout"],
            "MemorySize": config["MemorySize"],
            "LastModified": _last_modified(record.last_modified_ms),
            "CodeSha256": record.code_sha256,
            "Version": "$LATEST",
            "TracingConfig": {"Mode": "PassThrough"},
            "RevisionId": record.revision_id,
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": ["x86_64"],
            "EphemeralStorage": {"Size": 512},
            "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
            "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{record.name}"},
        }
        if config.get("Variables"):
            out["Environment"] = {"Variables": dict(config["Variables"])}
        return out

    def _check_role(self, ctx: CallContext, role: str) -> None:
        # AWS asks the caller for iam:PassRole on the role, then checks Lambda can assume it.
        self._require(ctx, "iam:PassRole", role)
        match = _ROLE_ARN.match(role)
        trust: str | None = None
        if match is not None:
            account, name = match.groups()
            with self._db.statement() as tx:
                record = IamRepository(tx).role(account, name)
            trust = None if record is None else record.trust_policy
        if (
            trust is None
            or not self._authz.check_service(
                LAMBDA_PRINCIPAL,
                "sts:AssumeRole",
                role,
                account_id=match.group(1) if match else ctx.account_id,
                resource_policy=trust,
            ).allowed
        ):
            raise _invalid("The role defined for the function cannot be assumed by Lambda.")

    @staticmethod
    def _check_code(code: bytes) -> tuple[str, int]:
        if len(code) > MAX_ZIP_BYTES:
            raise ServiceError(
                "RequestEntityTooLargeException",
                f"Zipped file size exceeds the maximum of {MAX_ZIP_BYTES} bytes.",
                413,
            )
        try:
            unpacked = check_zip(code)
        except CodeRejected as exc:
            raise _invalid(
                "Could not unzip uploaded file. Please check your file, then try to upload again."
            ) from exc
        if unpacked > MAX_UNZIPPED_BYTES:
            raise _invalid(f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes")
        return base64.b64encode(hashlib.sha256(code).digest()).decode(), len(code)

    @staticmethod
    def _check_runtime(runtime: str | None) -> str:
        if runtime not in RUNTIMES:
            raise _invalid(
                f"The runtime parameter of {runtime} is not supported here: secretsd runs"
                f" {', '.join(RUNTIMES)}."
            )
        return runtime

    def create_function(self, ctx: CallContext, params: Mapping[str, Any]) -> dict[str, Any]:
        ref = self._ref(ctx, params["FunctionName"])
        if ":" in params["FunctionName"]:
            raise _invalid("The function name must be a name, not an ARN, in CreateFunction.")
        self._authorize(ctx, "CreateFunction", ref)
        if ref.name.startswith(BUILTIN_FUNCTION_PREFIX):
            raise _invalid(MSG_RESERVED_NAME)
        if params.get("PackageType", "Zip") != "Zip":
            raise _invalid("Only .zip deployment packages are supported.")
        code_params = params["Code"]
        if "ZipFile" not in code_params:
            raise _invalid("Please provide the code as a .zip file (Code.ZipFile).")
        runtime = self._check_runtime(params.get("Runtime"))
        if not params.get("Handler"):
            raise _invalid("Handler is required when the deployment package is a .zip file.")
        self._check_role(ctx, params["Role"])
        code: bytes = code_params["ZipFile"]
        sha, size = self._check_code(code)
        config = {
            "Runtime": runtime,
            "Role": params["Role"],
            "Handler": params["Handler"],
            "Description": params.get("Description", ""),
            "Timeout": params.get("Timeout", 3),
            "MemorySize": params.get("MemorySize", 128),
            "Variables": _variables(params.get("Environment")),
        }
        record = FunctionRecord(
            ref.account_id,
            ref.region,
            ref.name,
            json.dumps(config),
            sha,
            size,
            None,
            str(uuid.uuid4()),
            self._clock.now_ms(),
        )
        try:
            with self._db.transaction(write=True) as tx:
                repo = FunctionRepository(tx)
                if repo.get(ref.account_id, ref.region, ref.name) is not None:
                    raise StoreConflict(ref.name)
                repo.insert(record, code)
        except StoreConflict as exc:
            raise ServiceError(
                "ResourceConflictException", f"Function already exist: {ref.name}", 409
            ) from exc
        return self.configuration(record)

    def get_function(self, ctx: CallContext, name: str, qualifier: str | None) -> dict[str, Any]:
        ref = self._ref(ctx, name, qualifier)
        self._authorize(ctx, "GetFunction", ref, self._policy_of(ref))
        record = self._record(ref)
        # Code.Location (a pre-signed download URL on AWS) is not offered.
        return {"Configuration": self.configuration(record), "Code": {"RepositoryType": "S3"}}

    def get_configuration(
        self, ctx: CallContext, name: str, qualifier: str | None
    ) -> dict[str, Any]:
        ref = self._ref(ctx, name, qualifier)
        self._authorize(ctx, "GetFunctionConfiguration", ref, self._policy_of(ref))
        return self.configuration(self._record(ref))

    def _update(
        self,
        ref: FunctionRef,
        revision: str | None,
        change: Any,
        code: bytes | None = None,
    ) -> dict[str, Any]:
        with self._db.transaction(write=True) as tx:
            repo = FunctionRepository(tx)
            record = repo.get(ref.account_id, ref.region, ref.name)
            if record is None:
                raise _not_found(ref.arn)
            if revision is not None and revision != record.revision_id:
                raise ServiceError(
                    "PreconditionFailedException",
                    "The Revision Id provided does not match the latest Revision Id. Call the"
                    " GetFunction/GetAlias API to retrieve the latest Revision Id",
                    412,
                )
            updated = change(record)
            repo.update(updated, code)
        return self.configuration(updated)

    def update_code(self, ctx: CallContext, params: Mapping[str, Any]) -> dict[str, Any]:
        ref = self._ref(ctx, params["FunctionName"])
        self._authorize(ctx, "UpdateFunctionCode", ref, self._policy_of(ref))
        if "ZipFile" not in params:
            raise _invalid("Please provide the code as a .zip file (ZipFile).")
        code: bytes = params["ZipFile"]
        sha, size = self._check_code(code)
        now = self._clock.now_ms()

        def change(record: FunctionRecord) -> FunctionRecord:
            return FunctionRecord(
                record.account_id,
                record.region,
                record.name,
                record.config_json,
                sha,
                size,
                record.policy_json,
                str(uuid.uuid4()),
                now,
            )

        return self._update(ref, params.get("RevisionId"), change, code)

    def update_configuration(self, ctx: CallContext, params: Mapping[str, Any]) -> dict[str, Any]:
        ref = self._ref(ctx, params["FunctionName"])
        self._authorize(ctx, "UpdateFunctionConfiguration", ref, self._policy_of(ref))
        if "Runtime" in params:
            self._check_runtime(params["Runtime"])
        if "Role" in params:
            self._check_role(ctx, params["Role"])
        now = self._clock.now_ms()

        def change(record: FunctionRecord) -> FunctionRecord:
            config = json.loads(record.config_json)
            for key in ("Runtime", "Role", "Handler", "Description", "Timeout", "MemorySize"):
                if key in params:
                    config[key] = params[key]
            if "Environment" in params:
                config["Variables"] = _variables(params["Environment"])
            return FunctionRecord(
                record.account_id,
                record.region,
                record.name,
                json.dumps(config),
                record.code_sha256,
                record.code_size,
                record.policy_json,
                str(uuid.uuid4()),
                now,
            )

        return self._update(ref, params.get("RevisionId"), change)

    async def delete_function(self, ctx: CallContext, name: str, qualifier: str | None) -> None:
        ref = self._ref(ctx, name, qualifier)
        self._authorize(ctx, "DeleteFunction", ref, self._policy_of(ref))
        with self._db.transaction(write=True) as tx:
            if not FunctionRepository(tx).delete(ref.account_id, ref.region, ref.name):
                raise _not_found(ref.arn)
        await self._pool.retire(ref.arn)

    def list_functions(
        self, ctx: CallContext, marker: str | None, max_items: int | None
    ) -> dict[str, Any]:
        self._require(ctx, "lambda:ListFunctions", "*")
        limit = max_items or 50
        after = ""
        if marker:
            try:
                after = base64.urlsafe_b64decode(marker.encode()).decode()
            except (ValueError, UnicodeDecodeError) as exc:
                raise _invalid("Invalid marker.") from exc
        with self._db.statement() as tx:
            records = FunctionRepository(tx).list(ctx.account_id, ctx.region, after, limit + 1)
        out: dict[str, Any] = {"Functions": [self.configuration(r) for r in records[:limit]]}
        if len(records) > limit:
            out["NextMarker"] = base64.urlsafe_b64encode(records[limit - 1].name.encode()).decode()
        return out

    # -- resource policy -----------------------------------------------------------------------
    def add_permission(self, ctx: CallContext, params: Mapping[str, Any]) -> dict[str, Any]:
        ref = self._ref(ctx, params["FunctionName"], params.get("Qualifier"))
        self._authorize(ctx, "AddPermission", ref, self._policy_of(ref))
        statement = _permission_statement(ref, params)
        sid = params["StatementId"]

        def change(record: FunctionRecord) -> FunctionRecord:
            policy: dict[str, Any] = (
                json.loads(record.policy_json)
                if record.policy_json
                else {"Version": "2012-10-17", "Id": "default", "Statement": []}
            )
            if any(s.get("Sid") == sid for s in policy["Statement"]):
                raise ServiceError(
                    "ResourceConflictException",
                    f"The statement id ({sid}) provided already exists. Please choose a unique"
                    " statement id or remove the existing statement.",
                    409,
                )
            policy["Statement"].append(statement)
            return _with_policy(record, json.dumps(policy, separators=(",", ":")))

        self._update_policy(ref, params.get("RevisionId"), change)
        return {"Statement": json.dumps(statement, separators=(",", ":"))}

    def remove_permission(self, ctx: CallContext, params: Mapping[str, Any]) -> None:
        ref = self._ref(ctx, params["FunctionName"], params.get("Qualifier"))
        self._authorize(ctx, "RemovePermission", ref, self._policy_of(ref))
        sid = params["StatementId"]

        def change(record: FunctionRecord) -> FunctionRecord:
            policy = json.loads(record.policy_json) if record.policy_json else None
            kept = [s for s in (policy or {}).get("Statement", []) if s.get("Sid") != sid]
            if policy is None or len(kept) == len(policy["Statement"]):
                raise ServiceError(
                    "ResourceNotFoundException",
                    f"Statement {sid} is not found in resource policy.",
                    404,
                )
            policy["Statement"] = kept
            return _with_policy(record, json.dumps(policy, separators=(",", ":")) if kept else None)

        self._update_policy(ref, params.get("RevisionId"), change)

    def _update_policy(self, ref: FunctionRef, revision: str | None, change: Any) -> None:
        with self._db.transaction(write=True) as tx:
            repo = FunctionRepository(tx)
            record = repo.get(ref.account_id, ref.region, ref.name)
            if record is None:
                raise _not_found(ref.arn)
            if revision is not None and revision != record.revision_id:
                raise ServiceError(
                    "PreconditionFailedException",
                    "The Revision Id provided does not match the latest Revision Id. Call the"
                    " GetPolicy API to retrieve the latest Revision Id",
                    412,
                )
            repo.update(change(record))

    def get_policy(self, ctx: CallContext, name: str, qualifier: str | None) -> dict[str, Any]:
        ref = self._ref(ctx, name, qualifier)
        self._authorize(ctx, "GetPolicy", ref, self._policy_of(ref))
        record = self._record(ref)
        if record.policy_json is None:
            raise ServiceError(
                "ResourceNotFoundException", "The resource you requested does not exist.", 404
            )
        return {"Policy": record.policy_json, "RevisionId": record.revision_id}

    # -- invoking ------------------------------------------------------------------------------
    async def invoke(
        self,
        ctx: CallContext,
        name: str,
        payload: bytes,
        *,
        invocation_type: str,
        log_type: str | None,
        qualifier: str | None,
    ) -> InvokeOutcome:
        ref = self._ref(ctx, name, qualifier)
        self._authorize(ctx, "InvokeFunction", ref, self._policy_of(ref))
        record = self._record(ref)
        limit = MAX_EVENT_PAYLOAD if invocation_type == "Event" else MAX_SYNC_PAYLOAD
        if len(payload) > limit:
            raise ServiceError(
                "RequestTooLargeException",
                f"Request must be smaller than {limit} bytes for the InvokeFunction operation",
                413,
            )
        payload = _json_payload(payload)
        if invocation_type == "DryRun":
            return InvokeOutcome(204, b"")
        if invocation_type == "Event":
            task = asyncio.get_running_loop().create_task(self._run_event(record, payload))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return InvokeOutcome(202, b"")
        result = await self._run(record, payload)
        tail = result.log_result if log_type == "Tail" else None
        return InvokeOutcome(200, result.payload, result.function_error, tail)

    async def _run_event(self, record: FunctionRecord, payload: bytes) -> None:
        try:
            await self._run(record, payload)
        except ServiceError as exc:
            # Nobody waits for an Event invocation: the refusal is logged (never the payload).
            log.warning("event invocation of %s not run: %s", record.name, exc.code)
        except Exception:
            log.exception("event invocation of %s failed", record.name)

    def spec(self, record: FunctionRecord) -> FunctionSpec:
        config = json.loads(record.config_json)
        return FunctionSpec(
            arn=FunctionRef(record.account_id, record.region, record.name).arn,
            name=record.name,
            account_id=record.account_id,
            region=record.region,
            revision=record.revision_id,
            handler=config["Handler"],
            runtime=config["Runtime"],
            timeout=int(config["Timeout"]),
            memory_mb=int(config["MemorySize"]),
            variables=dict(config.get("Variables") or {}),
            endpoint=self._endpoint,
        )

    async def _run(self, record: FunctionRecord, payload: bytes) -> RunResult:
        spec = self.spec(record)
        request_id = str(uuid.uuid4())

        def code() -> bytes:
            with self._db.statement() as tx:
                data = FunctionRepository(tx).code(record.account_id, record.region, record.name)
            if data is None:
                raise _not_found(spec.arn)
            return data

        def credentials() -> RoleCredentials:
            role = json.loads(record.config_json)["Role"]
            try:
                assumed = self._sts.assume_role_as_service(
                    role,
                    principal=LAMBDA_PRINCIPAL,
                    session_name=record.name,
                    seconds=CREDENTIAL_SECONDS,
                )
            except ServiceError as exc:
                raise _invalid(
                    "The role defined for the function cannot be assumed by Lambda."
                ) from exc
            c = assumed.credentials
            return RoleCredentials(
                c.access_key_id, c.secret_access_key, c.session_token, c.expires_ms
            )

        try:
            return await self._pool.invoke(
                spec, request_id, payload, code=code, credentials=credentials
            )
        except OSError as exc:
            # The environment could not be started (no interpreter the function's user may run,
            # no room for the task root...): the operator's problem, told in the server log.
            log.error("cannot start an environment for %s: %s", spec.arn, exc)
            raise ServiceError(
                "ServiceException", "The function's execution environment could not start.", 500
            ) from exc

    def write_log(self, spec: FunctionSpec, stream: str, events: list[tuple[int, str]]) -> None:
        with self._db.transaction(write=True) as tx:
            LogRepository(tx).append(
                spec.account_id,
                spec.region,
                spec.log_group,
                stream,
                events,
                self._clock.now_ms(),
            )

    # -- FunctionInvoker (service/invocation.py) ------------------------------------------------
    def check_service_may_invoke(
        self, function_arn: str, *, principal: str, source_account: str, source_arn: str
    ) -> None:
        self._service_record(function_arn, principal, source_account, source_arn)

    def _service_record(
        self, function_arn: str, principal: str, source_account: str, source_arn: str
    ) -> FunctionRecord:
        ref = parse_function_arn(function_arn)
        if ref is None:
            raise FunctionNotInvokable(function_arn)
        with self._db.statement() as tx:
            record = FunctionRepository(tx).get(ref.account_id, ref.region, ref.name)
        if record is None:
            raise FunctionNotInvokable(function_arn)
        decision = self._authz.check_service(
            principal,
            "lambda:InvokeFunction",
            ref.arn,
            account_id=ref.account_id,
            resource_policy=record.policy_json,
            condition_keys={"aws:SourceAccount": source_account, "aws:SourceArn": source_arn},
        )
        if not decision.allowed:
            raise FunctionNotInvokable(function_arn)
        return record

    async def invoke_as_service(
        self,
        function_arn: str,
        payload: bytes,
        *,
        principal: str,
        source_account: str,
        source_arn: str,
    ) -> Invocation:
        record = self._service_record(function_arn, principal, source_account, source_arn)
        try:
            result = await self._run(record, payload)
        except ServiceError as exc:
            # The function cannot be started (its role, its code): reported as the
            # invocation's failure, as Lambda reports a sandbox that fails to start.
            body = orjson.dumps({"errorType": exc.code, "errorMessage": exc.message})
            return Invocation(body, "Unhandled")
        return Invocation(result.payload, result.function_error, "$LATEST", result.log_tail)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await self._pool.close()


def _variables(environment: Mapping[str, Any] | None) -> dict[str, str]:
    """A function's variables, refused as AWS refuses them: reserved names, over 4 KB."""
    variables: dict[str, str] = dict((environment or {}).get("Variables") or {})
    reserved = sorted(k for k in variables if k in RESERVED_VARIABLES)
    if reserved:
        raise _invalid(
            "Lambda was unable to configure your environment variables because the environment"
            " variables you have provided contains reserved keys that are currently not"
            f" supported for modification. Reserved keys used in this request: {','.join(reserved)}"
        )
    # AWS measures the variables as JSON; the message does not repeat them (values may be
    # sensitive).
    if len(json.dumps(variables, separators=(",", ":")).encode()) > MAX_VARIABLES_BYTES:
        raise _invalid(
            "Lambda was unable to configure your environment variables because the environment"
            " variables you have provided exceeded the 4KB limit."
        )
    return variables


def _with_policy(record: FunctionRecord, policy: str | None) -> FunctionRecord:
    return FunctionRecord(
        record.account_id,
        record.region,
        record.name,
        record.config_json,
        record.code_sha256,
        record.code_size,
        policy,
        str(uuid.uuid4()),
        record.last_modified_ms,
    )


def _permission_statement(ref: FunctionRef, params: Mapping[str, Any]) -> dict[str, Any]:
    """The statement AWS writes for AddPermission."""
    principal = params["Principal"]
    if principal == "*":
        principal_block: Any = "*"
    elif _SERVICE_PRINCIPAL.match(principal):
        principal_block = {"Service": principal}
    elif re.fullmatch(r"\d{12}", principal):
        principal_block = {"AWS": f"arn:aws:iam::{principal}:root"}
    elif principal.startswith("arn:aws:iam::"):
        principal_block = {"AWS": principal}
    else:
        raise _invalid(
            "The provided principal was invalid. Please check the principal and try again."
        )
    action = params["Action"]
    if not re.fullmatch(r"(lambda:[*]|lambda:[a-zA-Z]+|[*])", action):
        raise _invalid(
            f"1 validation error detected: Value '{action}' at 'action' failed to satisfy"
            " constraint: Member must satisfy regular expression pattern:"
            " (lambda:[*]|lambda:[a-zA-Z]+|[*])"
        )
    statement: dict[str, Any] = {
        "Sid": params["StatementId"],
        "Effect": "Allow",
        "Principal": principal_block,
        "Action": action,
        "Resource": ref.arn,
    }
    condition: dict[str, dict[str, str]] = {}
    if params.get("SourceAccount"):
        condition.setdefault("StringEquals", {})["AWS:SourceAccount"] = params["SourceAccount"]
    if params.get("PrincipalOrgID"):
        condition.setdefault("StringEquals", {})["aws:PrincipalOrgID"] = params["PrincipalOrgID"]
    if params.get("SourceArn"):
        condition["ArnLike"] = {"AWS:SourceArn": params["SourceArn"]}
    if condition:
        statement["Condition"] = condition
    return statement


def _json_payload(payload: bytes) -> bytes:
    if not payload:
        return b"{}"
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ServiceError(
            "InvalidRequestContentException",
            f"Could not parse request body into json: Could not parse payload into json: {exc}",
        ) from exc
    return payload
