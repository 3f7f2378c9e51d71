"""Keyset pagination with opaque cursors: `(created_at, id)` order, stable under concurrent inserts."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, tuple_

from backend.errors import ValidationFailed

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, row_id = json.loads(raw)
        return datetime.fromisoformat(at), uuid.UUID(row_id)
    except (ValueError, TypeError) as exc:
        raise ValidationFailed("cursor is not one this API handed out", field="cursor") from exc


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    return limit


def keyset(query: Select[Any], created_col: Any, id_col: Any, cursor: str | None, limit: int) -> Select[Any]:
    """Order newest first and continue strictly after the cursor; fetch one extra row to know if more exist."""
    if cursor:
        at, row_id = decode_cursor(cursor)
        # a row-value comparison, which PostgreSQL answers with one range scan of the (created_at, id) index
        query = query.where(tuple_(created_col, id_col) < tuple_(at, row_id))
    return query.order_by(created_col.desc(), id_col.desc()).limit(check_limit(limit) + 1)


def page_of(rows: list[Any], limit: int, convert: Any) -> Page[Any]:
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
    return Page[Any](items=[convert(r) for r in rows], next_cursor=next_cursor)


def encode_seq(seq: int) -> str:
    """A cursor for lists in a sequence's order (a case's records)."""
    return base64.urlsafe_b64encode(json.dumps([seq]).encode()).decode().rstrip("=")


def decode_seq(cursor: str) -> int:
    try:
        (seq,) = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise TypeError
        return seq
    except (ValueError, TypeError) as exc:
        raise ValidationFailed("cursor is not one this API handed out", field="cursor") from exc
