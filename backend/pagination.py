"""Keyset pagination with opaque cursors: `(created_at, id)` order, stable under concurrent inserts."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from litestar.params import QueryParameter
from pydantic import BaseModel
from sqlalchemy import Select, tuple_

from backend.errors import InvalidInput

T = TypeVar("T")

DEFAULT_LIMIT = 50
BIGINT_MAX = 2**63 - 1  # what a PostgreSQL bigint (a sequence, a transaction id) holds
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


# A cursor this API hands out is about 90 characters; anything much longer is not one of them, and is refused before
# it is decoded (so no crafted cursor reaches the JSON decoder with thousands of nested brackets).
MAX_CURSOR_LENGTH = 200
# Instants in a cursor are row creation times: anything outside these years is not one this API handed out.
CURSOR_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR_LATEST = datetime(2200, 1, 1, tzinfo=UTC)

Cursor = Annotated[
    str | None,
    QueryParameter(max_length=MAX_CURSOR_LENGTH, description="next_cursor of the previous page; absent for the first page"),
]


def not_a_cursor(field: str = "cursor") -> InvalidInput:
    """A cursor is opaque: one the API did not hand out is a malformed query value (400), like any other."""
    message = "not a cursor this API handed out"
    return InvalidInput(f"{field}: {message}", field=field, errors=[{"field": field, "message": message, "source": "query"}])


def _cursor_json(cursor: str) -> Any:
    """The JSON inside an opaque cursor; ValueError when it cannot be one of ours."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise ValueError("too long")
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except RecursionError as exc:  # cannot happen within the length bound; kept so it never becomes a 500
        raise ValueError("nested too deeply") from exc


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, row_id = _cursor_json(cursor)
        if not isinstance(at, str) or not isinstance(row_id, str):
            raise TypeError
        instant = datetime.fromisoformat(at)
        if instant.tzinfo is None or not CURSOR_EARLIEST <= instant <= CURSOR_LATEST:
            raise ValueError("not a time this API wrote")
        return instant, uuid.UUID(row_id)
    except (ValueError, TypeError) as exc:
        raise not_a_cursor() from exc


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit: must be between 1 and {MAX_LIMIT}", field="limit")
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
        (seq,) = _cursor_json(cursor)
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= BIGINT_MAX:
            raise TypeError
        return seq
    except (ValueError, TypeError) as exc:
        raise not_a_cursor() from exc
