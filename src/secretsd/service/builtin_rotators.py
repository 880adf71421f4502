"""Built-in rotators: PostgreSQL credentials rotated without a Lambda function.

`RotationLambdaARN` names one by its function name, in any region and account:
`arn:aws:lambda:<region>:<account>:function:secretsd-builtin-postgresql-single-user` or
`...:function:secretsd-builtin-postgresql-multi-user`. Secrets Manager invokes it with the same
event and four steps as a Lambda function, and it follows the strategies of AWS's rotation
templates (read from AWS's documentation, written here from scratch):

- single user: the user in the secret changes its own password (logging in with the current,
  or else the previous, password);
- alternating users: the secret's `masterarn` names a secret holding a superuser's credentials;
  the rotation alternates between `<user>` and `<user>_clone`, creating the clone (with the
  original's role memberships) when missing, so the credentials in use stay valid while the
  other user's password changes.

The secret value is AWS's JSON (engine, host, port, username, password, dbname, masterarn). The
steps call Secrets Manager with the account's own authority in the secret's account and region
(a built-in rotator has no execution role); the master secret must be in that account.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from secretsd.auth.identity import Identity
from secretsd.errors import ServiceError
from secretsd.service import staging
from secretsd.service.context import CallContext
from secretsd.service.invocation import FunctionNotInvokable, Invocation
from secretsd.service.passwords import generate_password
from secretsd.service.secrets import SecretsService

SINGLE_USER = "secretsd-builtin-postgresql-single-user"
MULTI_USER = "secretsd-builtin-postgresql-multi-user"
CLONE_SUFFIX = "_clone"
CONNECT_TIMEOUT_SECONDS = 5
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


class PostgresRotator:
    """A FunctionInvoker for one built-in strategy."""

    def __init__(self, secrets: SecretsService, *, multi_user: bool) -> None:
        self._secrets = secrets
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
                await _check_login(self._pending_or_current(ctx, arn, token))
            elif step == "finishSecret":
                self._finish(ctx, arn, token)
            else:
                raise RotationStepError(f"Unknown step {step}")
        except (RotationStepError, ServiceError, psycopg.Error) as exc:
            document = {"errorType": type(exc).__name__, "errorMessage": _message(exc)}
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
        if await _can_login(pending):
            return  # set by an earlier attempt
        if self._multi_user:
            master_arn = pending.get("masterarn")
            if not isinstance(master_arn, str):
                raise RotationStepError("The secret has no masterarn for the multi-user strategy.")
            master = self._value(ctx, master_arn, None, staging.CURRENT)
            current = self._value(ctx, arn, None, staging.CURRENT)
            async with await _connect(_with_target(master, pending)) as conn:
                await _ensure_clone(conn, str(current["username"]), str(pending["username"]))
                await _set_password(conn, str(pending["username"]), str(pending["password"]))
            return
        login = None
        for stage in (staging.CURRENT, staging.PREVIOUS):
            try:
                candidate = self._value(ctx, arn, None, stage)
            except ServiceError:
                continue
            candidate = {**pending, "password": candidate.get("password")}
            if await _can_login(candidate):
                login = candidate
                break
        if login is None:
            raise RotationStepError("Neither the current nor the previous password logs in.")
        async with await _connect(login) as conn:
            await _set_password(conn, str(pending["username"]), str(pending["password"]))

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
                "The secret value is not PostgreSQL credentials JSON (host, username, password)."
            )
        if str(document.get("engine", "postgres")) not in ("postgres", "postgresql"):
            raise RotationStepError("The built-in rotator rotates only engine postgres.")
        return document


def _message(exc: Exception) -> str:
    if isinstance(exc, ServiceError):
        return exc.message
    if isinstance(exc, psycopg.Error):
        # The server's own message (e.g. "password authentication failed for user ..."), which
        # never echoes a password.
        diag = getattr(exc, "diag", None)
        return str(getattr(diag, "message_primary", None) or type(exc).__name__)
    return str(exc)


def _with_target(master: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **master,
        "host": master.get("host", target.get("host")),
        "dbname": target.get("dbname", master.get("dbname")),
    }


async def _connect(creds: Mapping[str, Any]) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(
        host=str(creds["host"]),
        port=int(creds.get("port") or 5432),
        dbname=str(creds.get("dbname") or "postgres"),
        user=str(creds["username"]),
        password=str(creds["password"]),
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        autocommit=True,
    )


async def _can_login(creds: Mapping[str, Any]) -> bool:
    try:
        await _check_login(creds)
    except psycopg.OperationalError:
        return False
    return True


async def _check_login(creds: Mapping[str, Any]) -> None:
    async with await _connect(creds) as conn:
        await conn.execute("SELECT 1")


async def _set_password(conn: psycopg.AsyncConnection[Any], user: str, password: str) -> None:
    await conn.execute(
        sql.SQL("ALTER USER {} WITH PASSWORD {}").format(
            sql.Identifier(user), sql.Literal(password)
        )
    )


async def _ensure_clone(conn: psycopg.AsyncConnection[Any], original: str, clone: str) -> None:
    """The other user of the pair exists, with the original's role memberships."""
    cur = await conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (clone,))
    if await cur.fetchone() is not None:
        return
    await conn.execute(sql.SQL("CREATE ROLE {} WITH LOGIN").format(sql.Identifier(clone)))
    cur = await conn.execute(
        "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
        " JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s",
        (original,),
    )
    for (group,) in await cur.fetchall():
        await conn.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(clone))
        )


def builtin_rotators(secrets: SecretsService) -> dict[str, PostgresRotator]:
    return {
        SINGLE_USER: PostgresRotator(secrets, multi_user=False),
        MULTI_USER: PostgresRotator(secrets, multi_user=True),
    }
