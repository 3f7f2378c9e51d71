"""The accident look-back (安全生产法 第八十六条第三款): an accident, its approved report with measures, the
enterprise's progress, the evaluation a year on with a measure not done opening a hazard, the numbered 评估报告, its
publication without ID numbers, the due list, bad input, the completion race, scope, figures and the change feed."""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pypdf import PdfReader

from tests.helpers import World, assert_problem, ok, upload
from tests.media import jpeg

API = "/api/v1"
ID_NUMBER = "110101199003071234"
MOBILE = "13812345678"


def ago(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


async def record_accident(world: World, username: str = "inspector_a1", enterprise: str = "a", **extra: Any) -> dict[str, Any]:
    body = {
        "enterprise_id": str(world.enterprises[enterprise].id),
        "occurred_at": ago(400).isoformat(),
        "level": "larger",
        "deaths": 3,
        "injuries": 2,
        "direct_loss": 5_000_000,
        "summary": f"井下运输巷道发生冒顶事故。现场负责人负责人a（身份证号{ID_NUMBER}，手机{MOBILE}）组织撤离。",
        **extra,
    }
    response = await world.post(username, f"{API}/accidents", body)
    assert response.status_code == 201, response.text
    return response.json()


MEASURES = [
    {"text": "修订顶板管理制度并组织全员培训", "responsible": "企业a安全管理部"},
    {"text": "更换运输巷道锚杆支护", "responsible": "企业a生产技术部", "due_at": "2026-06-30"},
    {"text": "配备专职安全管理人员", "responsible": "负责人a"},
]


async def approve(world: World, accident_id: str, approved_days_ago: int, measures: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body = {
        "approved_at": ago(approved_days_ago).date().isoformat(),
        "approved_by": "某市人民政府",
        "document_no": "某政函〔2025〕12号",
        "measures": measures or MEASURES,
    }
    response = await world.post("inspector_a1", f"{API}/accidents/{accident_id}/report", body)
    assert response.status_code == 201, response.text
    return response.json()


async def photo(world: World, username: str, accident_id: str, color: tuple[int, int, int]) -> str:
    uploaded = await upload(world, username, jpeg(color=color), accident_id=accident_id)
    assert uploaded.status_code == 201, uploaded.text
    return uploaded.json()["id"]


async def evaluating(world: World, outcomes: tuple[str, ...] = ("done", "done", "done")) -> dict[str, Any]:
    """An accident of enterprise `a` under evaluation with a finding on every measure."""
    accident = await approve(world, (await record_accident(world))["id"], 330)
    aid = accident["id"]
    ok(await world.post("inspector_a1", f"{API}/accidents/{aid}/evaluation", {"started_at": datetime.now(UTC).isoformat()}))
    for measure, outcome in zip(accident["measures"], outcomes, strict=True):
        ok(await finding(world, aid, measure["id"], outcome))
    return accident


async def finding(world: World, accident_id: str, measure_id: str, outcome: str, **extra: Any) -> Any:
    body = {"measure_id": measure_id, "outcome": outcome, "note": f"现场核查：{outcome}", **extra}
    return await world.post("inspector_a1", f"{API}/accidents/{accident_id}/evaluation/findings", body)


def pdf_text(content: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


async def test_an_accident_look_back_end_to_end(world: World) -> None:
    accident = await record_accident(world)
    aid = accident["id"]
    assert accident["status"] == "recorded" and accident["level"] == "larger" and accident["measures"] == []

    reported = await approve(world, aid, 330)
    assert reported["status"] == "report_approved" and reported["evaluation_window_days"] == 60
    assert [m["seq"] for m in reported["measures"]] == [1, 2, 3]
    approved = datetime.fromisoformat(reported["approved_at"])
    due = datetime.fromisoformat(reported["evaluation_due"])
    assert 365 <= (due - approved).days <= 366 and not reported["evaluation_overdue"]
    m1, m2, m3 = (m["id"] for m in reported["measures"])

    # the enterprise reports progress on two measures, each with a photo uploaded to the accident
    for n, mid in enumerate((m1, m2)):
        evidence = await photo(world, "enterprise_a", aid, (10 + n, 20, 30))
        progress = await world.post(
            "enterprise_a", f"{API}/accidents/{aid}/measures/{mid}/progress", {"description": "已完成整改", "evidence_ids": [evidence]}
        )
        assert progress.status_code == 201, progress.text
        assert progress.json()["by_enterprise"] is True
    none = await world.post("enterprise_a", f"{API}/accidents/{aid}/measures/{m3}/progress", {"description": "无证据", "evidence_ids": []})
    assert_problem(none, 400, "validation_error", "evidence_ids")

    # listed in advance: approved 11 months ago, due within 60 days
    due_list = ok(await world.get("inspector_a1", f"{API}/evaluations/due")).json()
    assert [a["id"] for a in due_list["items"]] == [aid]

    started = ok(await world.post("inspector_a1", f"{API}/accidents/{aid}/evaluation", {"started_at": datetime.now(UTC).isoformat()}))
    assert started.json()["status"] == "evaluating" and started.json()["evaluation_finish_by"]
    early = await world.post("inspector_a1", f"{API}/accidents/{aid}/evaluation/complete", {"conclusion": "结论"})
    body = assert_problem(early, 409, "measure_unevaluated")
    assert sorted(body["measure_ids"]) == sorted([m1, m2, m3])

    assert ok(await finding(world, aid, m1, "done")).json()["hazard_id"] is None
    assert ok(await finding(world, aid, m2, "partly")).json()["hazard_id"] is None
    not_done = await finding(world, aid, m3, "not_done")
    assert not_done.status_code == 201, not_done.text
    hazard_id = not_done.json()["hazard_id"]
    hazard = ok(await world.get("inspector_a1", f"{API}/hazards/{hazard_id}")).json()
    assert hazard["status"] == "rectifying" and hazard["accident_id"] == aid and hazard["source"] == "accident_evaluation"
    assert hazard["enterprise_id"] == str(world.enterprises["a"].id) and hazard["deadline"]
    assert ok(await world.get("enterprise_a", f"{API}/hazards/{hazard_id}")).json()["id"] == hazard_id  # the enterprise's to fix

    accountability = [{"unit_or_person": f"某某（身份证号{ID_NUMBER}）", "reason": "未督促落实整改措施"}]
    completed = await world.post(
        "inspector_a1",
        f"{API}/accidents/{aid}/evaluation/complete",
        {"conclusion": "第1项已落实，第2项部分落实，第3项未落实，已责令限期整改。", "accountability": accountability},
    )
    assert completed.status_code == 200, completed.text
    detail = completed.json()
    assert detail["status"] == "evaluated" and detail["report_number"].startswith("district_a应急评估〔")
    assert [m["outcome"] for m in detail["measures"]] == ["done", "partly", "not_done"]
    assert len(detail["measures"][0]["progress"]) == 1 and detail["accountability"] == accountability
    assert [e["action"] for e in detail["timeline"]][-1] == "evaluation_completed"

    pdf = await world.get("enterprise_a", f"{API}/accidents/{aid}/documents/evaluation_report")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content)
    for words in ("事故整改和防范措施落实情况评估报告", "更换运输巷道锚杆支护", "未落实", "第八十六条第三款", "企业a"):
        assert words in text, words

    public = await world.client.get(f"{API}/public/evaluations")
    assert public.status_code == 200, public.text
    (item,) = public.json()["items"]
    assert item["report_number"] == detail["report_number"] and item["enterprise_name"] == "企业a"
    assert [m["outcome"] for m in item["measures"]] == ["done", "partly", "not_done"]
    assert ID_NUMBER not in public.text and MOBILE not in public.text and "负责人a" not in public.text
    assert "110101********1234" in public.text

    changes = ok(await world.get("enterprise_a", f"{API}/sync/changes")).json()["changes"]
    mine = [c for c in changes if c["entity"] == "accident" and c["id"] == aid]
    assert mine and mine[-1]["data"]["status"] == "evaluated"
    foreign = ok(await world.get("enterprise_b", f"{API}/sync/changes")).json()["changes"]
    assert not [c for c in foreign if c["entity"] == "accident"]


async def test_the_due_list_shows_what_falls_due_within_60_days(world: World) -> None:
    soon = (await approve(world, (await record_accident(world))["id"], 330))["id"]
    late = (await approve(world, (await record_accident(world, occurred_at=ago(500).isoformat()))["id"], 400))["id"]
    recent = (await approve(world, (await record_accident(world))["id"], 7))["id"]
    await record_accident(world)  # no approved report yet: nothing falls due
    items = ok(await world.get("inspector_a1", f"{API}/evaluations/due")).json()["items"]
    assert [a["id"] for a in items] == [late, soon]  # soonest (most overdue) first
    assert items[0]["evaluation_overdue"] is True and items[1]["evaluation_overdue"] is False
    assert recent not in [a["id"] for a in items]
    paged = ok(await world.get("inspector_a1", f"{API}/evaluations/due", params={"limit": 1})).json()
    assert [a["id"] for a in paged["items"]] == [late] and paged["next_cursor"]
    rest = ok(await world.get("inspector_a1", f"{API}/evaluations/due", params={"limit": 1, "cursor": paged["next_cursor"]})).json()
    assert [a["id"] for a in rest["items"]] == [soon]
    for outsider in ("inspector_other", "enterprise_b", "inspector_b"):
        assert ok(await world.get(outsider, f"{API}/evaluations/due")).json()["items"] == []


async def test_bad_input_is_422_naming_the_field(world: World) -> None:
    aid = (await record_accident(world))["id"]
    base = {"approved_at": ago(30).date().isoformat(), "approved_by": "某市人民政府", "document_no": "某政函〔2025〕1号"}
    path = f"{API}/accidents/{aid}/report"
    blank = await world.post("inspector_a1", path, {**base, "measures": [MEASURES[0], {"text": "   ", "responsible": "某部门"}]})
    assert_problem(blank, 422, "validation_error", "measures[1].text")
    assert_problem(await world.post("inspector_a1", path, {**base, "measures": []}), 422, "validation_error", "measures")
    future = {**base, "approved_at": (datetime.now(UTC) + timedelta(days=3)).date().isoformat(), "measures": MEASURES}
    assert_problem(await world.post("inspector_a1", path, future), 422, "validation_error", "approved_at")
    assert ok(await world.get("inspector_a1", f"{API}/accidents/{aid}")).json()["status"] == "recorded"  # nothing kept

    other = await approve(world, (await record_accident(world))["id"], 330)
    mine = await approve(world, aid, 330)
    ok(await world.post("inspector_a1", f"{API}/accidents/{aid}/evaluation", {"started_at": datetime.now(UTC).isoformat()}))
    assert_problem(await finding(world, aid, other["measures"][0]["id"], "done"), 422, "measure_not_found", "measure_id")
    assert_problem(await finding(world, aid, str(uuid.uuid4()), "done"), 422, "measure_not_found", "measure_id")
    before = await world.post("inspector_a1", f"{API}/accidents/{other['id']}/evaluation", {"started_at": ago(400).isoformat()})
    assert_problem(before, 422, "validation_error", "started_at")
    foreign_measure = f"{API}/accidents/{aid}/measures/{other['measures'][0]['id']}/progress"
    evidence = await photo(world, "inspector_a1", aid, (1, 1, 1))
    assert_problem(
        await world.post("inspector_a1", foreign_measure, {"description": "进展", "evidence_ids": [evidence]}), 404, "measure_not_found"
    )
    again = await world.post("inspector_a1", path, {**base, "measures": MEASURES})
    assert_problem(again, 409, "invalid_transition")  # the report is approved once
    assert len(mine["measures"]) == 3


async def test_completing_twice_at_once_one_wins(world: World) -> None:
    aid = (await evaluating(world))["id"]
    path = f"{API}/accidents/{aid}/evaluation/complete"
    first, second = await asyncio.gather(
        world.post("inspector_a1", path, {"conclusion": "措施均已落实"}),
        world.post("inspector_a2", path, {"conclusion": "措施均已落实。"}),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409], (first.text, second.text)
    loser = first if first.status_code == 409 else second
    assert loser.json()["code"] in ("invalid_transition", "concurrent_change")
    detail = ok(await world.get("inspector_a1", f"{API}/accidents/{aid}")).json()
    assert [e["action"] for e in detail["timeline"]].count("evaluation_completed") == 1
    # the winner sending again is answered as the first time
    winner, body = ("inspector_a1", "措施均已落实") if first.status_code == 200 else ("inspector_a2", "措施均已落实。")
    replay = await world.post(winner, path, {"conclusion": body})
    assert replay.status_code == 200 and replay.json()["report_number"] == detail["report_number"]


async def test_client_ids_make_creates_replayable(world: World) -> None:
    accident_id = str(uuid.uuid4())
    body = {
        "id": accident_id,
        "enterprise_id": str(world.enterprises["a"].id),
        "occurred_at": ago(10).isoformat(),
        "level": "general",
        "deaths": 0,
        "injuries": 1,
        "direct_loss": 1000,
        "summary": "机械伤害",
    }
    assert (await world.post("inspector_a1", f"{API}/accidents", body)).status_code == 201
    again = await world.post("inspector_a1", f"{API}/accidents", body)
    assert again.status_code == 200 and again.json()["id"] == accident_id
    assert_problem(await world.post("inspector_a1", f"{API}/accidents", {**body, "deaths": 1}), 409, "duplicate_conflict", "id")

    accident = await approve(world, accident_id, 5)
    ok(await world.post("inspector_a1", f"{API}/accidents/{accident_id}/evaluation", {"started_at": datetime.now(UTC).isoformat()}))
    fid = str(uuid.uuid4())
    mid = accident["measures"][0]["id"]
    first = await finding(world, accident_id, mid, "not_done", id=fid)
    assert first.status_code == 201, first.text
    replay = await finding(world, accident_id, mid, "not_done", id=fid)
    assert replay.status_code == 200 and replay.json() == first.json()
    assert_problem(await finding(world, accident_id, mid, "done", id=fid), 409, "duplicate_conflict", "id")
    # a new finding on the same measure is a new row; the hazard it opened is followed, not opened twice
    later = await finding(world, accident_id, mid, "not_done", note="复查仍未落实")
    assert later.status_code == 201 and later.json()["hazard_id"] == first.json()["hazard_id"]
    detail = ok(await world.get("inspector_a1", f"{API}/accidents/{accident_id}")).json()
    assert len(detail["measures"][0]["findings"]) == 2


async def test_scope_roles_and_figures(world: World) -> None:
    accident = await evaluating(world, ("done", "partly", "not_done"))
    aid = accident["id"]
    ok(await world.post("inspector_a1", f"{API}/accidents/{aid}/evaluation/complete", {"conclusion": "评估完成"}))
    await record_accident(world, level="general")
    await record_accident(world, "inspector_b", "b", level="major")

    for outsider in ("inspector_other", "enterprise_b", "inspector_b"):
        assert_problem(await world.get(outsider, f"{API}/accidents/{aid}"), 404, "accident_not_found")
        assert_problem(await world.get(outsider, f"{API}/accidents/{aid}/documents/evaluation_report"), 404, "accident_not_found")
    assert_problem(await upload(world, "enterprise_b", jpeg(color=(3, 3, 3)), accident_id=aid), 422, "accident_not_found", "accident_id")
    recorded = {"enterprise_id": str(world.enterprises["a"].id), "occurred_at": ago(1).isoformat(), "level": "general"}
    as_enterprise = await world.post(
        "enterprise_a", f"{API}/accidents", {**recorded, "deaths": 0, "injuries": 0, "direct_loss": 0, "summary": "x"}
    )
    assert_problem(as_enterprise, 403, "role_forbidden")
    foreign = await world.post(
        "inspector_a1",
        f"{API}/accidents",
        {**recorded, "enterprise_id": str(world.enterprises["other"].id), "deaths": 0, "injuries": 0, "direct_loss": 0, "summary": "x"},
    )
    assert_problem(foreign, 422, "enterprise_not_found", "enterprise_id")
    unevaluated = await record_accident(world, level="general")
    not_yet = await world.get("inspector_a1", f"{API}/accidents/{unevaluated['id']}/documents/evaluation_report")
    assert_problem(not_yet, 409, "document_unavailable")

    listed = ok(await world.get("enterprise_a", f"{API}/accidents", params={"level": "larger"})).json()["items"]
    assert [a["id"] for a in listed] == [aid]

    by_level = ok(await world.get("inspector_city", f"{API}/stats/accidents")).json()
    groups = {g["key"]: g for g in by_level["groups"]}
    assert set(groups) == {"larger", "general", "major"}
    assert groups["larger"]["accidents"] == 1 and groups["larger"]["deaths"] == 3
    assert groups["larger"]["by_status"] == {"evaluated": 1} and groups["larger"]["evaluations_completed"] == 1
    assert groups["larger"]["findings"] == {"done": 1, "partly": 1, "not_done": 1}
    assert groups["general"]["accidents"] == 2 and groups["general"]["by_status"] == {"recorded": 2}
    by_status = ok(await world.get("inspector_a1", f"{API}/stats/accidents", params={"group_by": "status"})).json()
    assert {g["key"]: g["accidents"] for g in by_status["groups"]} == {"evaluated": 1, "recorded": 2}
    assert ok(await world.get("inspector_other", f"{API}/stats/accidents")).json()["groups"] == []
    by_enterprise = ok(await world.get("admin", f"{API}/stats/accidents", params={"group_by": "enterprise"})).json()
    assert {g["name"]: g["accidents"] for g in by_enterprise["groups"]} == {"企业a": 3, "企业b": 1}
