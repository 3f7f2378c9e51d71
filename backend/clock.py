"""Time in the agencies' zone: deadlines are calendar dates there, stored as UTC instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic_core import to_jsonable_python

from backend.settings import get_settings


def agency_zone() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


def now() -> datetime:
    return datetime.now(UTC)


def local_today() -> date:
    return now().astimezone(agency_zone()).date()


def local_date(at: datetime) -> date:
    """The calendar day an instant falls on in the agencies' zone."""
    return at.astimezone(agency_zone()).date()


def end_of_local_day(day: date) -> datetime:
    """The last instant of a calendar day in the agency's zone, in UTC: a deadline "by 12 May" ends there."""
    midnight_after = datetime.combine(day + timedelta(days=1), time.min, tzinfo=agency_zone())
    return (midnight_after - timedelta(microseconds=1)).astimezone(UTC)


def deadline_after(start: datetime, days: int) -> datetime:
    return end_of_local_day(start.astimezone(agency_zone()).date() + timedelta(days=days))


def working_day_after(start: datetime, days: int) -> date:
    """The `days`-th working day after `start`'s local date (行政处罚法 第八十五条: "二日""三日""五日""七日" are
    working days): Monday to Friday but the HOLIDAYS, plus the MAKEUP_WORKDAYS (调休) at weekends."""
    settings = get_settings()
    day, counted = local_date(start), 0
    while counted < days:
        day += timedelta(days=1)
        if day in settings.makeup_workdays or (day.weekday() < 5 and day not in settings.holidays):
            counted += 1
    return day


def working_days_after(start: datetime, days: int) -> datetime:
    """The end of the `days`-th working day after `start`, as an instant: the deadline of a working-day period."""
    return end_of_local_day(working_day_after(start, days))


def in_agency_zone(value: datetime) -> datetime:
    """Every instant the API returns carries the agencies' offset (+08:00), whether it was just written or read back."""
    return value.astimezone(agency_zone()) if value.tzinfo is not None else value


def jsonable(value: Any) -> Any:
    """A JSON-ready copy of `value` (kept in timelines and the audit log) with instants in the agencies' zone."""
    if isinstance(value, datetime):
        return in_agency_zone(value).isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return to_jsonable_python(value)
