"""Checklists: the shipped data against the official counts, the loader's validation, immutability of published
versions, choosing the version in force by date, and the API with ETag round trips."""

from __future__ import annotations

import re
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backend.checklists.loader import ChecklistFileInvalid, checklist_files, parse_checklist_file
from backend.checklists.service import ChecklistService, PublishedVersionChanged, checklist_id
from backend.settings import PROJECT_ROOT
from tests.helpers import World, assert_problem

DATA = PROJECT_ROOT / "checklists"
README = (DATA / "README.md").read_text(encoding="utf-8")

# Official item counts as shared/regulations/FACTS.md states them.
OFFICIAL_COUNTS = {
    "coal-mine-major": 81,  # 15 aspects, 81 situations (§1)
    "hazchem-major": 20,  # 20 situations (§2)
    "metal-nonmetal-mine-major": 64,  # 64 situations (§5a)
    "industry-trade-major": 64,  # 3 + 47 + 14 (§5b)
}
FIRE_DIRECT_ELEMENTS = 10  # GB 35181-2017 6.1–6.10 (§4)
CORE_TOPICS = ("mining", "hazardous_chemicals", "construction", "fire_safety")


@pytest.fixture(scope="module")
def shipped() -> dict[str, Any]:
    return {path.name: parse_checklist_file(path) for path in checklist_files(DATA)}


def test_every_shipped_file_is_valid_and_counts_match_the_facts(shipped: dict[str, Any]) -> None:
    assert len(shipped) >= 12
    for name, checklist in shipped.items():
        official = OFFICIAL_COUNTS.get(checklist.code)
        if official is not None:
            assert checklist.official_item_count == official, name
        if checklist.official_item_count is not None:
            assert len(checklist.items) <= checklist.official_item_count, name
            if len(checklist.items) < checklist.official_item_count:
                assert name.removesuffix(".yaml") in README and "NOT FOUND" in README, f"{name}: gap not listed in README"
    assert len(shipped["hazchem-major@2017.yaml"].items) == 20
    fire = shipped["fire-major@2017.yaml"]
    assert len([i for i in fire.items if i.code.startswith("FS-6-")]) == FIRE_DIRECT_ELEMENTS


def test_every_item_cites_its_legal_basis_and_lists_are_substantial(shipped: dict[str, Any]) -> None:
    for name, checklist in shipped.items():
        for item in checklist.items:
            assert item.legal_basis.document and item.legal_basis.article, (name, item.code)
        if checklist.kind == "major":
            assert all(i.major_hazard for i in checklist.items), name
        else:
            assert not any(i.major_hazard for i in checklist.items), name
        if len(checklist.items) < 10:  # only where the facts run out, and the README says so
            assert f"`{name}`" in README and "below the 10-item minimum" in README, name


def test_each_core_topic_has_a_major_and_a_routine_checklist(shipped: dict[str, Any]) -> None:
    for topic in (*CORE_TOPICS, "industry_trade"):
        kinds = {c.kind for c in shipped.values() if c.topic == topic}
        assert kinds == {"major", "routine"}, topic


def _file(tmp_path: Path, data: dict[str, Any], name: str | None = None) -> Path:
    path = tmp_path / (name or f"{data['code']}@{data['version']}.yaml")
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _checklist(code: str, version: str = "1", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "code": code,
        "version": version,
        "topic": "road_transport",
        "kind": "routine",
        "title": "测试检查表",
        "document_number": "测试文号",
        "issuing_body": "测试机关",
        "effective_from": date(2020, 1, 1),
        "effective_to": None,
        "items": [
            {
                "code": f"T-{n}",
                "text": f"测试检查项{n}",
                "legal_basis": {"document": "中华人民共和国安全生产法", "article": "第四十一条", "item": None},
                "major_hazard": False,
                "rectify_days": 7,
                "min_photos": 1,
                "verified": True,
            }
            for n in range(1, 4)
        ],
    }
    data.update(overrides)
    return data


def test_malformed_file_errors_name_file_line_and_field(tmp_path: Path) -> None:
    data = _checklist("bad-list")
    del data["items"][1]["rectify_days"]
    data["items"][2]["min_photos"] = "two"
    path = _file(tmp_path, data)
    with pytest.raises(ChecklistFileInvalid) as caught:
        parse_checklist_file(path)
    messages = [str(e) for e in caught.value.errors]
    lines = path.read_text(encoding="utf-8").splitlines()
    missing = next(e for e in caught.value.errors if e.field == "items[1].rectify_days")
    assert missing.file == "bad-list@1.yaml" and "Field required" in missing.message
    assert "T-2" in lines[missing.line - 1] or "code" in lines[missing.line - 1]
    wrong = next(e for e in caught.value.errors if e.field == "items[2].min_photos")
    assert "min_photos" in lines[wrong.line - 1]
    assert any(m.startswith("bad-list@1.yaml:") for m in messages)


def test_yaml_syntax_errors_and_misnamed_files_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken@1.yaml"
    broken.write_text("code: broken\nitems: [\n  - {code: A\n", encoding="utf-8")
    with pytest.raises(ChecklistFileInvalid) as caught:
        parse_checklist_file(broken)
    assert caught.value.errors[0].line is not None and "YAML syntax" in caught.value.errors[0].message

    misnamed = _file(tmp_path, _checklist("right-name"), name="wrong-name@1.yaml")
    with pytest.raises(ChecklistFileInvalid, match=re.escape("right-name@1.yaml")):
        parse_checklist_file(misnamed)

    duplicate = _checklist("dup-codes")
    duplicate["items"][1]["code"] = "T-1"
    with pytest.raises(ChecklistFileInvalid, match="T-1 appears twice"):
        parse_checklist_file(_file(tmp_path, duplicate))


async def test_loading_twice_changes_nothing_and_published_versions_are_immutable(world: World, tmp_path: Path) -> None:
    code = f"immutable-{uuid.uuid4().hex[:8]}"
    path = _file(tmp_path, _checklist(code))
    sessionmaker = world.app.state.sessionmaker
    first = await ChecklistService.load_directory(sessionmaker, tmp_path)
    second = await ChecklistService.load_directory(sessionmaker, tmp_path)
    assert (first.published, second.published, second.unchanged) == ([path.name], [], [path.name])

    edited = _checklist(code)
    edited["items"][0]["text"] = "改过的检查项"
    _file(tmp_path, edited)
    refused = await ChecklistService.load_directory(sessionmaker, tmp_path)
    assert refused.published == [] and len(refused.errors) == 1
    assert refused.errors[0].field == "version" and "cannot change" in refused.errors[0].message
    with pytest.raises(PublishedVersionChanged):
        async with sessionmaker() as session:
            await ChecklistService(session).publish(parse_checklist_file(path), path.name)

    path.unlink()
    _file(tmp_path, _checklist(code, version="2", items=edited["items"]))
    bumped = await ChecklistService.load_directory(sessionmaker, tmp_path)
    assert bumped.published == [f"{code}@2.yaml"]
    assert checklist_id(code, "2") != checklist_id(code, "1")
    served = await world.get("inspector_a1", f"/api/v1/checklists/{checklist_id(code, '1')}")
    assert served.json()["items"][0]["text"] == "测试检查项1"


async def test_published_rows_cannot_be_edited_in_the_database(world: World) -> None:
    async with world.app.state.sessionmaker() as session:
        with pytest.raises(DBAPIError):
            await session.execute(text("UPDATE checklist_item SET text = 'x'"))
        await session.rollback()


async def test_version_in_force_is_chosen_by_date(world: World, tmp_path: Path) -> None:
    code = f"dated-{uuid.uuid4().hex[:8]}"
    successor = {"title": "测试标准（2023版）", "document_number": "测试〔2023〕1号", "effective_from": date(2023, 1, 1)}
    _file(tmp_path, _checklist(code, "2020", effective_to=date(2023, 1, 1), superseded_by=successor))
    await ChecklistService.load_directory(world.app.state.sessionmaker, tmp_path)

    async def listed(on: str) -> dict[str, Any]:
        response = await world.get("inspector_a1", "/api/v1/checklists", params={"topic": "road_transport", "date": on})
        return next(c for c in response.json()["items"] if c["code"] == code)

    before = await listed("2022-12-31")
    assert (before["version"], before["superseded"]) == ("2020", False)
    missing_successor = await listed("2023-01-01")
    assert missing_successor["version"] == "2020" and missing_successor["superseded"] is True
    assert missing_successor["superseded_by"]["title"] == "测试标准（2023版）"
    assert "尚未载入" in missing_successor["warning"]

    _file(tmp_path, _checklist(code, "2023", effective_from=date(2023, 1, 1)))  # the successor, as data only
    await ChecklistService.load_directory(world.app.state.sessionmaker, tmp_path)
    assert (await listed("2022-12-31"))["version"] == "2020"
    after = await listed("2023-01-01")
    assert (after["version"], after["superseded"]) == ("2023", False)
    too_early = await world.get("inspector_a1", "/api/v1/checklists", params={"topic": "road_transport", "date": "2019-12-31"})
    assert code not in [c["code"] for c in too_early.json()["items"]]
    old = await world.get("inspector_a1", f"/api/v1/checklists/{checklist_id(code, '2020')}", params={"date": "2024-05-01"})
    assert old.json()["superseded"] is True and "版本 2023" in old.json()["warning"]


async def test_coal_standard_is_flagged_once_its_successor_is_in_force(world: World) -> None:
    async def coal(on: str) -> dict[str, Any]:
        response = await world.get("inspector_a1", "/api/v1/checklists", params={"topic": "mining", "date": on})
        return next(c for c in response.json()["items"] if c["code"] == "coal-mine-major")

    assert (await coal("2026-06-30"))["superseded"] is False
    flagged = await coal("2026-07-01")
    assert flagged["superseded"] is True
    assert flagged["superseded_by"]["document_number"] == "应急管理部令第21号"
    assert "80/81" in flagged["warning"]


@pytest.mark.parametrize("topic", CORE_TOPICS)
async def test_each_topic_answers_with_major_hazard_items(world: World, topic: str) -> None:
    response = await world.get("inspector_a1", "/api/v1/checklists", params={"topic": topic})
    assert response.status_code == 200
    checklists = response.json()["items"]
    assert {c["topic"] for c in checklists} == {topic}
    assert any(c["kind"] == "major" and c["major_item_count"] > 0 for c in checklists)
    assert any(c["kind"] == "routine" and c["item_count"] >= 10 for c in checklists)
    for summary in checklists:
        assert set(summary) >= {"id", "code", "topic", "version", "title", "item_count", "major_item_count"}


async def test_whole_checklist_with_etag_and_304(world: World) -> None:
    listed = await world.get("enterprise_a", "/api/v1/checklists", params={"topic": "hazardous_chemicals", "kind": "major"})
    hazchem = listed.json()["items"][0]
    first = await world.get("enterprise_a", f"/api/v1/checklists/{hazchem['id']}")
    assert first.status_code == 200
    body = first.json()
    assert len(body["items"]) == body["item_count"] == 20
    item = body["items"][0]
    assert set(item) >= {"code", "text", "legal_basis", "major_hazard", "rectify_days", "min_photos"}
    assert item["legal_basis"]["document"].startswith("化工和危险化学品")
    etag = first.headers["etag"]

    again = await world.get("enterprise_a", f"/api/v1/checklists/{hazchem['id']}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    weak = await world.get("enterprise_a", f"/api/v1/checklists/{hazchem['id']}", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    stale = await world.get("enterprise_a", f"/api/v1/checklists/{hazchem['id']}", headers={"If-None-Match": '"old"'})
    assert stale.status_code == 200


async def test_checklists_need_a_login_and_unknown_ids_are_404(world: World) -> None:
    assert_problem(await world.client.get("/api/v1/checklists"), 401)
    assert_problem(await world.get("inspector_a1", f"/api/v1/checklists/{uuid.uuid4()}"), 404, "checklist_not_found")
    for username in ("admin", "inspector_b", "legal_city", "enterprise_b"):
        assert (await world.get(username, "/api/v1/checklists")).status_code == 200
