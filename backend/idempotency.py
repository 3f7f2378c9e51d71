"""Offline creates carry client ids; a retry with the same id must mean the same thing, compared after normalising."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic_core import to_jsonable_python

from backend.errors import Conflict


def fingerprint(content: dict[str, Any]) -> str:
    """sha256 of a canonical JSON form: sorted keys, UUIDs and times as strings, UTF-8."""
    canonical = json.dumps(to_jsonable_python(content), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def ensure_same(stored: str | None, incoming: str, entity: str, entity_id: Any) -> None:
    if stored != incoming:
        raise Conflict(
            f"{entity} {entity_id} exists with different content; a retry must repeat the original request",
            code="duplicate_conflict",
            field="id",
        )
