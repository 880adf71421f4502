"""What a warm Lambda function adds to a rotation step: `.venv/bin/python bench/rotation_step.py`.

Starts `secretsd serve` (SQLite, or `--database postgresql://...`), deploys a function whose
handler does nothing, and runs whole rotations (RotateSecret, then the four steps) with the
rotation service of service/rotation.py, built in this process on the server's database as a
worker builds it, in two ways that differ only in the function:

- `builtin`: each step is a rotator inside secretsd (as the built-in rotators are) that does a
  minimal rotation's secret work in-process: createSecret puts the AWSPENDING value,
  finishSecret moves AWSCURRENT;
- `lambda`: the same in-process work, and each step also invokes the warm Lambda function through
  the FunctionInvoker that rotation uses (resource-policy check for secretsmanager.amazonaws.com,
  the Runtime API round trip, the function's log written to the database).

Rotations of the two kinds alternate. Per step it records the step's time as the rotation service
sees it (from its call of the invoker to the answer) and, for `lambda`, the invocation alone.
Issue 8's budget: invoking a warm function adds at most 50 ms to a rotation step at p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

_REPO = str(Path(__file__).resolve().parent.parent)
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)


from bench.lambda_invoke import (  # noqa: E402
    NO_RETRIES,
    deploy_function,
    percentile,
    summary,
    temporary_server,
)
from secretsd.service.context import CallContext  # noqa: E402
from secretsd.service.invocation import FunctionInvoker, Invocation  # noqa: E402
from secretsd.service.secrets import SecretsService  # noqa: E402


class MinimalRotation:
    """A FunctionInvoker doing a minimal rotation's secret work in-process; with `function`, it
    also invokes that (warm Lambda) function at each step, timing the invocation."""

    def __init__(
        self, secrets: SecretsService, ctx: CallContext, function: FunctionInvoker | None
    ) -> None:
        self._secrets = secrets
        self._ctx = ctx
        self._function = function
        self.steps: list[float] = []
        self.invocations: list[float] = []

    def check_service_may_invoke(
        self, function_arn: str, *, principal: str, source_account: str, source_arn: str
    ) -> None:
        if self._function is not None:
            self._function.check_service_may_invoke(
                function_arn,
                principal=principal,
                source_account=source_account,
                source_arn=source_arn,
            )

    async def invoke_as_service(
        self,
        function_arn: str,
        payload: bytes,
        *,
        principal: str,
        source_account: str,
        source_arn: str,
    ) -> Invocation:
        started = time.perf_counter()
        if self._function is not None:
            result = await self._function.invoke_as_service(
                function_arn,
                payload,
                principal=principal,
                source_account=source_account,
                source_arn=source_arn,
            )
            assert result.function_error is None, result.payload
            self.invocations.append((time.perf_counter() - started) * 1000)
        event = json.loads(payload)
        arn, token = event["SecretId"], event["ClientRequestToken"]
        if event["Step"] == "createSecret":
            self._secrets.put_secret_value(
                self._ctx,
                secret_id=arn,
                token=token,
                secret_string=f"rotated {token}",
                secret_binary=None,
                version_stages=["AWSPENDING"],
            )
        elif event["Step"] == "finishSecret":
            current = self._secrets.describe_secret(self._ctx, secret_id=arn).stages["AWSCURRENT"]
            self._secrets.update_secret_version_stage(
                self._ctx,
                secret_id=arn,
                version_stage="AWSCURRENT",
                move_to=token,
                remove_from=current,
            )
        self.steps.append((time.perf_counter() - started) * 1000)
        return Invocation(b"null", None)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rotations", type=int, default=250, help="of each kind")
    parser.add_argument("--database", default=None)
    args = parser.parse_args()
    with temporary_server("secretsd-rotation-bench-", args.database) as (endpoint, data):
        return run(endpoint, data, args)


def run(endpoint: str, data: Path, args: argparse.Namespace) -> int:
    session, arn = deploy_function(
        endpoint, data, "bench-step", "def handler(event, context):\n    return None\n"
    )
    sm = session.client("secretsmanager", endpoint_url=endpoint, config=NO_RETRIES)
    secrets = [
        sm.create_secret(Name=f"bench-rotation-{i}", SecretString="initial")["ARN"]
        for i in range(2 * args.rotations)
    ]
    kinds = asyncio.run(_rotate(data, endpoint, arn, secrets, args))
    for label, kind in kinds.items():
        print(summary(f"step ({label})", kind.steps))
    print(summary("invoke in step", kinds["lambda"].invocations))
    added = percentile(kinds["lambda"].steps, 99) - percentile(kinds["builtin"].steps, 99)
    invoke_p99 = percentile(kinds["lambda"].invocations, 99)
    print(f"step p99 lambda - builtin: {added:.2f} ms; invocation p99 {invoke_p99:.2f} ms")
    worst = max(added, invoke_p99)
    print(f"added to a rotation step at p99: {worst:.2f} ms (budget 50 ms):", end=" ")
    print("OK" if worst <= 50 else "OVER")
    return 0 if worst <= 50 else 1


async def _rotate(
    data: Path, endpoint: str, function_arn: str, secrets: list[str], args: argparse.Namespace
) -> dict[str, MinimalRotation]:
    from secretsd.app import build_app
    from secretsd.service.builtin_rotators import service_context
    from secretsd.service.rotation import RotationService
    from secretsd.settings import Settings

    host, port = endpoint.removeprefix("http://").rsplit(":", 1)
    settings = Settings(data_dir=data, host=host, port=int(port), database_url=args.database or "")
    app: Any = build_app(settings)
    # The app's Secrets Manager service (its route by X-Amz-Target prefix).
    service: SecretsService = app._routes["secretsmanager."].service
    invoker: Any = app.function_invoker
    ctx = service_context(function_arn.split(":")[4], "us-east-1")
    kinds = {
        "builtin": MinimalRotation(service, ctx, None),
        "lambda": MinimalRotation(service, ctx, invoker),
    }
    # The rotation service's collaborators, as build_app passes them to its own.
    rotations = {
        label: RotationService(service._db, service._clock, service, service._auth, kind)
        for label, kind in kinds.items()
    }

    async def rotate(label: str, secret: str) -> None:
        rotation = rotations[label]
        rotation.rotate_secret(
            ctx,
            secret_id=secret,
            token=str(uuid.uuid4()),
            lambda_arn=function_arn,
            rules=None,
            rotate_immediately=True,
        )
        await asyncio.gather(*rotation._tasks)

    try:
        # Warm-up (the function's environment started, caches filled), not counted.
        for secret in secrets[:10]:
            await rotate("lambda", secret)
            await rotate("builtin", secret)
        for kind in kinds.values():
            kind.steps.clear()
            kind.invocations.clear()
        for i, secret in enumerate(secrets):
            await rotate("lambda" if i % 2 else "builtin", secret)
        return kinds
    finally:
        await invoker.close()


if __name__ == "__main__":
    sys.exit(main())
