"""The discretion table (自由裁量基准): data in discretion.yaml beside this file, loaded and checked once."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel

from backend.enforcement.schemas import DiscretionItem

TABLE = Path(__file__).with_name("discretion.yaml")


class _Table(BaseModel):
    law: str
    version: str
    source: str
    items: list[DiscretionItem]


@lru_cache(maxsize=1)
def discretion_table() -> dict[str, DiscretionItem]:
    table = _Table.model_validate(yaml.safe_load(TABLE.read_text(encoding="utf-8")))
    items = {item.id: item for item in table.items}
    if len(items) != len(table.items):
        raise ValueError(f"{TABLE.name}: duplicate ids")
    for item in items.values():
        if item.min_amount is not None and item.max_amount is not None and item.min_amount > item.max_amount:
            raise ValueError(f"{TABLE.name}: {item.id} has min_amount above max_amount")
    return items


def search(q: str | None) -> list[DiscretionItem]:
    items = list(discretion_table().values())
    if not q:
        return items
    return [i for i in items if q in i.violation or q in i.article or q in i.id or q in (i.notes or "")]
