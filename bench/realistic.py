"""`bench/run.py --realistic`: issue 12's benchmark, a load that looks like real use.

On each backend (SQLite, then PostgreSQL on a throw-away cluster), with one secretsd worker and
the bare ASGI ceiling, both pinned to CPU 0 (wrk on CPU 1), running side by side. The throw-away
PostgreSQL cluster is pinned off CPU 0 too (with wrk): in a deployment the database has cores, or
a machine, of its own, and left to float its backends (about 0.5 ms of CPU per
PutSecretValue) took turns on the worker's core:

- 10,000 secrets seeded in-process (bench/seeding.py), then GetSecretValue at 1, 16 and 64
  connections, keys drawn from a Zipf distribution (s = 1.1), every request signed on its own
  and sent once (bench/lua/replay.lua);
- a mixed 90/10 load at 64 connections: GetSecretValue as above and PutSecretValue (own
  ClientRequestToken) to keys drawn uniformly;
- PutSecretValue alone at 16 connections;
- ListSecrets (MaxResults=100) first page and a deep page half-way down, with 10,000 secrets and
  again after seeding up to --list-large (200,000 by default, 1,000,000 with --million);

secretsd and the ceiling get the same pre-signed request files, alternately, in each round. Then
the peak RSS of the worker (VmHWM) and PASS/FAIL against issue 12's targets. `--py-spy DIR`
samples the worker (each backend) with py-spy during an extra GetSecretValue run at 64 connections.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import environment, phases, pyspy, report, seeding, wrk
from bench.processes import ServerProcess
from bench.signing import Client, SignedRequest, Signer, new_token, read_credentials, sign_each
from bench.zipf import ZipfSampler, mix

REPO = Path(__file__).resolve().parent.parent
BACKENDS = ("sqlite", "postgresql")
APP_PREFIX = "bench/app/"
LIST_PAGE = 100
MIXED_CONNECTIONS = 64
PUT_CONNECTIONS = 16
LIST_CONNECTIONS = 16
TARGET_CONNECTIONS = 64
# Issue 12's targets.
GET_RATIO = {"sqlite": 0.50, "postgresql": 0.35}
GET_P99_MS = 10.0
MIXED_RATIO = 0.40
PUT_WPS = {"sqlite": 2000.0, "postgresql": 1000.0}
LIST_WITHIN = 0.20
RSS_MIB = 150.0

Log = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    secrets: int
    list_large: int
    zipf_s: float
    connections: tuple[int, ...]
    rounds: int
    duration_s: float
    list_requests: int
    pin: bool
    max_requests: int = 60_000
    parts: tuple[str, ...] = ("reads", "writes", "list")
    seed_processes: int = 1


def _log(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py --realistic",
        description="Issue 12's realistic load: Zipf GetSecretValue, 90/10 mixed, "
        "PutSecretValue, ListSecrets at 10k and 200k/1M secrets, vs the ceiling, on SQLite "
        "and PostgreSQL, one pinned worker. See docs/benchmarks.md.",
    )
    parser.add_argument("--backends", default="sqlite,postgresql", help="[sqlite,postgresql]")
    parser.add_argument("--quick", action="store_true", help="everything small (~1 min/backend)")
    parser.add_argument("--secrets", type=int, help="secrets read and written [10000; quick 1000]")
    parser.add_argument(
        "--list-large", type=int, help="secrets for the large listing [200000; quick 10000]"
    )
    parser.add_argument(
        "--million", action="store_true", help="the large listing with 1,000,000 secrets"
    )
    parser.add_argument("--zipf-s", type=float, default=1.1, help="Zipf exponent [1.1]")
    parser.add_argument("--rounds", type=int, help="interleaved rounds [2; quick 1]")
    parser.add_argument("--duration", type=float, help="target seconds per run [8; quick 2]")
    parser.add_argument("--list-requests", type=int, help="1-client requests per page [300]")
    parser.add_argument(
        "--only", default="reads,writes,list", help="parts: reads,writes,list [all of them]"
    )
    parser.add_argument("--database", help="postgresql://... of an empty database [own cluster]")
    parser.add_argument(
        "--py-spy", type=Path, help="py-spy GetSecretValue c=64 on each backend, raw profiles here"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not taskset the processes")
    parser.add_argument(
        "--seed-processes",
        type=int,
        help="PostgreSQL: processes seeding the large listing [CPUs + 1]; SQLite always 1",
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--data-root", type=Path, help="where data dirs go [/tmp]")
    parser.add_argument("--keep-data", action="store_true")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    args = parser.parse_args(argv)
    args.only = tuple(x.strip() for x in args.only.split(",") if x.strip())
    if not args.only or any(x not in ("reads", "writes", "list") for x in args.only):
        parser.error("--only takes reads, writes, list")
    args.backends = tuple(x.strip() for x in args.backends.split(",") if x.strip())
    if not args.backends or any(b not in BACKENDS for b in args.backends):
        parser.error(f"backends are {', '.join(BACKENDS)}")
    quick = args.quick
    secrets_count = args.secrets or (1_000 if quick else 10_000)
    large = 1_000_000 if args.million else (args.list_large or (10_000 if quick else 200_000))
    if large <= secrets_count:
        parser.error("--list-large must exceed --secrets")
    args.plan = Plan(
        secrets=secrets_count,
        list_large=large,
        zipf_s=args.zipf_s,
        connections=(1, 16, 64),
        rounds=args.rounds or (1 if quick else 2),
        duration_s=args.duration or (2.0 if quick else 8.0),
        list_requests=args.list_requests or (100 if quick else 300),
        pin=not args.no_pin and (os.cpu_count() or 1) >= 2,
        seed_processes=args.seed_processes or (os.cpu_count() or 1) + 1,
        max_requests=12_000 if quick else 60_000,
        parts=args.only,
    )
    return args


# -- pure parts: what gets signed -----------------------------------------------------------------


def get_calls(sampler: ZipfSampler, count: int) -> Iterator[tuple[str, dict[str, Any]]]:
    for index in sampler.samples(count):
        yield "GetSecretValue", {"SecretId": seeding.seed_name(APP_PREFIX, index)}


def put_call(rng: random.Random, secrets_count: int) -> tuple[str, dict[str, Any]]:
    return "PutSecretValue", {
        "SecretId": seeding.seed_name(APP_PREFIX, rng.randrange(secrets_count)),
        "SecretString": '{"username":"app","password":"' + new_token() + '"}',
        "ClientRequestToken": new_token(),
    }


def mixed_calls(
    sampler: ZipfSampler, rng: random.Random, count: int, write_share: float = 0.10
) -> Iterator[tuple[str, dict[str, Any]]]:
    writes = round(count * write_share)
    reads = iter(get_calls(sampler, count - writes))
    for is_write in mix(count - writes, writes, seed=rng.randrange(1 << 30)):
        yield put_call(rng, sampler.n) if is_write else next(reads)


# -- the runs -------------------------------------------------------------------------------------


@dataclass
class Stack:
    binary: str
    secretsd: ServerProcess
    ceiling: ServerProcess
    client: Client
    plan: Plan
    log: Log
    ceiling_rate: float = 0.0
    # The ceiling's last rate at each connection count: how many copies of a file it gets.
    ceiling_rates: dict[int, float] = field(default_factory=dict)

    @property
    def wrk_cpus(self) -> str | None:
        return "1" if self.plan.pin else None

    def replay(
        self, server: ServerProcess, requests: list[SignedRequest], connections: int, label: str
    ) -> wrk.WrkResult:
        return wrk.run_replay(
            self.binary,
            server.endpoint,
            requests,
            connections=connections,
            max_duration_s=self.plan.duration_s * 4 + 5,
            label=label,
            cpus=self.wrk_cpus,
        )

    def sign(self, calls: Iterator[tuple[str, dict[str, Any]]]) -> list[SignedRequest]:
        return list(sign_each(self.client.signer, calls))


def _size(rate: float, plan: Plan, factor: float = 1.0, least: int | None = None) -> int:
    if least is None:
        least = plan.max_requests // 12  # 1,000 (quick) or 5,000: no run of a fraction of a second
    return max(least, min(plan.max_requests, round(rate * plan.duration_s * factor)))


def _versus(
    stack: Stack,
    name: str,
    connections: int,
    make: Callable[[int], list[SignedRequest]],
    count: int,
) -> dict[str, Any]:
    """`rounds` interleaved runs of secretsd and the ceiling on the same freshly signed file.

    The ceiling answers an order of magnitude faster, and a run of a fraction of a second is
    mostly connection set-up; it checks no signature, so it gets the same file several times
    over (`ceiling_repeat`, sized from the ceiling's own warm-up rate) to run for about as long.
    """
    runs: dict[str, list[wrk.WrkResult]] = {"secretsd": [], "ceiling": []}
    cpu: dict[str, list[float]] = {"secretsd": [], "ceiling": []}
    for round_no in range(stack.plan.rounds):
        requests = make(count)
        expected = stack.ceiling_rates.get(
            connections, stack.ceiling_rate * (0.3 if connections == 1 else 1.0)
        )
        repeat = max(
            1,
            min(
                stack.plan.max_requests * 2 // len(requests),
                round(expected * stack.plan.duration_s / len(requests)),
            ),
        )
        order = ["secretsd", "ceiling"] if round_no % 2 == 0 else ["ceiling", "secretsd"]
        for who in order:
            server = stack.secretsd if who == "secretsd" else stack.ceiling
            sent = requests if who == "secretsd" else requests * repeat
            before = server.cpu_seconds()
            result = stack.replay(server, sent, connections, f"{name}-{who}-c{connections}")
            used = server.cpu_seconds() - before
            runs[who].append(result)
            if result.valid and result.ok:
                cpu[who].append(used / result.ok * 1e6)
            if who == "ceiling" and result.valid:
                stack.ceiling_rates[connections] = result.rps
            stack.log(
                f"  {name:18} c={connections:<3} r{round_no + 1} {who:8} {phases._brief(result)}"
                f"  ({result.ok} ok of {len(sent)}, {result.duration_s:.1f} s)"
            )
    ours = phases.summarise(runs["secretsd"])
    ceil = phases.summarise(runs["ceiling"])
    ratio = ours["rps"] / ceil["rps"] if ours["rps"] and ceil["rps"] else None
    # CPU per answered request, the server's whole process group (not wrk's, not PostgreSQL's):
    # less at the mercy of this shared host than req/s, so runs on a noisy day still compare.
    for who, summary in (("secretsd", ours), ("ceiling", ceil)):
        summary["cpu_us"] = phases._median(cpu[who])
        summary["cpu_us_all"] = [round(c, 1) for c in cpu[who]]
    return {
        "workload": name,
        "connections": connections,
        "requests_per_run": count,
        "secretsd": ours,
        "ceiling": ceil,
        "ratio": ratio,
        "runs": [r.to_dict() for rs in runs.values() for r in rs],
    }


def _warm_rate(stack: Stack, requests: list[SignedRequest], connections: int) -> float:
    """Warm both servers up; secretsd's rate sizes the measured runs (about --duration each),
    the ceiling's how often the ceiling gets each file."""
    result = stack.replay(stack.secretsd, requests, connections, "warmup")
    ceiling = stack.replay(stack.ceiling, requests * 4, connections, "warmup-ceiling")
    if not result.valid:
        raise RuntimeError(f"warm-up failed: {result.error_count} errors: {result.first_error}")
    stack.ceiling_rate = max(stack.ceiling_rate, ceiling.rps)
    return result.rps


def touch_all(stack: Stack, secrets_count: int) -> dict[str, Any]:
    """Read every secret once: a secret's first read of the day records LastAccessedDate (a
    write), which a steady-state measurement must not be made of."""
    calls = (
        ("GetSecretValue", {"SecretId": seeding.seed_name(APP_PREFIX, i)})
        for i in range(secrets_count)
    )
    result = stack.replay(stack.secretsd, stack.sign(calls), 16, "touch-all")
    if not result.valid:
        raise RuntimeError(f"first reads failed: {result.error_count}: {result.first_error}")
    stack.log(f"  first read of every secret (records LastAccessedDate): {phases._brief(result)}")
    return {"rps": result.rps, "p99_ms": result.p99_ms}


def measure_reads(stack: Stack, sampler: ZipfSampler) -> dict[str, Any]:
    plan = stack.plan
    rate = _warm_rate(
        stack, stack.sign(get_calls(sampler, 3_000 if plan.rounds > 1 else 1_500)), 16
    )
    stack.log(f"  warm-up: GetSecretValue ~{rate:,.0f}/s at c=16")
    out: dict[str, Any] = {"get": [], "warm_rate": rate}
    for connections in plan.connections:
        factor = 0.5 if connections == 1 else 1.0
        out["get"].append(
            _versus(
                stack,
                "GetSecretValue",
                connections,
                lambda n: stack.sign(get_calls(sampler, n)),
                _size(rate, plan, factor),
            )
        )
    return out


def measure_writes(stack: Stack, sampler: ZipfSampler, rate: float, seed: int) -> dict[str, Any]:
    """The mixed load and PutSecretValue alone. After these, recently written versions make
    their first reads write too (LastAccessedDate), so reads are measured before."""
    plan = stack.plan
    rng = random.Random(seed)
    out: dict[str, Any] = {}
    out["mixed"] = _versus(
        stack,
        "mixed 90/10",
        MIXED_CONNECTIONS,
        lambda n: stack.sign(mixed_calls(sampler, rng, n)),
        _size(rate, plan, 0.7),
    )
    put_rate = _warm_rate(
        stack, stack.sign(put_call(rng, sampler.n) for _ in range(500)), PUT_CONNECTIONS
    )
    out["put"] = _versus(
        stack,
        "PutSecretValue",
        PUT_CONNECTIONS,
        lambda n: stack.sign(put_call(rng, sampler.n) for _ in range(n)),
        _size(put_rate, plan),
    )
    return out


def _deep_token(client: Client, stored: int) -> tuple[str | None, int]:
    """Walk the listing to the page half-way down: its NextToken and its page number."""
    target = max(1, (stored // LIST_PAGE) // 2)
    params: dict[str, Any] = {"MaxResults": LIST_PAGE}
    token = None
    for _ in range(target):
        token = client.call("ListSecrets", params).get("NextToken")
        if not token:
            break
        params = {"MaxResults": LIST_PAGE, "NextToken": token}
    return token, target + 1


def _sequential(client: Client, requests: list[SignedRequest]) -> dict[str, float]:
    samples = []
    for request in requests:
        started = time.perf_counter()
        status, body = client.send(request)
        samples.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"ListSecrets failed: {status} {body[:300]!r}")
    return phases._percentiles(samples)


def measure_list(stack: Stack, stored: int) -> dict[str, Any]:
    plan = stack.plan
    started = time.perf_counter()
    token, page_no = _deep_token(stack.client, stored)
    walk_s = time.perf_counter() - started
    pages: dict[str, dict[str, Any]] = {"first": {"MaxResults": LIST_PAGE}}
    if token:
        pages["deep"] = {"MaxResults": LIST_PAGE, "NextToken": token}
    out: dict[str, Any] = {"stored": stored, "deep_page": page_no, "walk_s": walk_s}
    for name, params in pages.items():

        def calls(n: int, params: dict[str, Any] = params) -> Iterator[tuple[str, dict[str, Any]]]:
            return (("ListSecrets", params) for _ in range(n))

        _sequential(stack.client, stack.sign(calls(20)))  # warm-up
        seq = _sequential(stack.client, stack.sign(calls(plan.list_requests)))
        stack.log(
            f"  ListSecrets {name:5} page ({stored:,} secrets), 1 client:"
            f" p50 {seq['p50_ms']:.2f} ms  p99 {seq['p99_ms']:.2f} ms"
        )
        rate = 1000 / seq["p50_ms"] if seq["p50_ms"] else 100.0
        out[name] = {
            "sequential": seq,
            "c16": _versus(
                stack,
                f"ListSecrets {name}",
                LIST_CONNECTIONS,
                lambda n, calls=calls: stack.sign(calls(n)),  # type: ignore[misc]
                _size(rate, plan, 0.5, least=300),
            ),
        }
    return out


# -- one backend ----------------------------------------------------------------------------------


def measure_lists(
    stack: Stack, data_dir: Path, database: str | None, progress: Callable[[int, float], None]
) -> dict[str, Any]:
    """ListSecrets with --secrets stored, then seeded up to --list-large and again."""
    plan = stack.plan
    if not stack.ceiling_rate:  # --only list: no read warm-up has sized the ceiling's runs
        warm = stack.sign(("ListSecrets", {"MaxResults": LIST_PAGE}) for _ in range(500))
        stack.ceiling_rate = stack.replay(stack.ceiling, warm * 10, 16, "warmup-ceiling").rps
    out: dict[str, Any] = {"list_small": measure_list(stack, plan.secrets)}
    more = plan.list_large - plan.secrets
    # Several seeders only where the database takes several writers at once.
    processes = plan.seed_processes if database else 1
    seeded = seeding.seed_in_parallel(
        data_dir, database, APP_PREFIX, plan.secrets, more, processes=processes, progress=progress
    )
    stack.log(f"  seeded {seeded.created:,} more in {seeded.seconds:.1f} s ({seeded.rate:,.0f}/s)")
    out["seed_large"] = {"secrets": seeded.created, "seconds": seeded.seconds}
    out["list_large"] = measure_list(stack, plan.list_large)
    return out


def _pinned(argv: list[str], plan: Plan) -> list[str]:
    return ["taskset", "-c", "0", *argv] if plan.pin else argv


def _serving_pid(server: ServerProcess) -> int:
    pids = server.pids()
    return pids[-1] if len(pids) > 1 else pids[0]


def _profile(stack: Stack, sampler: ZipfSampler, out_dir: Path, backend: str) -> dict[str, Any]:
    py_spy = pyspy.find_py_spy(Path(sys.executable))
    if py_spy is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install -e '.[bench]'")
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"get-{backend}-c{TARGET_CONNECTIONS}.txt"
    requests = stack.sign(get_calls(sampler, stack.plan.max_requests))
    seconds = max(2, round(stack.plan.duration_s))
    proc = pyspy.start(py_spy, _serving_pid(stack.secretsd), seconds, raw)
    result = stack.replay(stack.secretsd, requests, TARGET_CONNECTIONS, "pyspy")
    _, err = proc.communicate(timeout=120)
    if proc.returncode != 0 or not raw.exists():
        raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
    summary = pyspy.summarise(pyspy.parse(raw.read_text()))
    stack.log(f"  under py-spy: {phases._brief(result)}\n" + pyspy.text(summary))
    return {"raw": str(raw), "result": result.to_dict(), **summary}


def run_backend(
    binary: str, backend: str, database: str | None, plan: Plan, root: Path, py_spy: Path | None
) -> dict[str, Any]:
    run_dir = root / backend
    data_dir = run_dir / "data"
    argv = [sys.executable, "-m", "secretsd", "serve", "--host", "127.0.0.1", "--port", "0"]
    argv += ["--data-dir", str(data_dir), "--workers", "1"]
    if database:
        argv += ["--database", database]
    ceiling_argv = [sys.executable, "-m", "bench.ceiling_server", "--port", "0", "--workers", "1"]
    result: dict[str, Any] = {"database": backend, "workers": 1, "pinned": plan.pin}
    root.mkdir(parents=True, exist_ok=True)
    result["fsync_ms_at_start"] = environment.fsync_ms(root)
    _log(f"\n=== realistic load on {backend}: 1 worker{' pinned to CPU 0' if plan.pin else ''} ===")
    with contextlib.ExitStack() as stack_cm:
        secretsd = stack_cm.enter_context(
            ServerProcess(
                "secretsd", _pinned(argv, plan), log_path=run_dir / "secretsd.log", cwd=REPO
            )
        )
        ceiling = stack_cm.enter_context(
            ServerProcess(
                "ceiling", _pinned(ceiling_argv, plan), log_path=run_dir / "ceiling.log", cwd=REPO
            )
        )
        client = Client(
            Signer(secretsd.host_header, read_credentials(data_dir / "admin.credentials"))
        )
        stack_cm.callback(client.close)
        stack = Stack(binary, secretsd, ceiling, client, plan, _log)

        def progress(done: int, seconds: float) -> None:
            if done % 50_000 == 0:
                _log(f"  seeded {done:,} in {seconds:.0f} s")

        seeded = seeding.seed(data_dir, database, APP_PREFIX, 0, plan.secrets, progress=progress)
        _log(
            f"  seeded {seeded.created:,} secrets in {seeded.seconds:.1f} s ({seeded.rate:,.0f}/s)"
        )
        result["seed_small"] = {"secrets": seeded.created, "seconds": seeded.seconds}
        sampler = ZipfSampler(plan.secrets, plan.zipf_s, seed=12)
        if "reads" in plan.parts or "writes" in plan.parts:
            result["first_reads"] = touch_all(stack, plan.secrets)
        if "reads" in plan.parts:
            result.update(measure_reads(stack, sampler))
            if py_spy is not None:
                result["profile"] = _profile(stack, sampler, py_spy, backend)
        if "writes" in plan.parts:
            rate = result.get("warm_rate") or _warm_rate(
                stack, stack.sign(get_calls(sampler, 1_500)), 16
            )
            result.update(measure_writes(stack, sampler, rate, seed=13))
        if "list" in plan.parts:
            result.update(measure_lists(stack, data_dir, database, progress))
        result["peak_rss_kib"] = {
            "secretsd": secretsd.peak_rss_kib(),
            "ceiling": ceiling.peak_rss_kib(),
        }
    result["loadavg_at_end"] = list(os.getloadavg())
    result["fsync_ms_at_end"] = environment.fsync_ms(root)
    return result


# -- verdicts and tables --------------------------------------------------------------------------


def _row(result: dict[str, Any], connections: int) -> dict[str, Any] | None:
    return next((r for r in result.get("get", []) if r["connections"] == connections), None)


def list_ratio(result: dict[str, Any], page: str) -> float | None:
    """Large-listing page p50 over the same page's p50 with 10k secrets (1 client)."""
    small = result.get("list_small", {}).get(page)
    large = result.get("list_large", {}).get(page)
    if not small or not large:
        return None
    base = small["sequential"]["p50_ms"]
    return large["sequential"]["p50_ms"] / base if base else None


def targets(result: dict[str, Any]) -> list[report.Target]:
    backend = result["database"]
    out = []
    row = _row(result, TARGET_CONNECTIONS)
    goal = GET_RATIO[backend]
    if row is None:
        out.append(report.Target(f"GetSecretValue c=64 >= {goal:.0%} of ceiling", "-", None))
        out.append(report.Target("GetSecretValue c=64 p99 < 10 ms", "-", None))
    else:
        ratio, p99 = row["ratio"], row["secretsd"]["p99_ms"]
        out.append(
            report.Target(
                f"GetSecretValue c=64 >= {goal:.0%} of ceiling",
                report._pct(ratio),
                ratio is not None and ratio >= goal,
            )
        )
        # Judged on wrk's figure, the stricter: it includes its coordinated-omission
        # correction, which the recorded one (each request's own latency) leaves out.
        recorded = row["secretsd"].get("p99_recorded_ms")
        out.append(
            report.Target(
                "GetSecretValue c=64 p99 < 10 ms",
                f"{report._ms(p99)} ms (recorded {report._ms(recorded)})",
                p99 is not None and p99 < GET_P99_MS,
            )
        )
    mixed = result.get("mixed")
    ratio = mixed["ratio"] if mixed else None
    out.append(
        report.Target(
            "mixed 90/10 c=64 >= 40% of ceiling",
            report._pct(ratio),
            None if mixed is None else (ratio is not None and ratio >= MIXED_RATIO),
        )
    )
    put = result.get("put")
    wps = PUT_WPS[backend]
    rps = put["secretsd"]["rps"] if put else None
    out.append(
        report.Target(
            f"PutSecretValue c=16 >= {wps:,.0f} writes/s",
            f"{report._num(rps)}/s",
            None if put is None else (rps is not None and rps >= wps),
        )
    )
    large = result.get("list_large", {}).get("stored")
    small = result.get("list_small", {}).get("stored", 10_000)
    ratios = [r for p in ("first", "deep") if (r := list_ratio(result, p)) is not None]
    worst = max(ratios) if ratios else None
    out.append(
        report.Target(
            f"ListSecrets page with {large:,} within 20% of {small:,} (1 client p50)"
            if large
            else "ListSecrets page with many secrets within 20% (1 client p50)",
            "-" if worst is None else f"{worst:.2f}x",
            None if worst is None else worst <= 1 + LIST_WITHIN,
        )
    )
    peaks = result.get("peak_rss_kib", {}).get("secretsd", {})
    peak = max(peaks.values()) / 1024 if peaks else None
    out.append(
        report.Target(
            "peak RSS < 150 MiB per worker",
            "-" if peak is None else f"{peak:.0f} MiB",
            None if peak is None else peak < RSS_MIB,
        )
    )
    return out


def _versus_entries(result: dict[str, Any]) -> list[dict[str, Any]]:
    versus = [*result.get("get", []), result.get("mixed"), result.get("put")]
    for key in ("list_small", "list_large"):
        for page in ("first", "deep"):
            if page in result.get(key, {}):
                entry = dict(result[key][page]["c16"])
                entry["workload"] = f"ListSecrets {page} ({result[key]['stored']:,})"
                versus.append(entry)
    return [v for v in versus if v is not None]


def _load_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for v in _versus_entries(result):
        ours, ceil = v["secretsd"], v["ceiling"]
        rows.append(
            [
                v["workload"],
                str(v["connections"]),
                report._rps(ours),
                report._ms(ours["p50_ms"]),
                report._ms(ours["p99_ms"]),
                report._ms(ours.get("p99_recorded_ms")),
                report._rps(ceil),
                report._ms(ceil["p99_ms"]),
                report._ms(ceil.get("p99_recorded_ms")),
                report._pct(v["ratio"]),
            ]
        )
    return rows


def _cpu_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for v in _versus_entries(result):
        ours, ceil = v["secretsd"].get("cpu_us"), v["ceiling"].get("cpu_us")
        rows.append(
            [
                v["workload"],
                str(v["connections"]),
                report._num(ours),
                report._num(ceil),
                report._pct(ceil / ours if ours and ceil else None),
            ]
        )
    return rows


CPU_HEADER = ["workload", "conns", "secretsd CPU us/req", "ceiling CPU us/req", "ceiling/secretsd"]


LOAD_HEADER = [
    "workload",
    "conns",
    "secretsd req/s",
    "p50 ms",
    "p99 ms",
    "recorded p99",
    "ceiling req/s",
    "ceiling p99 ms",
    "recorded p99",
    "ratio",
]
LIST_HEADER = ["secrets", "page", "1 client p50 ms", "p99 ms", "p50 vs same page, fewer secrets"]


def _list_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for key in ("list_small", "list_large"):
        listing = result.get(key)
        if not listing:
            continue
        for page in ("first", "deep"):
            if page not in listing:
                continue
            seq = listing[page]["sequential"]
            base = result["list_small"].get(page, result["list_small"]["first"])["sequential"][
                "p50_ms"
            ]
            label = "first" if page == "first" else f"deep (page {listing['deep_page']:,})"
            rows.append(
                [
                    f"{listing['stored']:,}",
                    label,
                    report._ms(seq["p50_ms"]),
                    report._ms(seq["p99_ms"]),
                    f"{seq['p50_ms'] / base:.2f}x" if base else "-",
                ]
            )
    return rows


def _facts(result: dict[str, Any]) -> list[str]:
    lines = []
    if "fsync_ms_at_start" in result:
        lines.append(
            f"Disk: 4 KiB write + fsync {result['fsync_ms_at_start']:.2f} ms (median) at the"
            f" start, {result.get('fsync_ms_at_end', float('nan')):.2f} ms at the end; load"
            f" average at the end {result.get('loadavg_at_end', [0])[0]:.1f}."
        )
    for key in ("seed_small", "seed_large"):
        s = result.get(key)
        if s:
            rate = s["secrets"] / s["seconds"] if s["seconds"] else 0
            lines.append(
                f"Seeded {s['secrets']:,} secrets in-process in {s['seconds']:.1f} s ({rate:,.0f}/s)."
            )
    peaks = result.get("peak_rss_kib", {})
    if peaks:
        ours = ", ".join(f"{v / 1024:.0f} MiB" for v in peaks["secretsd"].values())
        ceil = ", ".join(f"{v / 1024:.0f} MiB" for v in peaks["ceiling"].values())
        lines.append(f"Peak RSS (VmHWM): secretsd worker {ours}; ceiling {ceil}.")
    return lines


def text(result: dict[str, Any]) -> str:
    name = "PostgreSQL" if result["database"] == "postgresql" else "SQLite"
    parts = [
        f"realistic load, {name}, 1 worker",
        report._text_table(LOAD_HEADER, _load_rows(result)),
        report._text_table(CPU_HEADER, _cpu_rows(result)),
    ]
    if list_rows := _list_rows(result):
        parts.append(report._text_table(LIST_HEADER, list_rows))
    parts += _facts(result)
    rows = [[t.name, t.measured, t.verdict] for t in targets(result)]
    parts.append(report._text_table(["target (issue 12)", "measured", "verdict"], rows))
    if "profile" in result:
        parts.append(pyspy.text(result["profile"]))
    return "\n\n".join(parts)


def markdown(result: dict[str, Any], plan: Plan) -> str:
    name = "PostgreSQL" if result["database"] == "postgresql" else "SQLite"
    rows = [[t.name, t.measured, t.verdict] for t in targets(result)]
    parts = [
        f"### {name}, 1 worker{' pinned to CPU 0' if plan.pin else ''}",
        f"Medians of {plan.rounds} interleaved round(s); every request signed on its own and sent once.",
        report._md_table(LOAD_HEADER, _load_rows(result)),
        report._md_table(CPU_HEADER, _cpu_rows(result)),
        report._md_table(LIST_HEADER, _list_rows(result)) if _list_rows(result) else "",
        " ".join(_facts(result)),
        report._md_table(["target (issue 12)", "measured", "verdict"], rows),
    ]
    return "\n\n".join(parts) + "\n"


# -- entry point ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _postgres(url: str | None, *, pin: bool = False) -> Iterator[str]:
    if url:
        yield url
        return
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from support.postgres import PostgresServer  # the tests' throw-away cluster

    server = PostgresServer.from_environment()
    try:
        if pin and server.data_dir is not None:
            _pin_off_worker_cpu(int((server.data_dir / "postmaster.pid").read_text().split()[0]))
        yield server.create_database("bench")
    finally:
        server.close()


def _pin_off_worker_cpu(postmaster: int) -> None:
    """The postmaster and its children on every CPU but 0 (the worker's); backends it starts
    later inherit that."""
    cpus = set(range(1, os.cpu_count() or 2))
    for pid in [postmaster, *_children(postmaster)]:
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(pid, cpus)


def _children(parent: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = (Path("/proc") / entry / "stat").read_text()
        except OSError:
            continue
        # The fourth field, after the parenthesised command (which may hold spaces).
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            out.append(int(entry))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan: Plan = args.plan
    try:
        binary = wrk.ensure_wrk(install=not args.no_install)
    except (wrk.WrkMissing, OSError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if args.data_root:
        args.data_root.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="secretsd-realistic-", dir=args.data_root))
    env = environment.collect(REPO, root, wrk.wrk_version(binary))
    _log(
        f"bench: {env['cores']} cores ({env['cpu']}), git {env['git']} (secretsd from"
        f" {env['secretsd_source']}), data on"
        f" {env['data_filesystem']}, load average {env['loadavg_at_start'][0]:.2f}; plan {plan}"
    )
    started = time.monotonic()
    results = []
    try:
        for backend in args.backends:
            if backend == "sqlite":
                results.append(run_backend(binary, backend, None, plan, root, args.py_spy))
            else:
                with _postgres(args.database, pin=plan.pin) as url:
                    results.append(run_backend(binary, backend, url, plan, root, args.py_spy))
    finally:
        if args.keep_data:
            _log(f"bench: data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    elapsed = time.monotonic() - started
    _log(f"\n=== results ({elapsed:.0f} s) ===")
    for result in results:
        _log("\n" + text(result))
    if args.json:
        payload = {
            "environment": env,
            "plan": plan.__dict__,
            "elapsed_s": elapsed,
            "results": results,
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    if args.markdown:
        args.markdown.write_text("\n".join(markdown(r, plan) for r in results))
    return 0
