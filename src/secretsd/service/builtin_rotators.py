"""Built-in rotators: PostgreSQL and MySQL/MariaDB credentials rotated without a Lambda function.

`RotationLambdaARN` names one by its function name, in the secret's region and account:
`arn:aws:lambda:<region>:<account>:function:secretsd-builtin-<postgresql|mysql>-<single-user|
multi-user>`. Secrets Manager invokes it with the same
event and four steps as a Lambda function, and it follows the strategies of AWS's rotation
templates (read from AWS's documentation, written here from scratch):

- single user: the user in the secret changes its own password (logging in with the current,
  or else the previous, password);
- alternating users: the secret's `masterarn` names a secret holding a superuser's credentials;
  the rotation alternates between `<user>` and `<user>_clone`, creating the clone (with the
  original's role memberships) when missing, so the credentials in use stay valid while the
  other user's password changes.

The secret value is AWS's JSON (engine, host, port, username, password, dbname, masterarn). The
database work is an `Engine`'s: psycopg for PostgreSQL, PyMySQL (in a thread: it is blocking)
for MySQL and MariaDB. The
steps call Secrets Manager with the account's own authority in the secret's account and region
(a built-in rotator has no execution role); the master secret must be in that account.
"""

from __future__ import annotations

import json
from typing import Any

from secretsd.auth.identity import Identity
from secretsd.errors import ServiceError
from secretsd.service import staging
from secretsd.service.context import CallContext
from secretsd.service.database_engines import (
    ENGINES,
    DatabaseError,
    Engine,
    MysqlEngine,
    PostgresEngine,
)
from secretsd.service.invocation import (
    BUILTIN_FUNCTION_PREFIX,
    FunctionNotInvokable,
    Invocation,
)
from secretsd.service.passwords import generate_password
from secretsd.service.secrets import SecretsService

PREFIX = BUILTIN_FUNCTION_PREFIX
CLONE_SUFFIX = "_clone"
# Characters AWS's templates exclude from generated passwords (they break connection strings).
EXCLUDED_CHARACTERS = "/@\"'\\:"


class RotationStepError(Exception):
    """A step that cannot complete; reported as the function's error (never holds a value)."""


def service_context(account_id: str, region: str) -> CallContext:
    identity = Identity(
        account_id=account_id,
        arn=f"arn:aws:iam::{account_id}:root",
        principal_arn=f"arn:aws:iam::{account_id}:root",
        principal_type="Account",
        userid=account_id,
        owner_kind="root",
        owner_name="",
        access_key_id="",
    )
    return CallContext(identity, region, operation="Rotation")


class DatabaseRotator:
    """A FunctionInvoker for one built-in engine and strategy."""

    def __init__(self, secrets: SecretsService, engine: Engine, *, multi_user: bool) -> None:
        self._secrets = secrets
        self._engine = engine
        self._multi_user = multi_user

    def check_service_may_invoke(
        self, function_arn: str, *, principal: str, source_account: str, source_arn: str
    ) -> None:
        if source_arn.split(":")[4] != source_account:
            raise FunctionNotInvokable(function_arn)

    async def invoke_as_service(
        self,
        function_arn: str,
        payload: bytes,
        *,
        principal: str,
        source_account: str,
        source_arn: str,
    ) -> Invocation:
        self.check_service_may_invoke(
            function_arn, principal=principal, source_account=source_account, source_arn=source_arn
        )
        event = json.loads(payload)
        arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
        ctx = service_context(source_account, arn.split(":")[3])
        try:
            if step == "createSecret":
                self._create(ctx, arn, token)
            elif step == "setSecret":
                await self._set(ctx, arn, token)
            elif step == "testSecret":
                await self._engine.check_login(self._pending_or_current(ctx, arn, token))
            elif step == "finishSecret":
                self._finish(ctx, arn, token)
            else:
                raise RotationStepError(f"Unknown step {step}")
        except (RotationStepError, ServiceError, DatabaseError) as exc:
            message = exc.message if isinstance(exc, ServiceError) else str(exc)
            document = {"errorType": type(exc).__name__, "errorMessage": message}
            return Invocation(json.dumps(document).encode(), "Unhandled")
        return Invocation(b"null", None)

    # -- steps --------------------------------------------------------------------------------
    def _create(self, ctx: CallContext, arn: str, token: str) -> None:
        current = self._value(ctx, arn, None, staging.CURRENT)
        try:
            self._value(ctx, arn, token, staging.PENDING)
            return  # created by an earlier attempt
        except ServiceError as exc:
            if exc.code != "ResourceNotFoundException":
                raise
        new = dict(current)
        if self._multi_user:
            user = str(current["username"])
            new["username"] = (
                user[: -len(CLONE_SUFFIX)] if user.endswith(CLONE_SUFFIX) else user + CLONE_SUFFIX
            )
        new["password"] = generate_password(exclude_characters=EXCLUDED_CHARACTERS)
        self._secrets.put_secret_value(
            ctx,
            secret_id=arn,
            token=token,
            secret_string=json.dumps(new),
            secret_binary=None,
            version_stages=[staging.PENDING],
        )

    async def _set(self, ctx: CallContext, arn: str, token: str) -> None:
        pending = self._value(ctx, arn, token, staging.PENDING)
        if await self._engine.can_login(pending):
            return  # set by an earlier attempt
        if self._multi_user:
            master_arn = pending.get("masterarn")
            if not isinstance(master_arn, str):
                raise RotationStepError("The secret has no masterarn for the multi-user strategy.")
            master = self._value(ctx, master_arn, None, staging.CURRENT)
            current = self._value(ctx, arn, None, staging.CURRENT)
            admin = {
                **master,
                "host": master.get("host", pending.get("host")),
                "dbname": pending.get("dbname", master.get("dbname")),
            }
            await self._engine.set_clone_password(
                admin, str(current["username"]), str(pending["username"]), str(pending["password"])
            )
            return
        for stage in (staging.CURRENT, staging.PREVIOUS):
            try:
                candidate = self._value(ctx, arn, None, stage)
            except ServiceError:
                continue
            login = {**pending, "password": candidate.get("password")}
            if await self._engine.can_login(login):
                await self._engine.set_own_password(login, str(pending["password"]))
                return
        raise RotationStepError("Neither the current nor the previous password logs in.")

    def _pending_or_current(self, ctx: CallContext, arn: str, token: str) -> dict[str, Any]:
        """What testSecret logs in with: the new credentials, or (RotateImmediately=false tests
        the rotation configuration with an AWSPENDING version that has no value) the current
        ones."""
        try:
            return self._value(ctx, arn, token, staging.PENDING)
        except ServiceError as exc:
            if exc.code != "ResourceNotFoundException":
                raise
        return self._value(ctx, arn, None, staging.CURRENT)

    def _finish(self, ctx: CallContext, arn: str, token: str) -> None:
        view = self._secrets.describe_secret(ctx, secret_id=arn)
        current = view.stages.get(staging.CURRENT)
        if current == token:
            return
        self._secrets.update_secret_version_stage(
            ctx, secret_id=arn, version_stage=staging.CURRENT, move_to=token, remove_from=current
        )

    def _value(
        self, ctx: CallContext, arn: str, version_id: str | None, stage: str
    ) -> dict[str, Any]:
        value = self._secrets.get_secret_value(
            ctx, secret_id=arn, version_id=version_id, version_stage=stage
        )
        try:
            document = json.loads(value.string or "")
        except ValueError:
            document = None
        if not isinstance(document, dict) or not {"host", "username", "password"} <= set(document):
            raise RotationStepError(
                "The secret value is not database credentials JSON (host, username, password)."
            )
        engine = str(document.get("engine", self._engine.engines[0]))
        if engine not in self._engine.engines:
            raise RotationStepError(
                f"This built-in rotator rotates engine {' or '.join(self._engine.engines)}."
            )
        return document


def builtin_rotators(secrets: SecretsService) -> dict[str, DatabaseRotator]:
    """The built-in rotators by function name."""
    engines: dict[str, Engine] = {"postgresql": PostgresEngine(), "mysql": MysqlEngine()}
    assert set(engines) == set(ENGINES)
    return {
        f"{PREFIX}{name}-{strategy}": DatabaseRotator(
            secrets, engine, multi_user=strategy == "multi-user"
        )
        for name, engine in engines.items()
        for strategy in ("single-user", "multi-user")
    }
