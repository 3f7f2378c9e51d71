"""Offline creates carry client ids; a retry with the same id must mean the same thing, compared after normalising."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.errors import Conflict, ErrorCode


def fingerprint(content: dict[str, Any]) -> str:
    """sha256 of a canonical JSON form: sorted keys, UUIDs and times as strings, UTF-8."""
    canonical = json.dumps(to_jsonable_python(content), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def find_retry(
    session: AsyncSession,
    scoped: Select[Any],
    model: Any,
    entity_id: Any,
    digest: str,
    stored_fingerprint: Callable[[Any], str] = lambda row: row.client_fingerprint,
) -> Any | None:
    """The row a create with this client id made before, if any, after checking the retry means the same thing.

    `scoped` selects the rows the caller may see: an id taken outside the caller's scope is a conflict of ids, never
    a leak of the other row's content."""
    row = await session.get(model, entity_id)
    if row is None:
        return None
    visible = (await session.execute(scoped.where(model.id == entity_id))).first() is not None
    ensure_same(stored_fingerprint(row) if visible else None, digest, model.__tablename__, entity_id)
    return row


def ensure_same(stored: str | None, incoming: str, entity: str, entity_id: Any) -> None:
    if stored != incoming:
        raise Conflict(
            f"{entity} {entity_id} exists with different content; a retry must repeat the original request",
            code=ErrorCode.DUPLICATE_CONFLICT,
            field="id",
        )
