"""Rotation schedules (service/schedule.py): AWS's restrictions and the next window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretsd.errors import ServiceError
from secretsd.service.schedule import DAY_MS, HOUR_MS, next_window, parse_rules, rules_out

# 2001-01-01 .. 2099-12-31, in ms.
moments = st.integers(min_value=978_307_200_000, max_value=4_102_358_400_000)


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@given(after=moments, hours=st.integers(min_value=4, max_value=23))
def test_rate_in_hours_opens_on_the_next_boundary_of_the_day(after: int, hours: int) -> None:
    start, end = next_window(parse_rules({"ScheduleExpression": f"rate({hours} hours)"}), after)
    assert start > after and end - start == HOUR_MS  # default window: one hour
    opened = at(start)
    assert opened.minute == opened.second == 0 and opened.hour % hours == 0
    # No boundary of that schedule lies between `after` and the window found.
    previous = start - hours * HOUR_MS if opened.hour else start - (24 % hours or hours) * HOUR_MS
    assert previous <= after or at(previous).date() != opened.date()


@given(after=moments, days=st.integers(min_value=1, max_value=1000))
def test_days_count_from_the_day_of_the_last_rotation(after: int, days: int) -> None:
    for rules in ({"AutomaticallyAfterDays": days}, {"ScheduleExpression": f"rate({days} days)"}):
        if days > 999 and "ScheduleExpression" in rules:
            with pytest.raises(ServiceError):
                parse_rules(rules)
            continue
        start, end = next_window(parse_rules(rules), after)
        assert start == after - after % DAY_MS + days * DAY_MS
        assert end == start + DAY_MS  # to the end of that UTC day
        assert rules_out(rules)["AutomaticallyAfterDays"] == days


@given(
    after=moments,
    hour=st.integers(min_value=0, max_value=23),
    duration=st.integers(min_value=1, max_value=24),
)
def test_daily_cron_windows(after: int, hour: int, duration: int) -> None:
    rules = {"ScheduleExpression": f"cron(0 {hour} * * ? *)", "Duration": f"{duration}h"}
    if hour + duration > 24:
        with pytest.raises(ServiceError) as exc:
            parse_rules(rules)
        assert exc.value.code == "InvalidParameterException"
        return
    start, end = next_window(parse_rules(rules), after)
    assert 0 < start - after <= DAY_MS
    assert at(start).hour == hour and end - start == duration * HOUR_MS
    default_start, default_end = next_window(
        parse_rules({"ScheduleExpression": f"cron(0 {hour} * * ? *)"}), after
    )
    assert default_start == start and default_end % DAY_MS == 0  # to the end of the day


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # The first Monday (AWS day 2) of the month.
        ("cron(0 3 ? * 2#1 *)", datetime(2026, 12, 7, 4, tzinfo=UTC), datetime(2027, 1, 4, 3)),
        ("cron(0 0 ? * SUN#1 *)", datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 6, 0)),
        # The last day of the month.
        ("cron(0 16 L * ? *)", datetime(2027, 2, 3, tzinfo=UTC), datetime(2027, 2, 28, 16)),
        # Every 7 days from the 1st.
        ("cron(0 8 1/7 * ? *)", datetime(2026, 12, 9, tzinfo=UTC), datetime(2026, 12, 15, 8)),
        # Increments of hours reset each day.
        ("cron(0 4/12 * * ? *)", datetime(2026, 12, 7, 17, tzinfo=UTC), datetime(2026, 12, 8, 4)),
        # The last Friday (AWS day 6) of the month.
        ("cron(0 1 ? * 6L *)", datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 25, 1)),
        ("cron(0 9 ? * MON-FRI *)", datetime(2026, 12, 5, tzinfo=UTC), datetime(2026, 12, 7, 9)),
    ],
)
def test_aws_cron_fields(expression: str, after: datetime, expected: datetime) -> None:
    start, _ = next_window(parse_rules({"ScheduleExpression": expression}), ms(after))
    assert at(start) == expected.replace(tzinfo=UTC)


def test_hour_based_cron_window_defaults_to_one_hour() -> None:
    start, end = next_window(
        parse_rules({"ScheduleExpression": "cron(0 4/12 * * ? *)"}), ms(datetime(2026, 1, 1))
    )
    assert end - start == HOUR_MS
    assert at(start) + timedelta(hours=1) == at(end)


@pytest.mark.parametrize(
    "rules",
    [
        {"ScheduleExpression": "rate(3 hours)"},
        {"ScheduleExpression": "rate(0 days)"},
        {"ScheduleExpression": "rate(1000 days)"},
        {"ScheduleExpression": "rate(5 minutes)"},
        {"ScheduleExpression": "cron(15 4 * * ? *)"},  # windows open on the hour
        {"ScheduleExpression": "cron(0 4 * * ? 2027)"},  # year must be *
        {"ScheduleExpression": "cron(0 4 * * MON *)"},  # one day field must be ?
        {"ScheduleExpression": "cron(0 4 ? * ? *)"},
        {"ScheduleExpression": "cron(0 4 * *)"},
        {"ScheduleExpression": "cron(0 25 * * ? *)"},
        {"ScheduleExpression": "cron(0 4 ? * 8 *)"},
        {"ScheduleExpression": "cron(0 4 ? * 0 *)"},
        {"ScheduleExpression": "every day"},
        {"ScheduleExpression": "rate(4 hours)", "Duration": "5h"},  # into the next window
        {"ScheduleExpression": "cron(0 0/6 * * ? *)", "Duration": "7h"},
        {"AutomaticallyAfterDays": 1, "Duration": "25h"},
        {"AutomaticallyAfterDays": 1, "Duration": "0h"},
        {"AutomaticallyAfterDays": 1, "ScheduleExpression": "rate(1 day)"},
        {"Duration": "2h"},
    ],
)
def test_refused(rules: dict[str, object]) -> None:
    with pytest.raises(ServiceError) as exc:
        parse_rules(rules)
    assert exc.value.code == "InvalidParameterException"
