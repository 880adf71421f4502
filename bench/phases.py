"""The measurements: GetSecretValue vs the ceiling and vs bench-only baselines,
PutSecretValue, ListSecrets.

Each phase talks to already running servers (bench/cli.py starts and stops them) and returns
plain dicts, ready for the report and the JSON file.
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench import wrk
from bench.ceiling_app import BODY_SIZE
from bench.processes import ServerProcess
from bench.signing import Client, SignedRequest, Signer, new_token

GET_SECRET = "bench/get"
PUT_PREFIX = "bench/put/"
LIST_PREFIX = "bench/list/"
# Requests are signed in batches just before they are sent: a signature is good for 5 minutes.
SIGN_BATCH = 5_000
WRITE_CONNECTIONS = 16
LIST_PAGE_SIZE = 100

Log = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    connections: tuple[int, ...]
    duration_s: float
    rounds: int
    warmup_s: float
    puts: int
    put_secrets: int
    list_secrets: int
    list_requests: int


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def summarise(runs: Sequence[wrk.WrkResult]) -> dict[str, Any]:
    """Median of the valid runs; runs with errors are counted, never averaged in."""
    valid = [r for r in runs if r.valid]
    return {
        "runs": len(runs),
        "valid_runs": len(valid),
        "errors": sum(r.error_count for r in runs),
        "rps": _median([r.rps for r in valid]),
        "p50_ms": _median([r.p50_ms for r in valid]),
        "p99_ms": _median([r.p99_ms for r in valid]),
        "p99_recorded_ms": _median(
            [r.p99_recorded_ms for r in valid if r.p99_recorded_ms is not None]
        ),
        "rps_all": [round(r.rps, 1) for r in valid],
        "p99_all": [r.p99_ms for r in valid],
    }


def _secret_value(length: int) -> str:
    # JSON-looking, and nothing that JSON would escape, so the wire size is predictable.
    prefix = '{"username":"bench","password":"'
    suffix = '"}'
    filler = secrets.token_hex(max(1, length))
    return prefix + filler[: max(1, length - len(prefix) - len(suffix))] + suffix


# -- GetSecretValue -------------------------------------------------------------------------------


def prepare_get(client: Client, log: Log) -> None:
    """One secret whose GetSecretValue answer is as large as the ceiling's body (1 KiB)."""
    client.call("CreateSecret", {"Name": GET_SECRET, "SecretString": _secret_value(64)})
    status, body = client.send(client.signer.sign("GetSecretValue", {"SecretId": GET_SECRET}))
    if status != 200:
        raise RuntimeError(f"GetSecretValue failed: {status} {body[:300]!r}")
    overhead = len(body) - 64
    client.call(
        "PutSecretValue",
        {"SecretId": GET_SECRET, "SecretString": _secret_value(BODY_SIZE - overhead)},
    )
    size = len(client.send(client.signer.sign("GetSecretValue", {"SecretId": GET_SECRET}))[1])
    log(f"  GetSecretValue answer: {size} bytes (ceiling: {BODY_SIZE})")


def _signed_get(client: Client) -> SignedRequest:
    """A freshly signed GetSecretValue, checked once before wrk replays it."""
    request = client.signer.sign("GetSecretValue", {"SecretId": GET_SECRET})
    status, body = client.send(request)
    if status != 200:
        raise RuntimeError(f"signed GetSecretValue was refused: {status} {body[:300]!r}")
    return request


Target = tuple[ServerProcess, Callable[[], SignedRequest]]


Runs = dict[str, dict[int, list[wrk.WrkResult]]]
# Per run: the server's CPU time (all its processes) per request answered, in microseconds.
CpuPerRequest = dict[str, dict[int, list[float | None]]]


def interleaved(
    binary: str, targets: Mapping[str, Target], opts: Options, log: Log
) -> tuple[Runs, CpuPerRequest]:
    """GetSecretValue-style fixed runs on every target, interleaved: each round runs every
    target at every connection count, and which target goes first rotates between rounds (with
    two targets: they alternate), so a slow patch of a noisy machine hits them all alike.

    Each server's CPU time is read around each run too: CPU per request hardly depends on what
    else the machine is doing, where throughput does."""
    names = list(targets)
    log(f"  warm-up: {opts.warmup_s:g} s per server at 16 connections")
    for name, (server, request) in targets.items():
        wrk.run_fixed(
            binary,
            server.endpoint,
            request(),
            connections=16,
            duration_s=opts.warmup_s,
            label=f"warmup-{name}",
        )
    runs: Runs = {name: {c: [] for c in opts.connections} for name in names}
    cpu: CpuPerRequest = {name: {c: [] for c in opts.connections} for name in names}
    width = max(len(name) for name in names)
    for round_no in range(opts.rounds):
        shift = round_no % len(names)
        order = names[shift:] + names[:shift]
        for connections in opts.connections:
            for name in order:
                server, request = targets[name]
                signed = request()
                cpu_before = server.cpu_seconds()
                result = wrk.run_fixed(
                    binary,
                    server.endpoint,
                    signed,
                    connections=connections,
                    duration_s=opts.duration_s,
                    label=f"{name}-c{connections}-r{round_no + 1}",
                )
                used = server.cpu_seconds() - cpu_before
                per_request = used / result.requests * 1e6 if result.requests else None
                runs[name][connections].append(result)
                cpu[name][connections].append(per_request)
                cpu_text = "" if per_request is None else f"  server CPU {per_request:6.1f} us/req"
                log(
                    f"  round {round_no + 1} {name:{width}} c={connections:<3} {_brief(result)}"
                    + cpu_text
                )
    return runs, cpu


def measure_get(
    binary: str,
    secretsd: ServerProcess,
    ceiling: ServerProcess,
    client: Client,
    opts: Options,
    log: Log,
) -> dict[str, Any]:
    def request() -> SignedRequest:
        return _signed_get(client)

    runs, _ = interleaved(
        binary, {"secretsd": (secretsd, request), "ceiling": (ceiling, request)}, opts, log
    )
    summary: dict[str, Any] = {}
    for connections in opts.connections:
        ours = summarise(runs["secretsd"][connections])
        ceil = summarise(runs["ceiling"][connections])
        ratio = ours["rps"] / ceil["rps"] if ours["rps"] and ceil["rps"] else None
        summary[str(connections)] = {"secretsd": ours, "ceiling": ceil, "ratio": ratio}
    return {
        "summary": summary,
        "runs": [r.to_dict() for by_conn in runs.values() for rs in by_conn.values() for r in rs],
    }


# -- GetSecretValue: secretsd vs bench-only baselines (bench/variant_server.py) -----------------


def slowdown(real_rps: float | None, baseline_rps: float | None) -> float | None:
    """Extra time per request of the real server over the baseline: baseline/real - 1.

    Stricter than the throughput lost (1 - real/baseline): 15% extra time is 13% fewer req/s."""
    if not real_rps or not baseline_rps:
        return None
    return baseline_rps / real_rps - 1


def measure_compare(
    binary: str,
    servers: Mapping[str, ServerProcess],
    clients: Mapping[str, Client],
    opts: Options,
    log: Log,
) -> dict[str, Any]:
    """GetSecretValue on the real server ("secretsd", first in `servers`) and on each variant,
    interleaved; every server has its own data dir and its own copy of the secret."""
    for name, client in clients.items():
        log(f"  {name}:")
        prepare_get(client, log)

    def request_for(client: Client) -> Callable[[], SignedRequest]:
        return lambda: _signed_get(client)

    targets = {name: (server, request_for(clients[name])) for name, server in servers.items()}
    runs, cpu = interleaved(binary, targets, opts, log)
    real, *variants = servers
    summary: dict[str, Any] = {}
    for connections in opts.connections:
        row: dict[str, Any] = {}
        valid_cpu: dict[str, list[float | None]] = {}
        for name in servers:
            results = runs[name][connections]
            valid_cpu[name] = [
                c if r.valid else None for r, c in zip(results, cpu[name][connections], strict=True)
            ]
            row[name] = summarise(results)
            row[name]["cpu_us"] = _median([c for c in valid_cpu[name] if c is not None])
            row[name]["cpu_us_all"] = [None if c is None else round(c, 1) for c in valid_cpu[name]]
        for variant in variants:
            # Rounds are paired: same round, neighbouring slots. Their spread shows the noise.
            paired = [
                slowdown(a.rps, b.rps)
                for a, b in zip(runs[real][connections], runs[variant][connections], strict=True)
                if a.valid and b.valid
            ]
            row[f"slowdown_vs_{variant}"] = slowdown(row[real]["rps"], row[variant]["rps"])
            row[f"paired_slowdowns_vs_{variant}"] = [round(x, 4) for x in paired if x is not None]
            # CPU per request: the real server's extra CPU over the baseline's (same formula,
            # since req/s on a CPU-bound server is 1 / CPU per request).
            cpu_paired = [
                slowdown(b, a)
                for a, b in zip(valid_cpu[real], valid_cpu[variant], strict=True)
                if a is not None and b is not None
            ]
            row[f"cpu_slowdown_vs_{variant}"] = slowdown(
                row[variant]["cpu_us"], row[real]["cpu_us"]
            )
            row[f"paired_cpu_slowdowns_vs_{variant}"] = [
                round(x, 4) for x in cpu_paired if x is not None
            ]
        summary[str(connections)] = row
    return {
        "real": real,
        "variants": variants,
        "summary": summary,
        "runs": [r.to_dict() for by_conn in runs.values() for rs in by_conn.values() for r in rs],
    }


def _brief(r: wrk.WrkResult) -> str:
    text = f"{r.rps:9.0f} req/s  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms"
    if r.p99_recorded_ms is not None:
        text += f" (recorded {r.p99_recorded_ms:.2f})"
    if not r.valid:
        text += f"  ERRORS {r.error_count} ({r.errors}) {r.first_error[:120]}"
    return text


# -- PutSecretValue -------------------------------------------------------------------------------


def _put_requests(
    signer: Signer, count: int, secrets_count: int, start: int
) -> Iterator[SignedRequest]:
    for i in range(start, start + count):
        yield signer.sign(
            "PutSecretValue",
            {
                "SecretId": f"{PUT_PREFIX}{i % secrets_count:04d}",
                "SecretString": _secret_value(96),
                "ClientRequestToken": new_token(),
            },
        )


def measure_put(
    binary: str, server: ServerProcess, client: Client, opts: Options, log: Log
) -> dict[str, Any]:
    signer = client.signer
    for i in range(opts.put_secrets):
        client.call("CreateSecret", {"Name": f"{PUT_PREFIX}{i:04d}", "SecretString": "initial"})
    warmup = min(500, opts.puts // 10)
    if warmup >= 2:
        wrk.run_replay(
            binary,
            server.endpoint,
            list(_put_requests(signer, warmup, opts.put_secrets, 0)),
            connections=WRITE_CONNECTIONS,
            max_duration_s=60,
            label="put-warmup",
        )
    started = time.perf_counter()
    requests = list(_put_requests(signer, opts.puts, opts.put_secrets, warmup))
    signing_s = time.perf_counter() - started
    log(
        f"  signed {len(requests)} PutSecretValue requests in {signing_s:.1f} s"
        f" ({opts.put_secrets} secrets, round-robin)"
    )
    result = wrk.run_replay(
        binary,
        server.endpoint,
        requests,
        connections=WRITE_CONNECTIONS,
        max_duration_s=opts.duration_s,
        label=f"put-c{WRITE_CONNECTIONS}",
    )
    log(f"  PutSecretValue c={WRITE_CONNECTIONS} {_brief(result)}  ({result.ok} answered 200)")
    return {
        "connections": WRITE_CONNECTIONS,
        "secrets": opts.put_secrets,
        "prepared": len(requests),
        "writes": result.ok,
        "exhausted": result.sent == len(requests),
        "result": result.to_dict(),
    }


# -- ListSecrets ----------------------------------------------------------------------------------


def _create_requests(signer: Signer, start: int, count: int) -> Iterator[SignedRequest]:
    for i in range(start, start + count):
        yield signer.sign(
            "CreateSecret",
            {
                "Name": f"{LIST_PREFIX}{i:05d}",
                "SecretString": _secret_value(48),
                "ClientRequestToken": new_token(),
            },
        )


def _create_many(
    binary: str, server: ServerProcess, signer: Signer, count: int, log: Log
) -> dict[str, Any]:
    created = 0
    active_s = 0.0
    errors = 0
    latencies: list[float] = []
    for start in range(0, count, SIGN_BATCH):
        batch = list(_create_requests(signer, start, min(SIGN_BATCH, count - start)))
        result = wrk.run_replay(
            binary,
            server.endpoint,
            batch,
            connections=WRITE_CONNECTIONS,
            max_duration_s=240,
            label="create",
        )
        created += result.ok or 0
        errors += result.error_count
        active_s += result.duration_s
        latencies.append(result.p99_ms)
        if not result.valid:
            log(f"  CreateSecret errors: {result.error_count}: {result.first_error[:200]}")
    rate = created / active_s if active_s else 0.0
    log(f"  created {created} secrets at {rate:.0f}/s (c={WRITE_CONNECTIONS}), {errors} errors")
    return {"created": created, "errors": errors, "rate": rate, "p99_ms_batches": latencies}


def _percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]

    return {
        "count": len(ordered),
        "p50_ms": pick(50),
        "p99_ms": pick(99),
        "max_ms": ordered[-1],
        "mean_ms": statistics.fmean(ordered),
    }


def _timed(client: Client, request: SignedRequest, times: int) -> dict[str, float]:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        status, body = client.send(request)
        samples.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"ListSecrets failed: {status} {body[:300]!r}")
    return _percentiles(samples)


def measure_list(
    binary: str, server: ServerProcess, client: Client, opts: Options, log: Log
) -> dict[str, Any]:
    signer = client.signer
    creation = _create_many(binary, server, signer, opts.list_secrets, log)

    # Walk every page once: counts what is stored and finds a NextToken half-way down.
    tokens: list[str] = []
    walk_ms: list[float] = []
    stored = 0
    params: dict[str, Any] = {"MaxResults": LIST_PAGE_SIZE}
    while True:
        started = time.perf_counter()
        page = client.call("ListSecrets", params)
        walk_ms.append((time.perf_counter() - started) * 1000)
        stored += len(page.get("SecretList", []))
        token = page.get("NextToken")
        if not token:
            break
        tokens.append(token)
        params = {"MaxResults": LIST_PAGE_SIZE, "NextToken": token}
    deep_token = tokens[len(tokens) // 2] if tokens else None
    log(
        f"  {stored} secrets stored; full listing: {len(walk_ms)} pages in {sum(walk_ms) / 1000:.2f} s"
    )

    first = signer.sign("ListSecrets", {"MaxResults": LIST_PAGE_SIZE})
    deep_params: dict[str, Any] = {"MaxResults": LIST_PAGE_SIZE}
    if deep_token is not None:
        deep_params["NextToken"] = deep_token
    deep = signer.sign("ListSecrets", deep_params)
    sequential = {
        "first": _timed(client, first, opts.list_requests),
        "deep": _timed(client, deep, opts.list_requests),
    }
    for name, stats in sequential.items():
        log(
            f"  ListSecrets {name:5} page, 1 client, {stats['count']:.0f} requests:"
            f" p50 {stats['p50_ms']:.2f} ms  p99 {stats['p99_ms']:.2f} ms"
        )
    concurrent = {}
    for name, params in (("first", {"MaxResults": LIST_PAGE_SIZE}), ("deep", deep_params)):
        result = wrk.run_fixed(
            binary,
            server.endpoint,
            signer.sign("ListSecrets", params),
            connections=16,
            duration_s=opts.duration_s,
            label=f"list-{name}-c16",
        )
        concurrent[name] = result.to_dict()
        log(f"  ListSecrets {name:5} page c=16 {_brief(result)}")
    return {
        "stored": stored,
        "page_size": LIST_PAGE_SIZE,
        "deep_page": len(tokens) // 2 + 2 if tokens else 1,
        "creation": creation,
        "walk": {"pages": len(walk_ms), "seconds": sum(walk_ms) / 1000, **_percentiles(walk_ms)},
        "sequential": sequential,
        "concurrent_c16": concurrent,
    }
