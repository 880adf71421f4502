"""Profile secretsd's GetSecretValue path in-process, without HTTP, with cProfile.

    .venv/bin/python bench/profile_get.py [--requests 20000] [--top 30]
        [--variant plaintext|no-authz] [--no-value-cache] [--top 0]

Builds the real app (secretsd.app.build_app) on a throw-away SQLite data dir and calls it as an
ASGI app with one pre-signed GetSecretValue request, so the figures are secretsd's own cost per
request: what uvicorn/httptools/uvloop add on top is what the ceiling measures. `--variant`
patches in one of bench/variant_server.py's baselines first; the CPU time per request (this
process's own, so other load on the machine hardly moves it) is then comparable with a run
without it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import pstats
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

_REPO = str(Path(__file__).resolve().parent.parent)
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from bench import variant_server  # noqa: E402
from bench.signing import SignedRequest, Signer, new_token, read_credentials  # noqa: E402
from secretsd.app import build_app  # noqa: E402
from secretsd.bootstrap import initialise  # noqa: E402
from secretsd.clock import SystemClock  # noqa: E402
from secretsd.settings import Settings  # noqa: E402
from secretsd.store.database import Database  # noqa: E402

HOST = "127.0.0.1:8566"

App = Any


def _scope(request: SignedRequest) -> dict[str, Any]:
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in request.all_headers().items()
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": request.path,
        "raw_path": request.path.encode(),
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8566),
    }


async def _call(app: App, request: SignedRequest) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": request.body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(request), receive, send)
    return sent[0]["status"], sent[1]["body"]


async def _loop(app: App, request: SignedRequest, count: int) -> None:
    scope = _scope(request)
    body_message = {"type": "http.request", "body": request.body, "more_body": False}

    async def receive() -> dict[str, Any]:
        return body_message

    async def send(message: dict[str, Any]) -> None:
        return None

    # No lifespan here, so the audit writer task is started here, as the server's lifespan does;
    # a server's loop also runs other tasks between requests (every 64 here), which lets the
    # writer commit its batch on its own schedule (every 50 ms) as it does when serving.
    audit = getattr(app, "_audit", None)
    writer = asyncio.create_task(audit.run()) if audit is not None else None
    try:
        for i in range(count):
            await app(scope, receive, send)
            if i % 64 == 63:
                await asyncio.sleep(0)
    finally:
        if writer is not None and audit is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            audit.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--top", type=int, default=30, help="0: no profile, only the timing")
    parser.add_argument("--variant", help="a bench/variant_server.py baseline, e.g. plaintext")
    parser.add_argument("--no-value-cache", action="store_true", help="value cache off")
    args = parser.parse_args(argv)
    if args.variant:
        variant_server.apply(variant_server.parse_variant(args.variant))
    with tempfile.TemporaryDirectory(prefix="secretsd-profile-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        if args.no_value_cache:
            settings = replace(settings, value_cache_seconds=0.0)
        db = Database(settings.effective_database_url)
        initialise(settings, db, SystemClock())
        db.close()
        app = build_app(settings)
        signer = Signer(HOST, read_credentials(settings.admin_credentials_path))
        create = signer.sign(
            "CreateSecret",
            {"Name": "bench/get", "SecretString": "x" * 700, "ClientRequestToken": new_token()},
        )
        get = signer.sign("GetSecretValue", {"SecretId": "bench/get"})
        loop = asyncio.new_event_loop()
        try:
            status, body = loop.run_until_complete(_call(app, create))
            if status != 200:
                raise SystemExit(f"CreateSecret failed: {status} {body!r}")
            # The first read records LastAccessedDate (a write); later ones only read.
            status, body = loop.run_until_complete(_call(app, get))
            if status != 200:
                raise SystemExit(f"GetSecretValue failed: {status} {body!r}")
            loop.run_until_complete(_loop(app, get, 2_000))  # warm caches
            # What the server's lifespan startup does (no lifespan here).
            gc.collect()
            gc.freeze()
            started = time.perf_counter()
            cpu_started = time.process_time()
            loop.run_until_complete(_loop(app, get, args.requests))
            cpu = (time.process_time() - cpu_started) / args.requests
            per_request = (time.perf_counter() - started) / args.requests
            print(
                f"GetSecretValue in-process ({args.variant or 'secretsd'},"
                f" value cache {'off' if args.no_value_cache else 'on'}):"
                f" {per_request * 1e6:.1f} us/request wall, {cpu * 1e6:.1f} us CPU"
                f" ({1 / per_request:,.0f}/s on one core, no HTTP), {len(body)}-byte answer"
            )
            if args.top <= 0:
                return 0
            profiler = cProfile.Profile()
            profiler.enable()
            loop.run_until_complete(_loop(app, get, args.requests))
            profiler.disable()
        finally:
            loop.close()
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.strip_dirs().sort_stats(key).print_stats(args.top)
        print(f"\n===== by {key} ({args.requests} requests; times are totals) =====")
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
