"""The running tally behind the hazard figures: every change of a hazard moves it from one tally row to another."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from backend.clock import agency_zone
from backend.db import upsert_into
from backend.hazards.models import Hazard, HazardTally

NOT_CLOSED = -1


@dataclass(frozen=True)
class TallyKey:
    enterprise_id: Any
    topic: str
    level: str
    status: str
    close_days: int
    recurred: bool
    recurrences: int

    @classmethod
    def of(cls, hazard: dict[str, Any]) -> TallyKey:
        return cls(
            enterprise_id=hazard["enterprise_id"],
            topic=hazard["topic"],
            level=hazard["level"],
            status=hazard["status"],
            close_days=close_days(hazard["created_at"], hazard["closed_at"]),
            recurred=hazard["recurrence_count"] > 0,
            recurrences=hazard["recurrence_count"],
        )


COUNTED_BY = ("enterprise_id", "topic", "level", "status", "created_at", "closed_at", "recurrence_count")


def close_days(created_at: datetime, closed_at: datetime | None) -> int:
    if closed_at is None:
        return NOT_CLOSED
    zone = agency_zone()
    return (closed_at.astimezone(zone).date() - created_at.astimezone(zone).date()).days


def count(session: Session, key: TallyKey, delta: int) -> None:
    columns = ["enterprise_id", "topic", "level", "status", "close_days", "recurred"]
    values = {c: getattr(key, c) for c in columns}
    statement = upsert_into(session.get_bind().dialect.name, HazardTally).values(
        **values, hazards=delta, recurrences=delta * key.recurrences
    )
    statement = statement.on_conflict_do_update(
        index_elements=columns,
        set_={
            "hazards": HazardTally.hazards + statement.excluded.hazards,
            "recurrences": HazardTally.recurrences + statement.excluded.recurrences,
        },
    )
    session.execute(statement)


def move(session: Session, before: dict[str, Any] | None, hazard: Hazard) -> None:
    """Run at every flush that inserts or changes a hazard (see backend/unit_of_work.py): take the hazard out of
    the row it was counted in (if any) and count it where it stands now.

    The two rows are always touched in the same order, so two transactions moving hazards in opposite directions
    wait for each other instead of deadlocking."""
    after = TallyKey.of({name: getattr(hazard, name) for name in COUNTED_BY})
    counted = TallyKey.of(before) if before is not None else None
    if counted == after:
        return
    changes = [(after, +1)] + ([(counted, -1)] if counted is not None else [])
    for key, delta in sorted(changes, key=lambda change: repr(change[0])):
        count(session, key, delta)


def rebuild_sql(dialect: str, zone: str = "Asia/Shanghai") -> str:
    """SQL that recounts the whole tally from the hazards (for the migration that adds it, and bulk loads)."""
    if dialect == "postgresql":
        days = f"((closed_at AT TIME ZONE '{zone}')::date - (created_at AT TIME ZONE '{zone}')::date)"
    else:  # SQLite keeps UTC text; Asia/Shanghai is UTC+8 all year
        days = "CAST(julianday(date(closed_at, '+8 hours')) - julianday(date(created_at, '+8 hours')) AS INTEGER)"
    return (
        "DELETE FROM hazard_tally; "
        "INSERT INTO hazard_tally (enterprise_id, topic, level, status, close_days, recurred, hazards, recurrences) "
        f"SELECT enterprise_id, topic, level, status, CASE WHEN closed_at IS NULL THEN {NOT_CLOSED} ELSE {days} END, "
        "recurrence_count > 0, count(*), sum(recurrence_count) FROM hazard "
        f"GROUP BY enterprise_id, topic, level, status, CASE WHEN closed_at IS NULL THEN {NOT_CLOSED} ELSE {days} END, recurrence_count > 0"
    )
