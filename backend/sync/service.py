"""Writing the change feed, and reading it in commit-safe order for one caller."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sqlalchemy import and_, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.audit import Actor
from backend.db import is_postgres
from backend.pagination import BIGINT_MAX, not_a_cursor
from backend.sync.models import ChangeLog

# entity name -> loads the current representation of many ids at once, as the phone should store it
Serializer = Callable[[AsyncSession, list[str]], Awaitable[dict[str, dict[str, Any]]]]
SERIALIZERS: dict[str, Serializer] = {}


def register_serializer(entity: str, serializer: Serializer) -> None:
    SERIALIZERS[entity] = serializer


def record_change(
    session: AsyncSession,
    entity: str,
    entity_id: Any,
    op: str,
    *,
    enterprise_id: uuid.UUID | None = None,
    agency_path: str | None = None,
) -> None:
    """Add a feed row to the caller's transaction. No enterprise and no agency means everyone may see it."""
    session.add(
        ChangeLog(
            entity=entity,
            entity_id=str(entity_id),
            op=op,
            enterprise_id=str(enterprise_id) if enterprise_id else None,
            agency_path=agency_path,
        )
    )


def _visible(actor: Actor) -> Any:
    public = and_(col(ChangeLog.enterprise_id).is_(None), col(ChangeLog.agency_path).is_(None))
    if actor.role == "admin":
        return col(ChangeLog.seq).is_not(None)
    if actor.role == "enterprise":
        return or_(public, col(ChangeLog.enterprise_id) == str(actor.enterprise_id))
    if actor.agency_path:
        return or_(public, col(ChangeLog.agency_path).startswith(actor.agency_path, autoescape=True))
    return public


# "<transaction id>.<sequence>", both PostgreSQL bigints (txid 0 on SQLite): plain ASCII digits, no sign, no `_`.
_SYNC_CURSOR = re.compile(r"^([0-9]{1,19})\.([0-9]{1,19})$", re.ASCII)


def _parse_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return 0, 0
    match = _SYNC_CURSOR.match(cursor)
    txid, seq = (int(match.group(1)), int(match.group(2))) if match else (-1, -1)
    if not (0 <= txid <= BIGINT_MAX and 0 <= seq <= BIGINT_MAX):
        raise not_a_cursor("since")
    return txid, seq


class SyncService:
    def __init__(self, session: AsyncSession, actor: Actor) -> None:
        self.session = session
        self.actor = actor

    async def changes(self, since: str | None, limit: int) -> tuple[list[dict[str, Any]], str]:
        txid, seq = _parse_cursor(since)
        query = select(ChangeLog).where(_visible(self.actor))
        if is_postgres(self.session):
            # Only transactions that finished before the oldest one still running: their rows are final, and every
            # later writer gets a larger transaction id, so ordering by (txid, seq) never skips a late commit.
            horizon = text("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            query = query.where(
                tuple_(col(ChangeLog.txid), col(ChangeLog.seq)) > tuple_(txid, seq), col(ChangeLog.txid) < horizon
            ).order_by(col(ChangeLog.txid), col(ChangeLog.seq))
        else:
            # SQLite has one writer at a time, so sequence order is commit order.
            query = query.where(col(ChangeLog.seq) > seq).order_by(col(ChangeLog.seq))
        rows = list((await self.session.execute(query.limit(limit))).scalars())
        data = await self._load(rows)
        changes = [{"entity": r.entity, "id": r.entity_id, "op": r.op, "at": r.at, "data": data.get((r.entity, r.entity_id))} for r in rows]
        next_cursor = f"{rows[-1].txid or 0}.{rows[-1].seq}" if rows else f"{txid}.{seq}"
        return changes, next_cursor

    async def _load(self, rows: Iterable[ChangeLog]) -> dict[tuple[str, str], dict[str, Any]]:
        ids: dict[str, set[str]] = {}
        for row in rows:
            ids.setdefault(row.entity, set()).add(row.entity_id)
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for entity, entity_ids in ids.items():
            loaded = await SERIALIZERS[entity](self.session, sorted(entity_ids))
            out.update({(entity, k): v for k, v in loaded.items()})
        return out
