"""The offline change feed: ordered, resumable, scoped, and never skipping a change that commits late."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from backend.checklists.service import ChecklistService
from backend.db import is_postgres
from backend.settings import PROJECT_ROOT
from backend.sync.service import record_change
from tests.helpers import World, assert_problem, start_inspection


async def drain(world: World, username: str, since: str | None = None, limit: int = 3) -> tuple[list[dict[str, Any]], str]:
    changes: list[dict[str, Any]] = []
    cursor = since
    while True:
        params = {"limit": limit, **({"since": cursor} if cursor is not None else {})}
        page = (await world.get(username, "/api/v1/sync/changes", params=params)).json()
        changes += page["changes"]
        if not page["changes"]:
            return changes, page["next_cursor"]
        cursor = page["next_cursor"]


async def test_feed_is_ordered_resumable_and_scoped(world: World, tmp_path: Path) -> None:
    _, cursor = await drain(world, "inspector_a1")
    _, enterprise_cursor = await drain(world, "enterprise_b")
    code = f"feed-{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{code}@1.yaml").write_text(
        (PROJECT_ROOT / "checklists" / "mining-routine@2021.yaml")
        .read_text(encoding="utf-8")
        .replace("code: mining-routine", f"code: {code}")
        .replace("topic: mining", "topic: road_transport"),
        encoding="utf-8",
    )
    (tmp_path / f"{code}@1.yaml").write_text(
        (tmp_path / f"{code}@1.yaml").read_text(encoding="utf-8").replace("version: '2021'", "version: '1'"), encoding="utf-8"
    )
    report = await ChecklistService.load_directory(world.app.state.sessionmaker, tmp_path)
    assert report.published == [f"{code}@1.yaml"], report.errors
    for username, since in (("inspector_a1", cursor), ("enterprise_b", enterprise_cursor)):
        published = (await drain(world, username, since))[0]
        assert [(c["entity"], c["data"]["code"]) for c in published] == [("checklist", code)]  # everyone sees checklists
    _, cursor = await drain(world, "inspector_a1")

    inspection = await start_inspection(world)
    hazard = await world.post(
        "enterprise_a",
        "/api/v1/hazards",
        {"enterprise_id": str(world.enterprises["a"].id), "level": "general", "description": "配电箱未上锁", "deadline": "2099-01-01"},
    )
    other = await world.post(
        "inspector_b", "/api/v1/hazards", {"enterprise_id": str(world.enterprises["b"].id), "level": "general", "description": "b"}
    )
    assert hazard.status_code == other.status_code == 201

    new, cursor_after = await drain(world, "inspector_a1", cursor, limit=1)
    assert [(c["entity"], c["id"]) for c in new] == [("inspection", inspection["id"]), ("hazard", hazard.json()["id"])]
    assert new[0]["data"]["status"] == "in_progress" and new[1]["data"]["description"] == "配电箱未上锁"
    assert (await drain(world, "inspector_a1", cursor_after))[0] == []  # caught up

    seen_by_b = {c["id"] for c in (await drain(world, "enterprise_b"))[0]}
    assert other.json()["id"] in seen_by_b and hazard.json()["id"] not in seen_by_b and inspection["id"] not in seen_by_b
    city = {c["id"] for c in (await drain(world, "inspector_city"))[0]}
    assert {inspection["id"], hazard.json()["id"], other.json()["id"]} <= city
    assert_problem(await world.get("inspector_a1", "/api/v1/sync/changes", params={"since": "not-a-cursor"}), 400, field="since")
    assert_problem(await world.client.get("/api/v1/sync/changes"), 401)


async def test_a_change_that_commits_late_is_not_skipped(world: World) -> None:
    """Writer A takes its place in the feed first but commits after writer B; a reader polling in between must
    still receive A's change afterwards."""
    sessionmaker = world.app.state.sessionmaker
    _, start = await drain(world, "admin")
    async with sessionmaker() as session_a:
        if not is_postgres(session_a):
            pytest.skip("SQLite admits one writer at a time, so no write can commit out of order there")
        record_change(session_a, "hazard", uuid.uuid4(), "update")
        await session_a.flush()  # A holds its transaction id and sequence number, uncommitted
        async with sessionmaker() as session_b:
            record_change(session_b, "hazard", uuid.uuid4(), "update")
            await session_b.commit()
        in_between, cursor = await drain(world, "admin", start)
        assert in_between == []  # B waits behind A rather than letting the cursor jump past A
        await session_a.commit()
    after, _ = await drain(world, "admin", cursor)
    assert len(after) == 2
