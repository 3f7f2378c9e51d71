"""HTTP for the offline change feed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit import Actor
from backend.sync.service import SyncService
from backend.wire import Output


class Change(Output):
    entity: str
    id: str
    op: str
    at: datetime
    data: dict[str, Any] | None


class ChangesOut(Output):
    changes: list[Change]
    next_cursor: str


@get("/sync/changes", tags=["sync"], summary="Everything visible to the caller that changed since the cursor, in order")
async def sync_changes(
    db_session: NamedDependency[AsyncSession],
    actor: NamedDependency[Actor],
    since: Annotated[
        str | None,
        QueryParameter(
            pattern=r"^([0-9]{1,19}\.[0-9]{1,19})?$",
            max_length=39,
            description="next_cursor of the previous call (`<transaction>.<sequence>`, each within a 64-bit signed "
            "integer); empty starts over",
        ),
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 500,
) -> ChangesOut:
    changes, next_cursor = await SyncService(db_session, actor).changes(since, limit)
    return ChangesOut(changes=[Change(**c) for c in changes], next_cursor=next_cursor)
