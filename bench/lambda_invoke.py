"""What invoking a warm Lambda function costs: `.venv/bin/python bench/lambda_invoke.py`.

Starts `secretsd serve` (SQLite, or `--database postgresql://...`), deploys a function whose
handler returns its event, and measures, after warming up:
- `invoke_as_service`: what a rotation step pays (the FunctionInvoker of service/invocation.py,
  built in this process on the server's database, as a worker builds it), including the resource
  policy check;
- `Invoke`: the same through the Lambda API with boto3 (HTTP, SigV4, authorization included).
Prints p50/p90/p99/max in milliseconds. Issue 8's budget: at most 50 ms per rotation step at p99.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_REPO = str(Path(__file__).resolve().parent.parent)
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from bench.processes import ServerProcess  # noqa: E402
from bench.signing import read_credentials  # noqa: E402

NO_RETRIES = Config(retries={"max_attempts": 0})
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(label: str, samples: list[float]) -> str:
    return (
        f"{label:<18} n={len(samples):<5} p50={percentile(samples, 50):7.2f}"
        f" p90={percentile(samples, 90):7.2f} p99={percentile(samples, 99):7.2f}"
        f" max={max(samples):7.2f} ms"
    )


@contextlib.contextmanager
def temporary_server(prefix: str, database: str | None) -> Iterator[tuple[str, Path]]:
    """`secretsd serve` on a fresh data dir (SQLite, or `database`): its endpoint and data dir."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        data = Path(tmp)
        argv = [sys.executable, "-m", "secretsd", "serve", "--port", "0", "--data-dir", str(data)]
        argv += ["--log-level", "warning"]
        if database:
            argv += ["--database", database]
        server = ServerProcess("secretsd", argv, log_path=data / "server.log").start()
        try:
            yield server.endpoint, data
        finally:
            server.stop()


def deploy_function(
    endpoint: str, data: Path, name: str, handler_source: str
) -> tuple[boto3.session.Session, str]:
    """The administrator's session, and the ARN of a function `name` (module app.py holding
    `handler_source`) that secretsmanager.amazonaws.com may invoke."""
    creds = read_credentials(data / "admin.credentials")
    session = boto3.session.Session(
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        region_name="us-east-1",
    )
    iam = session.client("iam", endpoint_url=endpoint, config=NO_RETRIES)
    lam = session.client("lambda", endpoint_url=endpoint, config=NO_RETRIES)
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("app.py", handler_source)
    arn: str = lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="app.handler",
        Code={"ZipFile": package.getvalue()},
    )["FunctionArn"]
    lam.add_permission(
        FunctionName=name,
        StatementId="rotation",
        Action="lambda:InvokeFunction",
        Principal="secretsmanager.amazonaws.com",
    )
    return session, arn


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invocations", type=int, default=500)
    parser.add_argument("--database", default=None)
    args = parser.parse_args()
    with temporary_server("secretsd-lambda-bench-", args.database) as (endpoint, data):
        return run(endpoint, data, args)


def run(endpoint: str, data: Path, args: argparse.Namespace) -> int:
    session, arn = deploy_function(
        endpoint, data, "bench-fn", "def handler(event, context):\n    return event\n"
    )
    lam = session.client("lambda", endpoint_url=endpoint, config=NO_RETRIES)
    account = arn.split(":")[4]
    payload = json.dumps(
        {
            "SecretId": f"arn:aws:secretsmanager:us-east-1:{account}:secret:x-AbCdEf",
            "ClientRequestToken": "t" * 36,
            "Step": "createSecret",
        }
    ).encode()

    started = time.perf_counter()
    lam.invoke(FunctionName="bench-fn", Payload=payload)
    cold_api = (time.perf_counter() - started) * 1000
    api: list[float] = []
    for _ in range(20):
        lam.invoke(FunctionName="bench-fn", Payload=payload)
    for _ in range(args.invocations):
        started = time.perf_counter()
        lam.invoke(FunctionName="bench-fn", Payload=payload)
        api.append((time.perf_counter() - started) * 1000)

    cold_service, service = asyncio.run(_service(data, endpoint, arn, account, payload, args))
    print(f"cold start: Invoke {cold_api:.0f} ms, invoke_as_service {cold_service:.0f} ms")
    print(summary("invoke_as_service", service))
    print(summary("Invoke (boto3)", api))
    budget = percentile(service, 99)
    print(
        f"rotation step overhead p99 {budget:.2f} ms (budget 50 ms): {'OK' if budget <= 50 else 'OVER'}"
    )
    return 0 if budget <= 50 else 1


async def _service(
    data: Path, endpoint: str, arn: str, account: str, payload: bytes, args: argparse.Namespace
) -> tuple[float, list[float]]:
    from secretsd.app import build_app
    from secretsd.settings import Settings

    host, port = endpoint.removeprefix("http://").rsplit(":", 1)
    settings = Settings(
        data_dir=data,
        host=host,
        port=int(port),
        database_url=args.database or "",
    )
    invoker: Any = build_app(settings).function_invoker
    source = f"arn:aws:secretsmanager:us-east-1:{account}:secret:x-AbCdEf"

    async def once() -> float:
        started = time.perf_counter()
        result = await invoker.invoke_as_service(
            arn,
            payload,
            principal="secretsmanager.amazonaws.com",
            source_account=account,
            source_arn=source,
        )
        elapsed = (time.perf_counter() - started) * 1000
        assert result.function_error is None, result.payload
        return elapsed

    try:
        cold = await once()
        for _ in range(20):
            await once()
        return cold, [await once() for _ in range(args.invocations)]
    finally:
        await invoker.close()


if __name__ == "__main__":
    sys.exit(main())
