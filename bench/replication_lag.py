"""Replica lag under write load: `.venv/bin/python bench/replication_lag.py [--seconds 20]`.

Starts `secretsd serve` (SQLite, or `--database postgresql://...`) on 127.0.0.1, creates secrets
replicated to two other regions, and has writer threads PutSecretValue to them for a while.
Per acknowledged write, the lag is the time from the acknowledgement until a reader polling the
replica (every 5 ms) sees that VersionId as AWSCURRENT. Prints p50/p90/p99/max per region.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

_REPO = str(Path(__file__).resolve().parent.parent)
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from bench.processes import ServerProcess  # noqa: E402
from bench.signing import read_credentials  # noqa: E402

PRIMARY, REPLICAS = "us-east-1", ("us-east-2", "eu-west-1")
POLL_SECONDS = 0.005


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--secrets", type=int, default=8)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="secretsd-repl-bench-") as tmp:
        data = Path(tmp)
        argv = [sys.executable, "-m", "secretsd", "serve", "--port", "0", "--data-dir", str(data)]
        argv += ["--workers", str(args.workers), "--log-level", "warning"]
        if args.database:
            argv += ["--database", args.database]
        server = ServerProcess("secretsd", argv, log_path=data / "server.log").start()
        try:
            return run(server.endpoint, data / "admin.credentials", args)
        finally:
            server.stop()


def run(endpoint: str, credentials_path: Path, args: argparse.Namespace) -> int:
    creds = read_credentials(credentials_path)
    config = Config(retries={"max_attempts": 0}, max_pool_connections=64)

    def client(region: str) -> Any:
        return boto3.client(
            "secretsmanager",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=creds.access_key,
            aws_secret_access_key=creds.secret_key,
            config=config,
        )

    primary = client(PRIMARY)
    names = [f"lag-{i}-{uuid.uuid4().hex[:8]}" for i in range(args.secrets)]
    for name in names:
        primary.create_secret(
            Name=name, SecretString="0", AddReplicaRegions=[{"Region": r} for r in REPLICAS]
        )
    acked: dict[str, float] = {}  # version id -> ack time
    lock = threading.Lock()
    stop = threading.Event()
    lags: dict[str, list[float]] = {r: [] for r in REPLICAS}
    writes = 0

    def writer(index: int) -> None:
        nonlocal writes
        sm = client(PRIMARY)
        n = 0
        while not stop.is_set():
            name = names[(index + n * args.writers) % len(names)]
            n += 1
            token = str(uuid.uuid4())
            sm.put_secret_value(SecretId=name, SecretString=str(n), ClientRequestToken=token)
            with lock:
                acked[token] = time.monotonic()
                writes += 1

    def reader(region: str, name: str) -> None:
        sm = client(region)
        seen: set[str] = set()
        while not stop.is_set():
            stages = sm.describe_secret(SecretId=name).get("VersionIdsToStages", {})
            now = time.monotonic()
            with lock:
                for version_id in stages:
                    if version_id in acked and version_id not in seen:
                        seen.add(version_id)
                        lags[region].append(max(0.0, now - acked[version_id]))
            time.sleep(POLL_SECONDS)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(args.writers)]
    threads += [threading.Thread(target=reader, args=(r, n)) for r in REPLICAS for n in names]
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    # Let the last writes arrive before the readers stop.
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join(timeout=30)

    print(
        f"{writes} acknowledged writes in {args.seconds:.0f} s ({writes / args.seconds:.0f}/s),"
        f" {args.secrets} secrets x {len(REPLICAS)} replica regions, {args.writers} writers,"
        f" {args.workers} worker(s), {'PostgreSQL' if args.database else 'SQLite'}"
    )
    print("| region | seen | p50 ms | p90 ms | p99 ms | max ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for region, values in lags.items():
        if not values:
            print(f"| {region} | 0 | - | - | - | - |")
            continue
        ms = [v * 1000 for v in values]
        print(
            f"| {region} | {len(ms)} | {statistics.median(ms):.1f} | {percentile(ms, 90):.1f}"
            f" | {percentile(ms, 99):.1f} | {max(ms):.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
