"""Rotation schedules: RotationRules checked as AWS checks them, and the next rotation window.

AWS's "Rotation schedules" guide: windows open on the hour (UTC); `rate(N days)` and
AutomaticallyAfterDays count days from the last rotation and open at midnight; `rate(N hours)`
(N >= 4) and hour-based `cron()` windows close after one hour by default, day-based ones at the
end of the UTC day; `Duration` (`Nh`) shortens a window, which may reach neither the next UTC day
nor the next window. AWS's cron has six fields (minutes hours day-of-month month day-of-week
year), minutes must be 0 and year `*`, day-of-week runs 1-7 from SUN, and one of the two day
fields is `?`. Iteration is cronsim's (5 standard fields, which the AWS fields are translated
to); everything here is pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cronsim import CronSim, CronSimError

from secretsd.errors import ServiceError, invalid_parameter

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MIN_RATE_HOURS = 4
MAX_RATE_DAYS = 999

_RATE = re.compile(r"rate\((\d+) (hour|hours|day|days)\)")
_CRON = re.compile(r"cron\((.*)\)")
_DURATION = re.compile(r"(\d+)h")

# Wording of these errors is not recorded from AWS (aws-behaviour.md §8 lists only the field
# limits); kept here in one place.
MSG_BOTH = "You can't specify both AutomaticallyAfterDays and ScheduleExpression in RotationRules."
MSG_NEITHER = "You must specify AutomaticallyAfterDays or ScheduleExpression in RotationRules."
MSG_BAD_EXPRESSION = "The schedule expression is not valid: {0}"
MSG_DURATION = (
    "The rotation window (Duration) must not extend into the next rotation window or the next"
    " UTC day."
)


@dataclass(frozen=True, slots=True)
class Schedule:
    kind: str  # "days" | "cron" (rate(N hours) is the cron `0 0/N * * *`)
    days: int  # for "days"
    cron: str  # 5-field standard cron, for "cron"
    hourly: bool  # whether the schedule is in hours (default window one hour)
    duration_ms: int | None  # the Duration given, if any

    def window_ms(self, start_ms: int) -> int:
        if self.duration_ms is not None:
            return self.duration_ms
        if self.hourly:
            return HOUR_MS
        return DAY_MS - start_ms % DAY_MS  # to the end of the UTC day

    def automatically_after_days(self) -> int | None:
        return self.days if self.kind == "days" else None


def _bad(expression: str) -> ServiceError:
    return invalid_parameter(MSG_BAD_EXPRESSION.format(expression))


def parse_rules(rules: dict[str, Any]) -> Schedule:
    """RotationRules -> Schedule, or InvalidParameterException."""
    days = rules.get("AutomaticallyAfterDays")
    expression = rules.get("ScheduleExpression")
    duration = rules.get("Duration")
    if days is not None and expression is not None:
        raise invalid_parameter(MSG_BOTH)
    duration_ms = None
    if duration is not None:
        match = _DURATION.fullmatch(duration)
        if match is None or int(match.group(1)) < 1:
            raise invalid_parameter(f"The Duration {duration} is not valid.")
        duration_ms = int(match.group(1)) * HOUR_MS
    if expression is None:
        if days is None:
            raise invalid_parameter(MSG_NEITHER)
        schedule = Schedule("days", int(days), "", False, duration_ms)
    else:
        schedule = _parse_expression(expression.strip(), duration_ms)
    _check_window(schedule)
    return schedule


def _parse_expression(expression: str, duration_ms: int | None) -> Schedule:
    rate = _RATE.fullmatch(expression)
    if rate is not None:
        value, unit = int(rate.group(1)), rate.group(2)
        if unit.startswith("hour"):
            if value < MIN_RATE_HOURS or value > 23:
                raise _bad(expression)
            return Schedule("cron", 0, f"0 0/{value} * * *", True, duration_ms)
        if not 1 <= value <= MAX_RATE_DAYS:
            raise _bad(expression)
        return Schedule("days", value, "", False, duration_ms)
    cron = _CRON.fullmatch(expression)
    if cron is None:
        raise _bad(expression)
    fields = cron.group(1).split()
    if len(fields) != 6:
        raise _bad(expression)
    minutes, hours, dom, month, dow, year = (f.upper() for f in fields)
    if minutes != "0" or year != "*":
        raise _bad(expression)
    if (dom == "?") == (dow == "?"):
        raise _bad(expression)
    if "W" in dom.replace("LW", "") or "#" in dom or "L" in month or "?" in hours:
        raise _bad(expression)
    standard = " ".join(
        ("0", hours, "*" if dom == "?" else dom, month, "*" if dow == "?" else _dow(dow))
    )
    try:
        CronSim(standard, datetime(2000, 1, 1, tzinfo=UTC))
    except (CronSimError, ValueError, IndexError):
        raise _bad(expression) from None
    hourly = len(_hours_of(hours)) > 1
    return Schedule("cron", 0, standard, hourly, duration_ms)


def _dow(field: str) -> str:
    """AWS numbers days of the week 1-7 from Sunday; standard cron 0-6."""

    def shift(match: re.Match[str]) -> str:
        before = field[match.start() - 1] if match.start() > 0 else ""
        if before in ("#", "/"):
            return match.group(0)
        number = int(match.group(0))
        if not 1 <= number <= 7:
            raise ValueError(field)
        return str(number - 1)

    try:
        return re.sub(r"\d+", shift, field)
    except ValueError:
        return "99"  # out of range: refused by cronsim


def _hours_of(field: str) -> set[int]:
    try:
        parsed = CronSim(f"0 {field} * * *", datetime(2000, 1, 1, tzinfo=UTC)).hours
    except (CronSimError, ValueError, IndexError):
        return set()
    return set(parsed)


def _check_window(schedule: Schedule) -> None:
    if schedule.duration_ms is None:
        return
    if schedule.kind == "days":
        if schedule.duration_ms > DAY_MS:
            raise invalid_parameter(MSG_DURATION)
        return
    hours = sorted(_hours_of(schedule.cron.split()[1]))
    for i, hour in enumerate(hours):
        if hour * HOUR_MS + schedule.duration_ms > DAY_MS:
            raise invalid_parameter(MSG_DURATION)
        if i + 1 < len(hours) and (hours[i + 1] - hour) * HOUR_MS < schedule.duration_ms:
            raise invalid_parameter(MSG_DURATION)


def next_window(schedule: Schedule, after_ms: int) -> tuple[int, int]:
    """The first rotation window opening after `after_ms` (the last rotation, or when rotation
    was configured): (start, end) in ms."""
    if schedule.kind == "days":
        start = after_ms - after_ms % DAY_MS + schedule.days * DAY_MS
    else:
        moment = datetime.fromtimestamp(after_ms / 1000, UTC)
        fire = next(iter(CronSim(schedule.cron, moment)))
        start = int(fire.timestamp() * 1000)
        if start <= after_ms:  # cronsim may return `moment` itself when it matches
            fire = next(iter(CronSim(schedule.cron, fire.replace(second=1))))
            start = int(fire.timestamp() * 1000)
    return start, start + schedule.window_ms(start)


def rules_out(rules: dict[str, Any]) -> dict[str, Any]:
    """RotationRules as Describe/List show them: AutomaticallyAfterDays is derived from a
    schedule in days."""
    out = {k: v for k, v in rules.items() if k in ("ScheduleExpression", "Duration")}
    days = parse_rules(rules).automatically_after_days()
    if days is not None:
        out["AutomaticallyAfterDays"] = days
    return out
