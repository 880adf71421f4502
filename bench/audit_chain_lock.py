"""How the audit trail's per-chain head row serializes writers (PostgreSQL).

    .venv/bin/python bench/audit_chain_lock.py [--database postgresql://.../fresh_db]
        [--seconds 5] [--processes 1,2,4]

Each process appends batches of 40 GetSecretValue records to the same chain (one account and
region) as fast as it can, the way a worker's audit writer commits its buffer, and reports
records/s and the batch transaction's latency. Without --database a private PostgreSQL cluster
is started from the installed binaries (the tests' helper).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
for extra in (str(_REPO), str(_REPO / "tests")):
    if extra not in sys.path:
        sys.path.insert(0, extra)

BATCH = 40


def _writer(url: str, seconds: float, out: Any) -> None:
    from secretsd.audit.chain import DigestSigner
    from secretsd.audit.record import CallFacts, api_call_record
    from secretsd.audit.redact import Redactor
    from secretsd.audit.writer import AuditOptions, AuditWriter
    from secretsd.auth.identity import Identity
    from secretsd.clock import SystemClock
    from secretsd.protocol.model import load_service_model
    from secretsd.store.database import Database

    redactor = Redactor(load_service_model("secretsmanager"))
    arn = "arn:aws:iam::123456789012:user/admin"
    who = Identity("123456789012", arn, arn, "User", "AIDAEXAMPLE", "user", "admin", "AKIAX")
    facts = CallFacts(
        service="secretsmanager",
        operation="GetSecretValue",
        request_id="bench",
        time_ms=int(time.time() * 1000),
        status=200,
        region="us-east-1",
        source_ip="127.0.0.1",
        user_agent="Boto3/1.44.8",
        identity=who,
        request={"SecretId": "bench"},
    )
    db = Database(url)
    writer = AuditWriter(
        db, db, SystemClock(), lambda: DigestSigner(1, b"k" * 32), {}, AuditOptions()
    )
    records, latencies = 0, []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        batch = [api_call_record(facts, redactor) for _ in range(BATCH)]
        started = time.perf_counter()
        with db.transaction(write=True) as tx:
            writer._append(tx, batch)
        latencies.append(time.perf_counter() - started)
        records += BATCH
    latencies.sort()
    out.put((records, latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="a fresh PostgreSQL database [a private cluster]")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", default="1,2,4")
    args = parser.parse_args()
    from secretsd.store.database import Database

    cluster = None
    url = args.database
    if url is None:
        from support.postgres import PostgresServer

        cluster = PostgresServer.from_environment()
        url = cluster.create_database("audit_chain_lock")
    try:
        Database(url).migrate()
        for count in (int(x) for x in args.processes.split(",")):
            queue: Any = mp.Queue()
            procs = [
                mp.Process(target=_writer, args=(url, args.seconds, queue)) for _ in range(count)
            ]
            for p in procs:
                p.start()
            results = [queue.get() for _ in procs]
            for p in procs:
                p.join()
            rate = sum(r[0] for r in results) / args.seconds
            p50 = max(r[1] for r in results) * 1000
            p99 = max(r[2] for r in results) * 1000
            print(
                f"{count} writer process(es), one chain: {rate:,.0f} records/s;"
                f" batch of {BATCH} commits in p50 {p50:.2f} ms, p99 {p99:.2f} ms"
            )
    finally:
        if cluster is not None:
            cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
