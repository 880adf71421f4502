"""Profile secretsd's PutSecretValue path in-process, without HTTP, at 16 concurrent requests.

    .venv/bin/python bench/profile_put.py [--requests 3000] [--top 0]

Like bench/profile_get.py: the real app (secretsd.app.build_app) on a throw-away SQLite data dir,
called as an ASGI app, here by 16 tasks at once (so SQLite's group commit can share fsyncs between
them, see docs/adr/0006-sqlite-group-commit.md). Prints the wall rate, the CPU time per write (this
process's, the flusher thread's included: other load on the machine hardly moves it) and how many
commits each fsync covered. Pin it (`taskset -c 0`) to see what one core does.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_REPO = str(Path(__file__).resolve().parent.parent)
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from bench.profile_get import HOST, _call  # noqa: E402
from bench.signing import SignedRequest, Signer, new_token, read_credentials  # noqa: E402
from secretsd.app import build_app  # noqa: E402
from secretsd.bootstrap import initialise  # noqa: E402
from secretsd.clock import SystemClock  # noqa: E402
from secretsd.settings import Settings  # noqa: E402
from secretsd.store.database import Database  # noqa: E402

CONNECTIONS = 16
SECRETS = 50


async def _run(app: Any, requests: list[SignedRequest]) -> None:
    audit = getattr(app, "_audit", None)

    async def client(first: int) -> None:
        for i in range(first, len(requests), CONNECTIONS):
            status, body = await _call(app, requests[i])
            if status != 200:
                raise SystemExit(f"PutSecretValue failed: {status} {body!r}")

    async def audit_writer() -> None:
        # No lifespan here, so no audit writer task: commit the buffer as it would.
        while audit is not None:
            await asyncio.sleep(0.05)
            audit.flush()

    writer = asyncio.ensure_future(audit_writer())
    await asyncio.gather(*(client(k) for k in range(CONNECTIONS)))
    writer.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3_000)
    parser.add_argument("--top", type=int, default=0, help="cProfile's top N (0: timing only)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="secretsd-profile-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        db = Database(settings.effective_database_url)
        initialise(settings, db, SystemClock())
        db.close()
        app = build_app(settings)
        signer = Signer(HOST, read_credentials(settings.admin_credentials_path))

        def puts(count: int) -> list[SignedRequest]:
            return [
                signer.sign(
                    "PutSecretValue",
                    {
                        "SecretId": f"bench/put-{i % SECRETS}",
                        "SecretString": '{"username":"app","password":"' + new_token() + '"}',
                        "ClientRequestToken": new_token(),
                    },
                )
                for i in range(count)
            ]

        loop = asyncio.new_event_loop()
        try:
            for i in range(SECRETS):
                create = {
                    "Name": f"bench/put-{i}",
                    "SecretString": "x",
                    "ClientRequestToken": new_token(),
                }
                status, body = loop.run_until_complete(
                    _call(app, signer.sign("CreateSecret", create))
                )
                if status != 200:
                    raise SystemExit(f"CreateSecret failed: {status} {body!r}")
            loop.run_until_complete(_run(app, puts(500)))  # warm caches
            gc.collect()
            gc.freeze()
            group = getattr(app._routes["secretsmanager."].service._db, "group_commit", None)
            fsyncs = group.fsyncs if group is not None else 0
            requests = puts(args.requests)
            started, cpu_started = time.perf_counter(), time.process_time()
            loop.run_until_complete(_run(app, requests))
            wall = time.perf_counter() - started
            cpu = (time.process_time() - cpu_started) / args.requests
            shared = (
                f", {args.requests / max(1, group.fsyncs - fsyncs):.1f} commits per fsync"
                if group is not None
                else ""
            )
            print(
                f"PutSecretValue in-process, {CONNECTIONS} at once: {args.requests / wall:,.0f}/s"
                f" wall, {cpu * 1e6:.0f} us CPU per write{shared}; load average"
                f" {os.getloadavg()[0]:.1f}"
            )
            if args.top <= 0:
                return 0
            profiler = cProfile.Profile()
            profiler.enable()
            loop.run_until_complete(_run(app, puts(args.requests)))
            profiler.disable()
        finally:
            loop.close()
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(key).print_stats(args.top)
        print(f"\n===== by {key} ({args.requests} requests; times are totals) =====")
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
