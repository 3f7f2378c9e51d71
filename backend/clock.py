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
