"""Token buckets: burst, refill, shared (combined) quotas, per account and region, overrides."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretsd.protocol.throttle import DEFAULT_QUOTAS, QuotaConfigError, Throttle, quotas


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_defaults_are_awss_table() -> None:
    q = quotas()
    assert q["GetSecretValue"].rate == 10_000 and q["GetSecretValue"] is q["DescribeSecret"]
    assert q["PutSecretValue"] is q["UpdateSecretVersionStage"] and q["PutSecretValue"].rate == 50
    assert q["BatchGetSecretValue"].rate == 100 and q["ListSecrets"].rate == 100
    assert q["CreateSecret"].rate == 50 and q["CreateSecret"] is not q["DeleteSecret"]
    assert sum(len(ops) for ops, _ in DEFAULT_QUOTAS) == len(q)


def test_burst_then_refill_per_account_region_and_combined_quota() -> None:
    clock = FakeClock()
    throttle = Throttle(quotas("GetSecretValue=4"), clock)
    # DescribeSecret shares GetSecretValue's quota: 4 between them.
    results = [throttle.allow("111", "us-east-1", op) for op in ["GetSecretValue"] * 3]
    results.append(throttle.allow("111", "us-east-1", "DescribeSecret"))
    assert results == [True] * 4
    assert not throttle.allow("111", "us-east-1", "GetSecretValue")
    assert not throttle.allow("111", "us-east-1", "DescribeSecret")
    # Other accounts, other regions and other quotas have buckets of their own.
    assert throttle.allow("222", "us-east-1", "GetSecretValue")
    assert throttle.allow("111", "eu-west-1", "GetSecretValue")
    assert throttle.allow("111", "us-east-1", "ListSecrets")
    # Operations outside the table are never throttled.
    assert all(throttle.allow("111", "us-east-1", "ListResourcePolicies") for _ in range(1000))
    clock.now += 0.25  # one token at 4/s
    assert throttle.allow("111", "us-east-1", "GetSecretValue")
    assert not throttle.allow("111", "us-east-1", "GetSecretValue")
    clock.now += 60  # refills to the burst, not beyond
    assert sum(throttle.allow("111", "us-east-1", "GetSecretValue") for _ in range(10)) == 4


def test_workers_share_the_rate() -> None:
    q = quotas("CreateSecret=10", workers=4)
    assert q["CreateSecret"].rate == 2.5 and q["CreateSecret"].burst == 2.5
    assert quotas("CreateSecret=1", workers=4)["CreateSecret"].burst == 1.0


@pytest.mark.parametrize(
    "bad", ["CreateSecret", "NoSuchOp=3", "CreateSecret=0", "CreateSecret=-1", "CreateSecret=x"]
)
def test_bad_overrides_are_refused(bad: str) -> None:
    with pytest.raises(QuotaConfigError):
        quotas(bad)


@given(
    rate=st.floats(min_value=0.5, max_value=200),
    gaps=st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=300),
)
def test_never_more_than_burst_plus_rate_times_elapsed(rate: float, gaps: list[float]) -> None:
    clock = FakeClock()
    throttle = Throttle(quotas(f"CreateSecret={rate}"), clock)
    start = clock.now
    allowed = 0
    for gap in gaps:
        clock.now += gap
        allowed += throttle.allow("1", "r", "CreateSecret")
    burst = max(1.0, rate)
    assert allowed <= burst + rate * (clock.now - start) + 1e-6
    # And a caller that waits long enough is always let through.
    clock.now += 1 / rate + 1
    assert throttle.allow("1", "r", "CreateSecret")
