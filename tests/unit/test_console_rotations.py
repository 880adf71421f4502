"""The rotations dashboard's classification of ListSecrets entries (console/rotations.py)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from secretsd.console.rotations import DUE_WITHIN_SECONDS, STATUSES, classify, dashboard

NOW = 1_800_000_000.0
DAY = 86400.0


def entry(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "ARN": f"arn:aws:secretsmanager:us-east-1:1:secret:{name}-abcdef",
        **fields,
    }


def test_statuses() -> None:
    entries = [
        entry("off"),
        entry("off-pending-current", SecretVersionsToStages={"a": ["AWSCURRENT", "AWSPENDING"]}),
        entry(
            "later",
            RotationEnabled=True,
            NextRotationDate=NOW + 30 * DAY,
            LastRotatedDate=NOW - DAY,
            RotationRules={"AutomaticallyAfterDays": 30},
        ),
        entry("soon", RotationEnabled=True, NextRotationDate=NOW + 2 * DAY),
        entry("sooner", RotationEnabled=True, NextRotationDate=NOW + DAY),
        entry("edge", RotationEnabled=True, NextRotationDate=NOW + DUE_WITHIN_SECONDS),
        entry(
            "late",
            RotationEnabled=True,
            NextRotationDate=NOW - 1,
            RotationRules={"ScheduleExpression": "rate(4 hours)"},
        ),
        entry("no-date", RotationEnabled=True),
        entry(
            "stuck",
            RotationEnabled=True,
            NextRotationDate=NOW + 30 * DAY,
            SecretVersionsToStages={"new": ["AWSPENDING"], "old": ["AWSCURRENT"]},
        ),
        entry("manual-stuck", SecretVersionsToStages={"v2": ["AWSPENDING"], "v1": ["AWSCURRENT"]}),
    ]
    rows = dashboard(entries, NOW)
    assert [(r.name, r.status) for r in rows] == [
        ("stuck", "failed"),  # soonest next rotation first, none last
        ("manual-stuck", "failed"),
        ("late", "overdue"),
        ("sooner", "due"),
        ("soon", "due"),
        ("edge", "due"),
        ("later", "scheduled"),
        ("no-date", "scheduled"),
    ]
    by_name = {r.name: r for r in rows}
    assert by_name["stuck"].pending_versions == ("new",)
    assert not by_name["manual-stuck"].rotation_enabled
    assert by_name["later"].schedule == "every 30 days"
    assert by_name["later"].last_rotated == NOW - DAY
    assert by_name["late"].schedule == "rate(4 hours)"
    assert by_name["no-date"].next_rotation is None
    # A RotationFailed event as the last rotation event: failed, even with rotation now off.
    failed = dashboard(
        [entry("later", RotationEnabled=True, NextRotationDate=NOW + 30 * DAY), entry("off")],
        NOW,
        {entry("off")["ARN"]: NOW - DAY},
    )
    assert [(r.name, r.status, r.failed_at) for r in failed] == [
        ("off", "failed", NOW - DAY),
        ("later", "scheduled", None),
    ]
    # Malformed or missing fields never raise.
    assert classify(entry("odd", RotationEnabled="yes", NextRotationDate="soon"), NOW) is None
    odd = classify(entry("odd", RotationEnabled=True, NextRotationDate=True), NOW)
    assert odd is not None and odd.status == "scheduled" and odd.next_rotation is None


@given(
    st.booleans(),
    st.one_of(st.none(), st.floats(min_value=NOW - 100 * DAY, max_value=NOW + 100 * DAY)),
    st.dictionaries(
        st.sampled_from(["v1", "v2", "v3"]),
        st.lists(st.sampled_from(["AWSCURRENT", "AWSPENDING", "AWSPREVIOUS", "x"]), unique=True),
    ),
)
def test_classification_rules(
    enabled: bool, next_date: float | None, stages: dict[str, list[str]]
) -> None:
    fields: dict[str, Any] = {"RotationEnabled": enabled, "SecretVersionsToStages": stages}
    if next_date is not None:
        fields["NextRotationDate"] = next_date
    row = classify(entry("s", **fields), NOW)
    unfinished = any("AWSPENDING" in s and "AWSCURRENT" not in s for s in stages.values())
    if not enabled and not unfinished:
        assert row is None
        return
    assert row is not None and row.status in STATUSES
    if unfinished:
        assert row.status == "failed"
    elif next_date is not None and next_date < NOW:
        assert row.status == "overdue"
    elif next_date is not None and next_date - NOW <= DUE_WITHIN_SECONDS:
        assert row.status == "due"
    else:
        assert row.status == "scheduled"
