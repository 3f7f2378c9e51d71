"""A phone that lost an answer sends the same step again: every hazard and case action answers as the first time,
does nothing twice, and an id reused for other content is a 409 that says so."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from backend.accidents.models import AccidentEvent
from backend.enforcement.models import CaseEvent, CaseRecord, Decision, LegalReview
from backend.hazards.models import HazardEvent
from tests.helpers import World, assert_problem, ok
from tests.test_accidents import MEASURES, ago, photo, record_accident
from tests.test_enforcement import MAJOR_FINE, open_case, record
from tests.test_hazards import FUTURE, LATER, PLAN, act, proof, report


async def timeline_count(world: World, model: Any, owner: Any, owner_id: str, action: str) -> int:
    async with world.app.state.sessionmaker() as session:
        query = select(func.count()).select_from(model).where(owner == uuid.UUID(owner_id), model.action == action)
        return int((await session.execute(query)).scalar_one())


async def send_twice(world: World, username: str, path: str, body: dict[str, Any] | None) -> tuple[Any, Any]:
    first = await world.post(username, path, body)
    again = await world.post(username, path, body)
    assert first.status_code in (200, 201), first.text
    assert again.status_code == 200, again.text
    return first, again


async def test_every_hazard_step_replayed_answers_as_the_first_time(world: World, lookback_now: Any) -> None:
    hid = (await report(world, level="major"))["id"]
    steps: list[tuple[str, str, dict[str, Any], str]] = [
        ("inspector_a1", "order", {"deadline": FUTURE, "measures": "立即整改"}, "ordered"),
        ("enterprise_a", "governance-plan", PLAN, "plan_submitted"),
        ("enterprise_a", "rectifications", await proof(world, hid), "rectification_submitted"),
        ("inspector_a1", "review", {"decision": "accept", "opinion": "整改到位"}, "accepted"),
        ("inspector_a1", "lookback", {"outcome": "recurred", "note": "隐患复发"}, "lookback_recurred"),
        ("inspector_a1", "order", {"deadline": LATER, "measures": "延长整改期限"}, "extended"),
    ]
    for username, endpoint, body, action in steps:
        first, again = await send_twice(world, username, f"/api/v1/hazards/{hid}/{endpoint}", body)
        assert again.json() == first.json(), endpoint  # the same answer, the current state unchanged
        assert await timeline_count(world, HazardEvent, HazardEvent.hazard_id, hid, action) == 1, action


async def test_a_client_id_makes_a_step_replayable_and_other_content_under_it_a_conflict(world: World) -> None:
    hid = (await report(world, level="major"))["id"]
    ok(await act(world, "inspector_a1", hid, "order", {"deadline": FUTURE, "measures": "立即整改"}))
    step_id = str(uuid.uuid4())
    plan = {**PLAN, "id": step_id}
    first = await act(world, "enterprise_a", hid, "governance-plan", plan)
    assert first.status_code == 201, first.text
    # a revised plan from another phone in between: without the id, the replay would no longer be the latest step
    revised = await act(world, "enterprise_a", hid, "governance-plan", {**PLAN, "objective": "修订后的治理目标"})
    assert revised.status_code == 201
    again = await act(world, "enterprise_a", hid, "governance-plan", plan)
    assert again.status_code == 200 and again.json() == first.json()
    other = await act(world, "enterprise_a", hid, "governance-plan", {**plan, "funds": 1})
    assert_problem(other, 409, "duplicate_conflict", field="id")
    elsewhere = (await report(world, level="major"))["id"]
    ok(await act(world, "inspector_a1", elsewhere, "order", {"deadline": FUTURE, "measures": "立即整改"}))
    assert_problem(await act(world, "enterprise_a", elsewhere, "governance-plan", plan), 409, "duplicate_conflict", field="id")
    assert await timeline_count(world, HazardEvent, HazardEvent.hazard_id, hid, "plan_submitted") == 2


async def test_every_case_step_replayed_answers_as_the_first_time(world: World) -> None:
    cid = (await open_case(world))["id"]
    step = {"id": str(uuid.uuid4()), "occurred_at": "2026-11-29T09:30:00+08:00"}
    first = await record(world, cid, "note", "现场记录", **step)
    again = await record(world, cid, "note", "现场记录", **step)
    assert first.status_code == 201 and again.status_code == 200 and again.json() == first.json()

    base = f"/api/v1/cases/{cid}"
    drafted, drafted_again = await send_twice(world, "inspector_a1", f"{base}/decision", MAJOR_FINE)
    assert drafted_again.json() == drafted.json() and drafted.json()["status"] == "legal_review"
    reviewed, reviewed_again = await send_twice(world, "legal_city", f"{base}/legal-review", {"decision": "approve", "opinion": "同意"})
    assert reviewed_again.json() == reviewed.json()
    beyond_the_limit = (datetime.now(UTC) + timedelta(days=120)).date().isoformat()
    until = {"until": beyond_the_limit, "reason": "案情复杂", "approved_by": "局长张某"}
    extended, extended_again = await send_twice(world, "inspector_a1", f"{base}/extension", until)
    assert extended_again.json() == extended.json()
    notified, notified_again = await send_twice(world, "inspector_a1", f"{base}/notify", {})
    assert notified_again.json() == notified.json() and notified.json()["status"] == "notified"
    waiver = {"id": str(uuid.uuid4()), "content": "书面放弃陈述、申辩和听证权利", "waived": True}
    stated, stated_again = await send_twice(world, "enterprise_a", f"{base}/statements", waiver)
    assert stated_again.json() == stated.json()
    discussion = {"held_at": "2026-11-29T10:00:00+08:00", "participants": ["局长", "副局长"], "conclusion": "同意"}
    discussed, discussed_again = await send_twice(world, "leader_city", f"{base}/collective-discussion", discussion)
    assert discussed_again.json() == discussed.json()
    approved, approved_again = await send_twice(world, "leader_city", f"{base}/approve", {"opinion": "同意"})
    assert approved_again.json() == approved.json()
    decided, decided_again = await send_twice(world, "inspector_a1", f"{base}/decide", None)
    assert decided_again.json() == decided.json() and decided.json()["status"] == "decided"

    async with world.app.state.sessionmaker() as session:
        for model in (Decision, LegalReview):
            count = (await session.execute(select(func.count()).select_from(model).where(model.case_id == uuid.UUID(cid)))).scalar_one()
            assert count == 1, model
        notes = select(func.count()).select_from(CaseRecord).where(CaseRecord.case_id == uuid.UUID(cid))
        # the note, the notices, the waiver, the discussion, the approval, the decision and its document, once each
        assert (await session.execute(notes)).scalar_one() == 8
    for action in ("major_decision_drafted", "approved", "time_limit_extended", "notified", "collective_discussion", "decided"):
        assert await timeline_count(world, CaseEvent, CaseEvent.case_id, cid, action) == 1, action
    assert len(decided.json()["documents"]) == 3  # 告知书, 听证告知书, 决定书


async def test_a_new_step_with_new_content_is_not_taken_for_a_replay(world: World) -> None:
    cid = (await open_case(world))["id"]
    base = f"/api/v1/cases/{cid}"
    minor = {"measures": [{"type": "order_rectification", "basis_id": "AQSCF-97-5"}], "facts": "事实", "reasoning": "理由"}
    ok(await world.post("inspector_a1", f"{base}/decision", minor))
    second = await world.post("inspector_a1", f"{base}/decision", {**minor, "reasoning": "补充理由"})
    assert second.status_code == 200
    assert await timeline_count(world, CaseEvent, CaseEvent.case_id, cid, "decision_drafted") == 2


async def test_every_accident_step_replayed_answers_as_the_first_time(world: World) -> None:
    aid = (await record_accident(world))["id"]
    report = {
        "approved_at": ago(300).date().isoformat(),
        "approved_by": "某市人民政府",
        "document_no": "某政函〔2025〕9号",
        "measures": MEASURES,
    }
    first, again = await send_twice(world, "inspector_a1", f"/api/v1/accidents/{aid}/report", report)
    assert first.status_code == 201 and again.json() == first.json()
    measures = [m["id"] for m in first.json()["measures"]]
    progress = {"id": str(uuid.uuid4()), "description": "已整改", "evidence_ids": [await photo(world, "enterprise_a", aid, (7, 7, 7))]}
    done, redone = await send_twice(world, "enterprise_a", f"/api/v1/accidents/{aid}/measures/{measures[0]}/progress", progress)
    assert done.status_code == 201 and redone.json() == done.json()
    steps: list[tuple[str, dict[str, Any], str]] = [
        ("evaluation", {"started_at": datetime.now(UTC).isoformat()}, "evaluation_started"),
        *[
            ("evaluation/findings", {"id": str(uuid.uuid4()), "measure_id": mid, "outcome": "done", "note": "已落实"}, "finding_recorded")
            for mid in measures
        ],
        ("evaluation/complete", {"conclusion": "均已落实"}, "evaluation_completed"),
    ]
    for endpoint, body, _ in steps:
        first, again = await send_twice(world, "inspector_a1", f"/api/v1/accidents/{aid}/{endpoint}", body)
        assert again.json() == first.json(), endpoint
    for action, n in (("report_approved", 1), ("progress_reported", 1), ("evaluation_started", 1), ("finding_recorded", 3)):
        assert await timeline_count(world, AccidentEvent, AccidentEvent.accident_id, aid, action) == n, action
    assert await timeline_count(world, AccidentEvent, AccidentEvent.accident_id, aid, "evaluation_completed") == 1
