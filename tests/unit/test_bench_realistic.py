"""The pure parts of issue 12's realistic benchmark (bench/realistic.py): the Zipf key sampler,
the 90/10 mix, request pre-signing (no two requests alike), the py-spy summary and the verdicts."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import pyspy, realistic, wrk  # noqa: E402
from bench.signing import INVOCATION_ID_HEADER, Signer, sign_each, signature  # noqa: E402
from bench.zipf import ZipfSampler, mix, top_share  # noqa: E402

SIGNER = Signer("127.0.0.1:8566", Credentials("AKIAEXAMPLEEXAMPLE12", "x" * 40))


def test_zipf_draws_follow_the_distribution() -> None:
    sampler = ZipfSampler(10_000, 1.1, seed=1)
    draws = sampler.samples(200_000)
    assert min(draws) >= 0 and max(draws) < 10_000
    counts = Counter(draws)
    # The hottest keys are drawn in proportion to 1/k^s (within sampling noise) ...
    for rank in (0, 1, 2, 9):
        expected = sampler.probability(rank) * len(draws)
        assert abs(counts[rank] - expected) < 5 * expected**0.5 + 10, rank
    assert counts[0] > counts[1] > counts[2] > counts[9]
    # ... and the probabilities add up: the top 1% of keys take about 65% of the reads.
    assert sum(sampler.probability(r) for r in range(10_000)) == pytest.approx(1.0)
    top_1pct = sum(sampler.probability(r) for r in range(100))
    assert top_1pct == pytest.approx(0.648, abs=0.001)
    assert abs(top_share(draws, 100) - top_1pct) < 0.01
    assert len(counts) > 3_000  # a long tail is read too


def test_zipf_is_repeatable_and_checks_its_arguments() -> None:
    assert ZipfSampler(100, seed=5).samples(50) == ZipfSampler(100, seed=5).samples(50)
    assert ZipfSampler(100, seed=5).samples(50) != ZipfSampler(100, seed=6).samples(50)
    assert ZipfSampler(1).samples(5) == [0] * 5
    with pytest.raises(ValueError):
        ZipfSampler(0)
    with pytest.raises(ValueError):
        ZipfSampler(10, s=0)


def test_mix_has_the_asked_shares_in_a_random_order() -> None:
    slots = mix(900, 100, seed=3)
    assert len(slots) == 1000 and sum(slots) == 100
    assert slots != sorted(slots) and slots[:100] != [True] * 100


def test_every_presigned_request_differs_even_for_the_same_key_in_the_same_second() -> None:
    calls = [("GetSecretValue", {"SecretId": "hot"})] * 300
    requests = list(sign_each(SIGNER, calls))
    assert len({r.raw() for r in requests}) == 300
    assert len({signature(r) for r in requests}) == 300
    # The difference is a signed header, as boto3 sends it: not an unsigned decoration.
    for request in requests[:5]:
        auth = dict(request.headers)["Authorization"]
        assert INVOCATION_ID_HEADER in auth.split("SignedHeaders=", 1)[1].split(",", 1)[0]
    # Without it, the same call signed twice in one second is byte for byte the same request.
    twice = [SIGNER.sign("GetSecretValue", {"SecretId": "hot"}) for _ in range(2)]
    dates = {dict(r.headers)["X-Amz-Date"] for r in twice}
    if len(dates) == 1:
        assert twice[0].raw() == twice[1].raw()


def test_mixed_load_reads_zipf_keys_and_writes_with_own_tokens() -> None:
    sampler = ZipfSampler(1000, 1.1, seed=2)
    calls = list(realistic.mixed_calls(sampler, random.Random(4), 2000))
    writes = [p for op, p in calls if op == "PutSecretValue"]
    reads = [p for op, p in calls if op == "GetSecretValue"]
    assert len(writes) == 200 and len(reads) == 1800
    assert len({p["ClientRequestToken"] for p in writes}) == 200
    assert len({p["SecretString"] for p in writes}) == 200
    hottest = realistic.seeding.seed_name(realistic.APP_PREFIX, 0)
    assert Counter(p["SecretId"] for p in reads).most_common(1)[0][0] == hottest
    assert {p["SecretId"] for _, p in calls} <= {
        realistic.seeding.seed_name(realistic.APP_PREFIX, i) for i in range(1000)
    }


RAW = """\
<module> (secretsd/__main__.py:1);run (uvicorn/server.py:10);handle (secretsd/protocol/asgi.py:5);get_secret_value (secretsd/service/secrets.py:9);one (secretsd/store/database.py:3);execute (psycopg/cursor.py:7);wait (psycopg/waiting.py:2) 60
<module> (secretsd/__main__.py:1);run (uvicorn/server.py:10);handle (secretsd/protocol/asgi.py:5);verify (secretsd/auth/sigv4.py:4) 30
<module> (secretsd/__main__.py:1);run (uvicorn/server.py:10);run_forever (uvloop/__init__.py:3) 10
_bootstrap (threading.py:1);run (threading.py:2);_run (secretsd/store/notifications.py:3);notifies (psycopg/connection.py:4) 100
"""


def test_py_spy_summary_finds_database_waits_under_the_handler() -> None:
    summary = pyspy.summarise(pyspy.parse(RAW))
    assert summary["samples"] == 100
    assert summary["other_thread_samples"] == 100  # the NOTIFY listener's thread
    assert summary["in_db_driver"] == pytest.approx(0.6)
    assert summary["in_store"] == pytest.approx(0.6)
    assert summary["in_secretsd"] == pytest.approx(0.9)
    assert summary["loop_idle"] == pytest.approx(0.1)
    assert summary["top_self"][0] == ("wait (psycopg/waiting.py)", pytest.approx(0.6))
    assert "60%" in pyspy.text(summary)


def _result(backend: str, get_ratio: float, p99: float, put_rps: float) -> dict[str, object]:
    def versus(ratio: float, rps: float = 1000.0, p99_ms: float = 5.0) -> dict[str, object]:
        return {
            "ratio": ratio,
            "secretsd": {"rps": rps, "p99_ms": p99_ms},
        }

    def listing(stored: int, first: float, deep: float) -> dict[str, object]:
        return {
            "stored": stored,
            "first": {"sequential": {"p50_ms": first}},
            "deep": {"sequential": {"p50_ms": deep}},
        }

    return {
        "database": backend,
        "get": [{"connections": 64, **versus(get_ratio, p99_ms=p99)}],
        "mixed": versus(0.41),
        "put": versus(0.1, rps=put_rps),
        "list_small": listing(10_000, 2.0, 2.1),
        "list_large": listing(1_000_000, 2.3, 2.6),
        "peak_rss_kib": {"secretsd": {1: 120 * 1024}},
    }


def test_verdicts_use_each_backends_targets() -> None:
    sqlite = {t.name: t.verdict for t in realistic.targets(_result("sqlite", 0.45, 9.0, 1500))}
    postgres = {
        t.name: t.verdict for t in realistic.targets(_result("postgresql", 0.45, 9.0, 1500))
    }
    assert sqlite["GetSecretValue c=64 >= 50% of ceiling"] == "FAIL"
    assert postgres["GetSecretValue c=64 >= 35% of ceiling"] == "PASS"
    assert sqlite["PutSecretValue c=16 >= 2,000 writes/s"] == "FAIL"
    assert postgres["PutSecretValue c=16 >= 1,000 writes/s"] == "PASS"
    assert sqlite["GetSecretValue c=64 p99 < 10 ms"] == "PASS"
    assert sqlite["mixed 90/10 c=64 >= 40% of ceiling"] == "PASS"
    # Each page against the same page at 10k: first 1.15x, deep 2.6/2.1 = 1.24x, over 20%.
    name = "ListSecrets page with 1,000,000 within 20% of 10,000 (1 client p50)"
    assert sqlite[name] == "FAIL"
    assert sqlite["peak RSS < 150 MiB per worker"] == "PASS"


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs a CPU other than the worker's")
def test_the_database_is_pinned_off_the_workers_cpu() -> None:
    """The throw-away PostgreSQL cluster's postmaster and its children leave CPU 0 to the
    worker (a process tree stands in for it: a parent and the child it forked)."""
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.run(['sleep', '30'])"]
    )
    try:
        for _ in range(200):
            children = realistic._children(parent.pid)
            if children:
                break
            time.sleep(0.01)
        assert len(children) == 1
        realistic._pin_off_worker_cpu(parent.pid)
        for pid in (parent.pid, children[0]):
            assert 0 not in os.sched_getaffinity(pid)
            assert os.sched_getaffinity(pid) == set(range(1, os.cpu_count() or 2))
    finally:
        parent.kill()
        parent.wait()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _wrk_correct(recorded: dict[int, int], expected: int) -> dict[int, int]:
    """wrk 4's stats_correct, transcribed from its stats.c."""
    data = dict(recorded)
    top = max(recorded, default=0)
    for n in range(expected * 2, top + 1):
        count = recorded.get(n, 0)
        m = n - expected
        while count and m > expected:
            data[m] = data.get(m, 0) + count
            m -= expected
    return data


@settings(max_examples=200, deadline=None)
@given(
    recorded=st.dictionaries(
        st.integers(min_value=1, max_value=5_000), st.integers(min_value=1, max_value=50)
    ),
    expected=st.integers(min_value=1, max_value=900),
)
def test_wrks_coordinated_omission_correction_is_undone_exactly(
    recorded: dict[int, int], expected: int
) -> None:
    corrected = _wrk_correct(recorded, expected)
    assert wrk.recorded_latencies(corrected.items(), expected) == recorded


def test_the_recorded_p99_leaves_out_the_samples_wrk_adds_after_a_stall() -> None:
    # 995 requests of 1 ms and 5 of 100 ms, one connection at 1 ms intervals: wrk adds 98
    # samples below each slow one, and its p99 lands far above what 99% of requests saw.
    recorded = {1_000: 995, 100_000: 5}
    corrected = _wrk_correct(recorded, 1_000)
    assert wrk.percentile_us(corrected, 99) > 50_000
    assert wrk.percentile_us(wrk.recorded_latencies(corrected.items(), 1_000), 99) == 1_000
