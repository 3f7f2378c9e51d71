"""Checklists: the shipped data against the official counts, the loader's validation, immutability of published
versions, choosing the version in force by date, and the API with ETag round trips."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backend.checklists.loader import ChecklistFileInvalid, checklist_files, parse_checklist_file
from backend.checklists.models import ChecklistWithdrawal
from backend.checklists.service import ChecklistService, PublishedVersionChanged, checklist_id
from backend.clock import agency_zone, local_today
from backend.hazards.models import Hazard
from backend.inspections.documents import rectification_requirements
from backend.settings import PROJECT_ROOT
from tests.helpers import World, assert_problem, upload
from tests.media import jpeg

DATA = PROJECT_ROOT / "checklists"
README = (DATA / "README.md").read_text(encoding="utf-8")
SOURCES = (DATA / "SOURCES.md").read_text(encoding="utf-8")

# Items of each published version as the API serves them, against the official counts of the standards.
SERVED_COUNTS = {
    "metal-nonmetal-mine-major@2022": 64,  # 地下 32, 露天 13, 尾矿库 19 (矿安〔2022〕88号)
    "metal-nonmetal-mine-supplement@2024": 8,  # 4 + 2 + 2 (矿安〔2024〕41号)
    "industry-trade-major@2023": 64,  # 管理类 3, 行业类 47, 专项类 14 (部令第10号)
    "construction-major@2024": 53,  # 18 articles, 51 numbered items + 2 whole-article criteria (建质规〔2024〕5号)
    "coal-mine-major@2026": 123,  # 17 aspects (部令第21号)
    "coal-mine-major@2020": 81,  # 15 aspects (部令第4号), with 第十八条（十一）
    "hazchem-major@2017": 20,
}
FIRE_DIRECT_ELEMENTS = 10  # GB 35181-2017 6.1–6.10 (§4)
CORE_TOPICS = ("mining", "hazardous_chemicals", "construction", "fire_safety")


@pytest.fixture(scope="module")
def shipped() -> dict[str, Any]:
    return {path.name: parse_checklist_file(path) for path in checklist_files(DATA)}


def test_every_shipped_file_is_valid_and_short_lists_are_explained(shipped: dict[str, Any]) -> None:
    assert len(shipped) >= 14
    for name, checklist in shipped.items():
        if checklist.official_item_count is not None and len(checklist.items) < checklist.official_item_count:
            assert name.removesuffix(".yaml") in README and "NOT FOUND" in README, f"{name}: gap not listed in README"
    fire = shipped["fire-major@2017.yaml"]
    assert len([i for i in fire.items if i.code.startswith("FS-6-")]) == FIRE_DIRECT_ELEMENTS
    assert "coal-mine-major@2021.yaml" not in shipped and shipped["coal-mine-major@2020.yaml"].version == "2020"


def test_the_data_is_self_contained(shipped: dict[str, Any]) -> None:
    """Every source a file names is listed with its address in SOURCES.md; nothing points outside the repository."""
    for path in [*DATA.iterdir(), PROJECT_ROOT / "README.md"]:
        text = path.read_text(encoding="utf-8")
        assert "/work/" not in text and "../shared" not in text, path.name
    for name, checklist in shipped.items():
        tags = set(checklist.sources) | set(re.findall(r"SRC-[A-Z]+\d+", (DATA / name).read_text(encoding="utf-8")))
        for tag in tags:
            entry = re.search(rf"^- \[{tag}\] (.+)$", SOURCES, re.MULTILINE)
            assert entry is not None, f"{name}: {tag} missing from SOURCES.md"


def test_every_item_cites_its_basis_and_majors_follow_the_standards(shipped: dict[str, Any]) -> None:
    items_by_code = {c.code: set() for c in shipped.values()}
    for checklist in shipped.values():
        items_by_code[checklist.code] |= {i.code for i in checklist.items}
    for name, checklist in shipped.items():
        for item in checklist.items:
            basis = item.legal_basis
            assert basis.document and (basis.article or basis.note), (name, item.code)
            for link in item.major_standard_items:  # a link names a shipped standard and one of its items
                assert link.checklist in items_by_code and (link.item is None or link.item in items_by_code[link.checklist]), link
        if checklist.kind == "major" and checklist.code != "fire-major":
            assert all(i.major_hazard for i in checklist.items), name
        if checklist.kind == "routine":
            assert all(i.major_hazard == bool(i.major_standard_items) for i in checklist.items), name
        if len(checklist.items) < 10:  # only where the facts run out, and the README says so
            assert f"`{name}`" in README, name
    fire = shipped["fire-major@2017.yaml"]
    assert all(i.major_hazard == i.code.startswith("FS-6-") for i in fire.items)  # 7.x count together, never alone
    on = [r for r in fire.combination_rules if r.enabled]
    assert [(r.site_type, r.threshold, r.verified) for r in on] == [("crowded_place", 3, True)]
    assert all(not r.verified for r in fire.combination_rules if not r.enabled) and len(fire.combination_rules) > 1


def test_routine_items_cite_duties_not_penalties_or_definitions(shipped: dict[str, Any]) -> None:
    for name, checklist in shipped.items():
        if checklist.kind != "routine":
            continue
        assert checklist.effective_from is None and checklist.issuing_body is None, name
        by_number = {int(i.code[-2:]): i for i in checklist.items}
        assert by_number[7].legal_basis.article == "第四十一条"  # not 第一百一十八条, the government's duty
        assert by_number[9].legal_basis.article == "第四十一条"  # not 16号令第三条, the definitions
        for n in (16, 17, 18):
            basis = by_number[n].legal_basis
            assert basis.article is None and basis.penalty == "第九十九条" and "未核实" in (basis.note or ""), (name, n)
        assert (by_number[19].legal_basis.article, by_number[19].legal_basis.penalty) == ("第四十一条", "第一百零二条")
        for item in checklist.items:
            assert item.legal_basis.article not in ("第九十九条", "第一百零二条", "第一百一十八条"), (name, item.code)
    for code in ("IT-R-18", "MIN-R-18", "HC-R-18", "CS-R-18"):
        item = next(i for c in shipped.values() for i in c.items if i.code == code)
        assert item.major_hazard and item.major_standard_items, code


async def test_counts_are_served_as_the_standards_give_them(world: World) -> None:
    listed = (await world.get("inspector_a1", "/api/v1/checklists", params={"all_versions": "true"})).json()["items"]
    served = {f"{c['code']}@{c['version']}": c for c in listed}
    for key, count in SERVED_COUNTS.items():
        assert served[key]["item_count"] == count, key
        whole = (await world.get("inspector_a1", f"/api/v1/checklists/{served[key]['id']}")).json()
        assert len(whole["items"]) == count, key
        if served[key]["official_item_count"] is not None:
            assert served[key]["official_item_count"] == count, key
    assert "coal-mine-major@2021" not in served


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


async def listed(world: World, topic: str, on: str, kind: str | None = None) -> dict[str, Any]:
    params = {"topic": topic, "date": on} | ({"kind": kind} if kind else {})
    response = await world.get("inspector_a1", "/api/v1/checklists", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_version_in_force_is_chosen_by_date(world: World, tmp_path: Path) -> None:
    code = f"dated-{uuid.uuid4().hex[:8]}"
    successor = {"title": "测试标准（2023版）", "document_number": "测试〔2023〕1号", "effective_from": date(2023, 1, 1)}
    _file(tmp_path, _checklist(code, "2020", effective_to=date(2023, 1, 1), superseded_by=successor))
    await ChecklistService.load_directory(world.app.state.sessionmaker, tmp_path)

    async def offered(on: str) -> list[dict[str, Any]]:
        return [c for c in (await listed(world, "road_transport", on))["items"] if c["code"] == code]

    [before] = await offered("2022-12-31")
    assert (before["version"], before["in_force"], before["superseded"]) == ("2020", True, False)
    assert (before["effective_to"], before["last_day_in_force"]) == ("2023-01-01", "2022-12-31")
    # The successor is in force but not loaded: the old version is not offered, a notice says what is missing.
    assert await offered("2023-01-01") == []
    notices = (await listed(world, "road_transport", "2023-01-01"))["notices"]
    notice = next(n for n in notices if n["checklist_code"] == code)
    assert notice["code"] == "standard_unavailable" and notice["document_number"] == "测试〔2023〕1号"
    assert "POST /api/v1/checklists" in notice["how_to_load"] and "尚未载入" in notice["message"]
    old = await world.get("inspector_a1", f"/api/v1/checklists/{checklist_id(code, '2020')}", params={"date": "2023-01-01"})
    assert old.json()["superseded"] is True and old.json()["in_force"] is False and "2022-12-31" in old.json()["warning"]

    _file(tmp_path, _checklist(code, "2023", effective_from=date(2023, 1, 1)))  # the successor, as data only
    await ChecklistService.load_directory(world.app.state.sessionmaker, tmp_path)
    assert [c["version"] for c in await offered("2022-12-31")] == ["2020"]
    assert [c["version"] for c in await offered("2023-01-01")] == ["2023"]
    assert code not in [n["checklist_code"] for n in (await listed(world, "road_transport", "2023-01-01"))["notices"]]
    assert await offered("2019-12-31") == []
    replaced = await world.get("inspector_a1", f"/api/v1/checklists/{checklist_id(code, '2020')}", params={"date": "2024-05-01"})
    assert replaced.json()["superseded"] is True and "版本 2023" in replaced.json()["warning"]


async def test_successors_take_over_on_their_first_day(world: World) -> None:
    """The issue's windows: coal 2020 ends 2026-06-30, construction 2022 ends 2024-12-12, GB 35181-2017 2025-10-31."""

    async def major(topic: str, code: str, on: str) -> list[str]:
        return [c["version"] for c in (await listed(world, topic, on, "major"))["items"] if c["code"] == code]

    assert await major("mining", "coal-mine-major", "2026-06-30") == ["2020"]
    assert await major("mining", "coal-mine-major", "2026-07-01") == ["2026"]
    assert await major("mining", "coal-mine-major", "2021-01-01") == ["2020"]
    assert await major("mining", "coal-mine-major", "2020-12-31") == []
    assert await major("construction", "construction-major", "2024-12-12") == ["2022"]
    assert await major("construction", "construction-major", "2024-12-13") == ["2024"]
    assert await major("fire_safety", "fire-major", "2025-10-31") == ["2017"]

    coal = next(c for c in (await listed(world, "mining", "2026-06-30"))["items"] if c["code"] == "coal-mine-major")
    assert coal["last_day_in_force"] == "2026-06-30" and coal["effective_to"] == "2026-07-01" and coal["item_count"] == 81
    construction = next(c for c in (await listed(world, "construction", "2024-01-01"))["items"] if c["kind"] == "major")
    assert construction["effective_from"] is None and "施行日期未核实" in construction["warning"]

    fire = await listed(world, "fire_safety", "2025-11-01")
    assert [(c["code"], c["kind"]) for c in fire["items"]] == [("fire-routine", "routine")]
    [notice] = fire["notices"]
    assert notice["code"] == "standard_unavailable" and notice["document_number"] == "GB 35181-2025"
    assert notice["effective_from"] == "2025-11-01" and "safety import-checklist" in notice["how_to_load"]
    routine = fire["items"][0]
    assert routine["effective_from"] is None and "施行日期未核实" in routine["warning"] and "发布机关未核实" in routine["warning"]
    assert (await listed(world, "fire_safety", "2025-10-31"))["notices"] == []


async def test_a_withdrawn_version_is_no_longer_offered_but_kept(world: World, tmp_path: Path) -> None:
    """As the migration does for coal 部令第4号, published as version '2021' before it was named '2020': the old row
    stays for the inspections that used it and is withdrawn, so it is not offered next to its new name."""
    code = f"renamed-{uuid.uuid4().hex[:8]}"
    sessionmaker = world.app.state.sessionmaker
    for version in ("2020", "2021"):  # the same standard under two names, the old name published last
        _file(tmp_path, _checklist(code, version, effective_to=date(2026, 7, 1)), name=f"{code}@{version}.yaml")
    await ChecklistService.load_directory(sessionmaker, tmp_path)

    async def offered() -> list[str]:
        return [c["version"] for c in (await listed(world, "road_transport", "2022-01-01"))["items"] if c["code"] == code]

    assert await offered() == ["2021"]  # a tie on dates goes to the latest published
    old_id = checklist_id(code, "2021")
    async with sessionmaker() as session:
        session.add(ChecklistWithdrawal(checklist_id=old_id, reason="renamed", replaced_by=checklist_id(code, "2020")))
        await session.commit()
    assert await offered() == ["2020"]
    kept = (await world.get("inspector_a1", f"/api/v1/checklists/{old_id}")).json()
    assert kept["withdrawn"] is True and "已撤回" in kept["warning"] and kept["item_count"] == 3


@pytest.mark.parametrize("topic", CORE_TOPICS)
async def test_each_topic_answers_with_major_hazard_items(world: World, topic: str) -> None:
    on = "2025-10-31"  # the last day GB 35181-2017 is in force, so every core topic has a major list that day
    response = await world.get("inspector_a1", "/api/v1/checklists", params={"topic": topic, "date": on})
    assert response.status_code == 200
    checklists = response.json()["items"]
    assert {c["topic"] for c in checklists} == {topic}
    assert any(c["kind"] == "major" and c["major_item_count"] > 0 for c in checklists)
    assert any(c["kind"] == "routine" and c["item_count"] >= 10 for c in checklists)
    for summary in checklists:
        assert set(summary) >= {"id", "code", "topic", "version", "title", "item_count", "major_item_count", "in_force"}
        assert summary["in_force"] is True


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


def _refusal(tmp_path: Path, data: dict[str, Any], expect_field: str, expect_in_line: str) -> None:
    """The file is refused with an error naming the field and the line it concerns."""
    path = _file(tmp_path, data)
    with pytest.raises(ChecklistFileInvalid) as caught:
        parse_checklist_file(path)
    error = next(e for e in caught.value.errors if e.field == expect_field)
    assert error.line is not None and expect_in_line in path.read_text(encoding="utf-8").splitlines()[error.line - 1], error
    assert str(error).startswith(f"{path.name}:{error.line}: {expect_field}: ")


def test_bad_files_are_refused_with_their_line(tmp_path: Path) -> None:
    missing = _checklist("no-title")
    del missing["items"][2]["verified"]
    _refusal(tmp_path, missing, "items[2].verified", "T-3")
    duplicate = _checklist("dup-line")
    duplicate["items"][2]["code"] = "T-1"
    _refusal(tmp_path, duplicate, "items[2].code", "code: T-1")
    _refusal(tmp_path, _checklist("bad-topic", topic="space_travel"), "topic", "space_travel")
    no_basis = _checklist("no-basis")
    del no_basis["items"][1]["legal_basis"]
    _refusal(tmp_path, no_basis, "items[1].legal_basis", "T-2")
    no_article = _checklist("no-article")
    no_article["items"][1]["legal_basis"]["article"] = None  # an article may be left out only with a note saying why
    _refusal(tmp_path, no_article, "items[1].legal_basis", "document:")  # the first line of the basis
    rule = {"site_type": "crowded_place", "applies_to": "人员密集场所", "rule": "测试", "elements": ["T-1", "T-9"]}
    _refusal(
        tmp_path,
        _checklist("bad-rule", combination_rules=[rule | {"threshold": 1, "verified": True, "enabled": True}]),
        "combination_rules[0].elements[1]",
        "T-9",
    )


def _upload_file(world: World, username: str, content: bytes, name: str = "standard.yaml") -> Any:
    files = {"file": (name, content, "application/yaml")}
    return world.client.post("/api/v1/checklists", files=files, headers=world.headers(username))


async def test_an_agency_loads_a_standard_by_yaml_and_inspections_use_it(world: World) -> None:
    code = f"imported-{uuid.uuid4().hex[:8]}"
    data = _checklist(code, "2025", topic="fire_safety", kind="major", effective_from=date(2025, 11, 1))
    for item in data["items"]:
        item["major_hazard"] = True
    content = yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode()

    assert_problem(await _upload_file(world, "inspector_a1", content), 403, "role_forbidden")
    first = await _upload_file(world, "admin", content)
    assert first.status_code == 201, first.text
    assert first.json()["id"] == str(checklist_id(code, "2025")) and first.json()["created"] is True
    again = await _upload_file(world, "admin", content)
    assert again.status_code == 200 and again.json()["created"] is False
    data["items"][0]["text"] = "改过的检查项"
    changed = await _upload_file(world, "admin", yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode())
    assert_problem(changed, 409, "checklist_version_published", field="version")
    served = (await world.get("inspector_a1", f"/api/v1/checklists/{first.json()['id']}")).json()
    assert served["items"][0]["text"] == "测试检查项1"  # immutable: the first content stays

    offered = (await listed(world, "fire_safety", "2025-12-01"))["items"]
    assert code in [c["code"] for c in offered]
    inspection = await world.post(
        "inspector_a1",
        "/api/v1/inspections",
        {
            "enterprise_id": str(world.enterprises["a"].id),
            "checklist_ids": [first.json()["id"]],
            "inspector_ids": [str(world.users["inspector_a2"].id)],
            "kind": "routine",
            "inspection_date": "2025-12-01",
        },
    )
    assert inspection.status_code == 201, inspection.text
    assert inspection.json()["checklist_ids"] == [first.json()["id"]] and inspection.json()["inspection_date"] == "2025-12-01"


async def test_a_bad_upload_is_a_422_naming_field_and_line(world: World) -> None:
    data = _checklist(f"broken-{uuid.uuid4().hex[:8]}")
    data["items"][1]["code"] = "T-1"
    response = await _upload_file(world, "admin", yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode())
    body = assert_problem(response, 422, "checklist_invalid", field="file.items[1].code")
    assert body["line"] > 1 and "T-1 appears twice" in body["detail"] and body["errors"][0]["line"] == body["line"]
    syntax = await _upload_file(world, "admin", b"code: x\nitems: [\n  - {code: A\n")
    assert assert_problem(syntax, 422, "checklist_invalid", field="file")["line"] is not None
    assert_problem(await _upload_file(world, "admin", b""), 422)


def test_the_command_line_import_prints_file_line_field(tmp_path: Path, settings: Any) -> None:
    bad = _checklist(f"cli-{uuid.uuid4().hex[:8]}", topic="space_travel")
    path = _file(tmp_path, bad, name="official.yaml")
    safety = Path(sys.executable).parent / "safety"
    refused = subprocess.run([safety, "import-checklist", str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 1, refused.stderr
    assert re.search(rf"^{re.escape(str(path))}:\d+: topic: ", refused.stderr, re.MULTILINE), refused.stderr
    good = _file(tmp_path, _checklist(bad["code"]), name="official.yaml")
    published = subprocess.run([safety, "import-checklist", str(good)], capture_output=True, text=True, timeout=120, check=False)
    assert published.returncode == 0 and "published official.yaml" in published.stdout, published.stderr
    again = subprocess.run([safety, "import-checklist", str(good)], capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0 and "unchanged" in again.stdout


async def _id_of(world: World, topic: str, code: str, version: str) -> str:
    listed_all = (await world.get("inspector_a1", "/api/v1/checklists", params={"topic": topic, "all_versions": "true"})).json()
    return next(c["id"] for c in listed_all["items"] if (c["code"], c["version"]) == (code, version))


async def _inspect(world: World, checklist_ids: list[str], on: str | None, **extra: Any) -> Any:
    body = {
        "enterprise_id": str(world.enterprises["a"].id),
        "checklist_ids": checklist_ids,
        "inspector_ids": [str(world.users["inspector_a2"].id)],
        "kind": "routine",
        **({"inspection_date": on} if on else {}),
        **extra,
    }
    return await world.post("inspector_a1", "/api/v1/inspections", body)


async def test_an_inspection_gets_the_versions_in_force_on_its_date(world: World) -> None:
    coal_2020 = await _id_of(world, "mining", "coal-mine-major", "2020")
    coal_2026 = await _id_of(world, "mining", "coal-mine-major", "2026")
    fire_2017 = await _id_of(world, "fire_safety", "fire-major", "2017")

    august = await listed(world, "mining", "2026-08-01", "major")
    assert coal_2026 in [c["id"] for c in august["items"]] and coal_2020 not in [c["id"] for c in august["items"]]
    assert (await _inspect(world, [coal_2026], "2026-08-01")).status_code == 201
    assert_problem(await _inspect(world, [coal_2020], "2026-08-01"), 422, "checklist_not_in_force", field="checklist_ids")

    june = await listed(world, "mining", "2026-06-01", "major")
    assert coal_2020 in [c["id"] for c in june["items"]] and coal_2026 not in [c["id"] for c in june["items"]]
    assert (await _inspect(world, [coal_2020], "2026-06-01")).json()["inspection_date"] == "2026-06-01"
    assert_problem(await _inspect(world, [coal_2026], "2026-06-01"), 422, "checklist_not_in_force", field="checklist_ids")

    assert_problem(await _inspect(world, [fire_2017], "2025-12-01"), 422, "checklist_not_in_force", field="checklist_ids")
    assert (await _inspect(world, [fire_2017], "2025-10-31")).status_code == 201
    today = await _inspect(world, [coal_2026], None)  # no date: today in the agencies' zone (after 2026-07-01 here)
    assert today.status_code == 201 and today.json()["inspection_date"] == local_today().isoformat()
    assert_problem(await _inspect(world, [coal_2026], "2100-01-01"), 400, field="inspection_date")


ATTENDEES = [
    {"role": "principal", "name": "王主任"},
    {"role": "safety_manager", "name": "李安全"},
    {"role": "operator", "name": "赵师傅"},
]


async def _submit_with_findings(world: World, checklist_id_: str, on: str, findings: dict[str, dict[str, Any]], **extra: Any) -> Any:
    """An inspection where `findings` are hazards (each with a photo) and every other item is compliant."""
    created = await _inspect(world, [checklist_id_], on, **extra)
    assert created.status_code == 201, created.text
    iid = created.json()["id"]
    items = (await world.get("inspector_a1", f"/api/v1/checklists/{checklist_id_}")).json()["items"]
    results = []
    for item in items:
        if item["code"] in findings:
            photo = (await upload(world, "inspector_a1", jpeg(), inspection_id=iid)).json()
            results.append(
                {"checklist_id": checklist_id_, "item_code": item["code"], "outcome": "hazard", "evidence_ids": [photo["id"]]}
                | findings[item["code"]]
            )
        else:
            results.append({"checklist_id": checklist_id_, "item_code": item["code"], "outcome": "compliant"})
    assert (await world.put("inspector_a1", f"/api/v1/inspections/{iid}/results", {"results": results})).status_code == 200
    done = await world.post("inspector_a1", f"/api/v1/inspections/{iid}/submit", {"attendees": ATTENDEES})
    assert done.status_code == 200, done.text
    return [(await world.get("inspector_a1", f"/api/v1/hazards/{h}")).json() for h in done.json()["hazard_ids"]]


async def test_fire_comprehensive_elements_make_a_major_hazard_only_together(world: World) -> None:
    fire = await _id_of(world, "fire_safety", "fire-major", "2017")
    crowded = {"site_types": ["crowded_place"]}
    assert_problem(await _inspect(world, [fire], "2025-10-01", site_types=["moon_base"]), 422, "unknown_site_type", field="site_types")

    two = await _submit_with_findings(world, fire, "2025-10-01", {"FS-7-3-1": {}, "FS-7-3-2": {}}, **crowded)
    assert sorted(h["level"] for h in two) == ["general", "general"]

    three = await _submit_with_findings(world, fire, "2025-10-01", {"FS-7-3-1": {}, "FS-7-3-2": {}, "FS-7-3-6": {}}, **crowded)
    assert sorted(h["level"] for h in three) == ["major", "major", "major"]
    assert all("综合判定" in h["timeline"][0]["note"] and "3 项" in h["timeline"][0]["note"] for h in three)

    # Without the site type no rule applies; the unverified rules are off.
    elsewhere = await _submit_with_findings(world, fire, "2025-10-01", {"FS-7-3-1": {}, "FS-7-3-2": {}, "FS-7-3-6": {}})
    assert sorted(h["level"] for h in elsewhere) == ["general", "general", "general"]


async def test_a_finding_ordered_immediately(world: World) -> None:
    routine = (await listed(world, "mining", local_today().isoformat(), "routine"))["items"][0]["id"]
    [hazard] = await _submit_with_findings(
        world, routine, None, {"MIN-R-03": {"hazard": {"level": "general", "description": "立即整改", "rectify_days": 0}}}
    )
    deadline = datetime.fromisoformat(hazard["deadline"]).astimezone(agency_zone())
    assert deadline.date() == local_today() and "责令立即排除" in hazard["timeline"][0]["note"]


def test_rectification_order_cites_article_65_only_where_it_applies() -> None:
    general, major = Hazard(level="general", description="a"), Hazard(level="major", description="b")
    deadlines_only = rectification_requirements([general], [False])
    assert len(deadlines_only) == 1 and "第一百零二条" in deadlines_only[0] and "第六十五条" not in deadlines_only[0]
    immediate = rectification_requirements([general, general], [True, False])
    assert "第六十五条" in immediate[0] and "立即排除第1项" in immediate[0] and "第2项" in immediate[1]
    majors = rectification_requirements([major], [False])
    assert "第六十五条" in majors[1] and "撤出作业人员、暂时停产停业或停止使用" in majors[1]
