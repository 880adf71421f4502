"""`python bench/run.py`: start the servers, run the phases, print and save the figures."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from bench import environment, phases, report, variant_server, wrk
from bench.processes import ServerProcess
from bench.signing import Client, Signer, read_credentials

REPO = Path(__file__).resolve().parent.parent
PHASES = ("get", "put", "list")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas: {text!r}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive numbers: {text!r}")
    return values


def _variant_list(text: str) -> tuple[str, ...]:
    chosen = tuple(x.strip() for x in text.split(",") if x.strip())
    try:
        for name in chosen:
            variant_server.parse_variant(name)
    except variant_server.VariantError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if not chosen or len(set(chosen)) != len(chosen):
        raise argparse.ArgumentTypeError(f"expected distinct variants: {text!r}")
    return chosen


def _phase_list(text: str) -> tuple[str, ...]:
    chosen = tuple(x.strip() for x in text.split(",") if x.strip())
    unknown = [x for x in chosen if x not in PHASES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"phases are {', '.join(PHASES)}; got {text!r}")
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmark secretsd (GetSecretValue vs a bare-uvicorn ceiling, "
        "PutSecretValue, ListSecrets) on 127.0.0.1 with wrk. See docs/benchmarks.md.",
    )
    parser.add_argument(
        "--workers", type=_int_list, default=(1,), help="worker processes, e.g. 1 or 1,2 [1]"
    )
    parser.add_argument("--duration", type=float, help="seconds per wrk run [8; quick: 3]")
    parser.add_argument(
        "--rounds", type=int, help="interleaved GetSecretValue rounds [3; quick: 1]"
    )
    parser.add_argument(
        "--connections",
        type=_int_list,
        help="GetSecretValue [1,16,64; with --compare: 1,64]",
    )
    parser.add_argument(
        "--puts", type=int, help="PutSecretValue requests prepared [20000; quick: 8000]"
    )
    parser.add_argument(
        "--put-secrets", type=int, default=200, help="secrets the writes go to [200]"
    )
    parser.add_argument(
        "--secrets", type=int, help="secrets created for ListSecrets [10000; quick: 2000]"
    )
    parser.add_argument(
        "--list-requests", type=int, help="sequential ListSecrets per page [500; quick: 200]"
    )
    parser.add_argument(
        "--only",
        type=_phase_list,
        help="phases: get,put,list [all; with --compare: none besides the comparison]",
    )
    parser.add_argument(
        "--compare",
        type=_variant_list,
        help="GetSecretValue of secretsd vs bench-only baselines (bench/variant_server.py),"
        " interleaved: e.g. plaintext,no-authz (a variant may join patches: plaintext+no-authz)",
    )
    parser.add_argument(
        "--database", help="postgresql://... of a fresh, empty database [SQLite in the data dir]"
    )
    parser.add_argument(
        "--ceiling-busy-us",
        type=int,
        default=0,
        help="control run: the ceiling burns this much CPU per request (microseconds) [0]",
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run (about 1 minute)")
    parser.add_argument(
        "--no-value-cache",
        action="store_true",
        help="run secretsd with SECRETSD_VALUE_CACHE_SECONDS=0 (every read goes to the database)",
    )
    parser.add_argument("--json", type=Path, help="write all results to this file")
    parser.add_argument("--markdown", type=Path, help="write the results tables (Markdown) here")
    parser.add_argument(
        "--data-root", type=Path, help="where data dirs go (a real disk: fsync matters) [/tmp]"
    )
    parser.add_argument("--keep-data", action="store_true", help="keep data dirs and server logs")
    parser.add_argument(
        "--no-install", action="store_true", help="never apt-get install wrk, even as root"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.compare = args.compare or ()
    args.only = args.only if args.only is not None else (() if args.compare else PHASES)
    if args.connections is None:
        args.connections = (1, 64) if args.compare else (1, 16, 64)
    args.duration = args.duration or (3.0 if quick else 8.0)
    args.rounds = args.rounds or (1 if quick else 3)
    args.puts = args.puts or (8_000 if quick else 20_000)
    args.secrets = args.secrets or (2_000 if quick else 10_000)
    args.list_requests = args.list_requests or (200 if quick else 500)
    if args.database and args.compare:
        parser.error("--compare runs one server per variant on its own SQLite data dir")
    if args.database and len(args.workers) > 1:
        parser.error("--database needs a fresh database per run: give one --workers value")
    return args


def _log(message: str) -> None:
    print(message, flush=True)


def _secretsd(
    data_dir: Path,
    workers: int,
    database: str | None,
    value_cache: bool,
    variant: str | None = None,
) -> ServerProcess:
    module = "secretsd" if variant is None else "bench.variant_server"
    argv = [sys.executable, "-m", module, "serve", "--host", "127.0.0.1", "--port", "0"]
    argv += ["--data-dir", str(data_dir), "--workers", str(workers)]
    if database:
        argv += ["--database", database]
    env = {} if value_cache else {"SECRETSD_VALUE_CACHE_SECONDS": "0"}
    if variant is not None:
        env[variant_server.VARIANT_ENV] = variant
    name = "secretsd" if variant is None else variant
    return ServerProcess(name, argv, log_path=data_dir.parent / f"{name}.log", cwd=REPO, env=env)


def _check_variant_applied(server: ServerProcess, variant: str, workers: int) -> None:
    """Every process of a variant server (supervisor and workers) must report the patches."""
    expected = workers + 1 if workers > 1 else 1
    line = re.escape(variant_server.APPLIED_LINE.format(variant=variant, pid="PID"))
    pattern = re.compile(line.replace("PID", r"(\d+)"))
    pids = set(pattern.findall(server.log_path.read_text(errors="replace")))
    if len(pids) < expected:
        raise RuntimeError(
            f"variant {variant}: patches reported by {len(pids)} processes, expected {expected}"
            f" (see {server.log_path})"
        )


def run_compare(
    binary: str, workers: int, args: argparse.Namespace, opts: phases.Options, run_dir: Path
) -> dict[str, Any]:
    """The real server and one server per variant, each with its own data dir, all running
    side by side for the interleaved rounds."""
    value_cache = not args.no_value_cache
    names = ("secretsd", *args.compare)
    with contextlib.ExitStack() as stack:
        servers: dict[str, ServerProcess] = {}
        clients: dict[str, Client] = {}
        for name in names:
            variant = None if name == "secretsd" else name
            data_dir = run_dir / f"compare-{name}" / "data"
            server = stack.enter_context(_secretsd(data_dir, workers, None, value_cache, variant))
            client = Client(
                Signer(server.host_header, read_credentials(data_dir / "admin.credentials"))
            )
            stack.callback(client.close)
            servers[name], clients[name] = server, client
        result = phases.measure_compare(binary, servers, clients, opts, _log)
        # The warm-up sent 16 connections to each server, so every worker has answered by now.
        for name in args.compare:
            _check_variant_applied(servers[name], name, workers)
    result["value_cache"] = value_cache
    return result


def _ceiling(log_dir: Path, workers: int, busy_us: int) -> ServerProcess:
    argv = [sys.executable, "-m", "bench.ceiling_server", "--port", "0", "--workers", str(workers)]
    argv += ["--busy-us", str(busy_us)]
    return ServerProcess("ceiling", argv, log_path=log_dir / "ceiling.log", cwd=REPO)


def run_for_workers(
    binary: str, workers: int, args: argparse.Namespace, opts: phases.Options, root: Path
) -> dict[str, Any]:
    run_dir = root / f"workers-{workers}"
    data_dir = run_dir / "data"
    result: dict[str, Any] = {
        "workers": workers,
        "database": "postgresql" if args.database else "sqlite",
    }
    _log(f"\n=== workers={workers}: starting secretsd ({result['database']}) ===")
    if args.compare:
        _log(f"--- GetSecretValue: secretsd vs {', '.join(args.compare)} ---")
        result["compare"] = run_compare(binary, workers, args, opts, run_dir)
    if not args.only:
        result["loadavg_at_end"] = list(os.getloadavg())
        return result
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(
            _secretsd(data_dir, workers, args.database, not args.no_value_cache)
        )
        signer = Signer(server.host_header, read_credentials(data_dir / "admin.credentials"))
        client = Client(signer)
        stack.callback(client.close)
        if "get" in args.only:
            _log("--- GetSecretValue vs ceiling ---")
            phases.prepare_get(client, _log)
            with _ceiling(run_dir, workers, args.ceiling_busy_us) as ceiling:
                result["get"] = phases.measure_get(binary, server, ceiling, client, opts, _log)
        if "put" in args.only:
            _log("--- PutSecretValue ---")
            result["put"] = phases.measure_put(binary, server, client, opts, _log)
        if "list" in args.only:
            _log("--- ListSecrets ---")
            result["list"] = phases.measure_list(binary, server, client, opts, _log)
    result["loadavg_at_end"] = list(os.getloadavg())
    return result


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so the `with` blocks stop every server on the way out.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        binary = wrk.ensure_wrk(install=not args.no_install)
    except (wrk.WrkMissing, OSError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    opts = phases.Options(
        connections=args.connections,
        duration_s=args.duration,
        rounds=args.rounds,
        warmup_s=1.0 if args.quick else 2.0,
        puts=args.puts,
        put_secrets=args.put_secrets,
        list_secrets=args.secrets,
        list_requests=args.list_requests,
    )
    config = {
        "workers": list(args.workers),
        "connections": list(args.connections),
        "duration_s": args.duration,
        "rounds": args.rounds,
        "puts": args.puts,
        "put_secrets": args.put_secrets,
        "secrets": args.secrets,
        "list_requests": args.list_requests,
        "phases": list(args.only),
        "database": "postgresql" if args.database else "sqlite",
        "quick": args.quick,
        "ceiling_busy_us": args.ceiling_busy_us,
        "compare": list(args.compare),
        "value_cache": not args.no_value_cache,
    }
    if args.data_root:
        args.data_root.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="secretsd-bench-", dir=args.data_root))
    env = environment.collect(REPO, root, wrk.wrk_version(binary))
    _log(
        f"bench: {env['cores']} cores ({env['cpu']}), Python {env['python']},"
        f" {env['wrk']}, data on {env['data_filesystem']} under {root},"
        f" load average {env['loadavg_at_start'][0]:.2f}"
    )
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    try:
        for workers in args.workers:
            results.append(run_for_workers(binary, workers, args, opts, root))
    finally:
        if args.keep_data:
            _log(f"bench: data dirs and server logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    elapsed = time.monotonic() - started
    _log(f"\n=== results ({elapsed:.0f} s) ===")
    for result in results:
        _log("\n" + report.text(result, config))
    standard = any(r.get(p) for r in results for p in PHASES)
    readme = report.readme_table(results) if standard else ""
    if readme:
        _log("\nFor the README:\n\n" + readme)
    if args.json:
        payload = {"environment": env, "config": config, "elapsed_s": elapsed, "results": results}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        _log(f"\nbench: results written to {args.json}")
    if args.markdown:
        body = "\n".join(report.markdown(r, config) for r in results)
        args.markdown.write_text(body + "\n" + readme + "\n")
        _log(f"bench: Markdown tables written to {args.markdown}")
    return 0
