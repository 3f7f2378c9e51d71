"""The one write path and the one vocabulary: what no route can forget, on PostgreSQL and on the embedded SQLite."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.hazards.models import Hazard
from backend.migrations import upgrade
from backend.settings import Settings
from tests.conftest import serving
from tests.helpers import World, assert_problem, ok, start_inspection, upload
from tests.media import jpeg
from tests.test_enforcement import MAJOR_FINE, open_case
from tests.test_hazards import report
from tests.test_inspections import ATTENDEES, items_of


async def test_racing_appends_on_sqlite_all_succeed(settings: Settings, tmp_path: Path) -> None:
    """The embedded default serialises writers (BEGIN IMMEDIATE): 24 appends to one case at once all land, in one
    unbroken chain, where a deferred transaction would have answered "database is locked"."""
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    await asyncio.to_thread(upgrade, url)
    async with (
        serving(replace(settings, database_url=url)) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://embedded.local") as client,
    ):
        world = await World.build(client, app)
        cid = (await open_case(world))["id"]
        bodies = [{"kind": "note", "occurred_at": "2026-11-29T09:00:00+08:00", "description": f"第{n}条记录"} for n in range(24)]
        answers = await asyncio.gather(*(world.post("inspector_a1", f"/api/v1/cases/{cid}/records", b) for b in bodies))
        assert [a.status_code for a in answers] == [201] * 24, [a.text for a in answers if a.status_code != 201]
        assert sorted(a.json()["seq"] for a in answers) == list(range(1, 25))
        verified = (await world.get("inspector_a1", f"/api/v1/cases/{cid}/verify")).json()
        assert verified == {"valid": True, "length": 24, "head": verified["head"], "first_invalid_seq": None, "problem": None}


async def test_a_status_set_outside_the_workflow_or_a_change_without_audit_is_refused(world: World) -> None:
    hid = uuid.UUID((await report(world))["id"])
    async with world.app.state.sessionmaker() as session:
        hazard = await session.get(Hazard, hid)
        assert hazard is not None
        hazard.status = "closed"
        with pytest.raises(RuntimeError, match="outside its workflow"):
            await session.flush()
    async with world.app.state.sessionmaker() as session:
        hazard = await session.get(Hazard, hid)
        assert hazard is not None
        hazard.description = "悄悄改掉的描述"
        with pytest.raises(RuntimeError, match="without an audit row"):
            await session.commit()
    assert (await world.get("inspector_a1", f"/api/v1/hazards/{hid}")).json()["description"] == "安全出口被堵塞"


async def test_case_lists_serve_each_role_its_queue(world: World) -> None:
    plain = await open_case(world)
    major = await open_case(world)
    ok(await world.post("inspector_a1", f"/api/v1/cases/{major['id']}/decision", MAJOR_FINE))

    queue = (await world.get("legal_city", "/api/v1/cases", params={"awaiting_my_review": "true"})).json()
    assert [c["id"] for c in queue["items"]] == [major["id"]] and queue["next_cursor"] is None
    assert (await world.get("legal_other", "/api/v1/cases", params={"awaiting_my_review": "true"})).json()["items"] == []
    mine = (await world.get("inspector_a2", "/api/v1/cases", params={"handled_by_me": "true"})).json()
    assert {c["id"] for c in mine["items"]} == {plain["id"], major["id"]}
    assert (await world.get("inspector_b", "/api/v1/cases")).json()["items"] == []
    own = (await world.get("enterprise_a", "/api/v1/cases", params={"status": "open"})).json()
    assert [c["id"] for c in own["items"]] == [plain["id"]]
    assert (await world.get("enterprise_b", "/api/v1/cases")).json()["items"] == []
    first = (await world.get("inspector_a1", "/api/v1/cases", params={"limit": 1})).json()
    rest = (await world.get("inspector_a1", "/api/v1/cases", params={"limit": 1, "cursor": first["next_cursor"]})).json()
    assert {first["items"][0]["id"], rest["items"][0]["id"]} == {plain["id"], major["id"]} and rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/hazards", {"status": "pending"}, "status"),
        ("/api/v1/hazards", {"topic": "minning"}, "topic"),
        ("/api/v1/hazards", {"level": "huge"}, "level"),
        ("/api/v1/cases", {"status": "closed_forever"}, "status"),
        ("/api/v1/inspections", {"status": "done"}, "status"),
        ("/api/v1/enterprises", {"topic": "space"}, "topic"),
        ("/api/v1/stats/hazards", {"group_by": "colour"}, "group_by"),
        ("/api/v1/checklists", {"topic": "minning"}, "topic"),
    ],
)
async def test_an_unknown_filter_value_is_400_naming_the_parameter(world: World, path: str, params: dict[str, str], field: str) -> None:
    assert_problem(await world.get("inspector_a1", path, params=params), 400, "validation_error", field=field)


async def test_instants_come_back_in_the_agencies_zone_on_create_and_on_read(world: World) -> None:
    created = await report(world, deadline="2031-05-12T10:00:00Z")
    read = (await world.get("inspector_a1", f"/api/v1/hazards/{created['id']}")).json()
    for body in (created, read):
        for name in ("created_at", "updated_at", "deadline"):
            assert body[name].endswith("+08:00"), (name, body[name])
        assert body["timeline"][0]["at"].endswith("+08:00")
    assert created["deadline"] == read["deadline"] == "2031-05-12T18:00:00+08:00"
    assert created["created_at"] == read["created_at"]
    assert datetime.fromisoformat(read["deadline"]) == datetime.fromisoformat("2031-05-12T10:00:00+00:00")


async def test_a_hazard_from_an_inspection_keeps_the_inspectors_words(world: World) -> None:
    inspection = await start_inspection(world)
    checklist_id = inspection["checklist_ids"][0]
    items = await items_of(world, checklist_id)
    photo = (await upload(world, "inspector_a1", jpeg(), inspection_id=inspection["id"])).json()["id"]
    described, noted = items[0], items[1]
    results: list[dict[str, Any]] = [{"checklist_id": checklist_id, "item_code": i["code"], "outcome": "compliant"} for i in items[2:]]
    results += [
        {
            "checklist_id": checklist_id,
            "item_code": described["code"],
            "outcome": "hazard",
            "evidence_ids": [photo],
            "note": "东侧通道",
            "hazard": {"level": "general", "description": "东侧安全出口堆放纸箱"},
        },
        {"checklist_id": checklist_id, "item_code": noted["code"], "outcome": "hazard", "evidence_ids": [photo], "note": "配电箱门未关"},
    ]
    put = await world.put("inspector_a1", f"/api/v1/inspections/{inspection['id']}/results", {"results": results})
    assert put.status_code == 200, put.text
    submitted = await world.post("inspector_a1", f"/api/v1/inspections/{inspection['id']}/submit", {"attendees": ATTENDEES})
    assert submitted.status_code == 200, submitted.text
    hazards = [(await world.get("inspector_a1", f"/api/v1/hazards/{h}")).json() for h in submitted.json()["hazard_ids"]]
    by_item = {h["item_code"]: h for h in hazards}
    assert by_item[described["code"]]["description"] == "东侧安全出口堆放纸箱"
    assert by_item[described["code"]]["note"] == "东侧通道"
    assert by_item[described["code"]]["item_text"] == described["text"]
    assert by_item[noted["code"]]["description"] == "配电箱门未关"  # no description given: the inspector's note
    assert by_item[noted["code"]]["item_text"] == noted["text"]
