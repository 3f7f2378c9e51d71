"""The penalty procedure to the end (行政处罚程序): a major case with fines on the enterprise and on its principal walked
from 立案 to 结案 through every step, a non-major case without a hearing, steps out of order, races, scope, the
deadlines and the overdue list, the 加处罚款 arithmetic, and the documents as Chinese PDFs."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from backend.clock import local_date, working_day_after
from backend.enforcement.models import Case, CaseEvent, CasePayment, CaseRecord, CaseStatement
from backend.enforcement.penalties import surcharge
from backend.migrations import upgrade
from backend.settings import Settings
from tests.conftest import serving
from tests.helpers import World, assert_problem, ok, upload
from tests.media import jpeg
from tests.test_enforcement import FACTS, open_case, pdf_text, record, submitted_inspection

API = "/api/v1/cases"
PRINCIPAL = {"kind": "person", "name": "负责人a", "id_number": "110101199003071234", "position": "主要负责人"}
MAJOR = {
    "measures": [
        {"type": "fine", "amount": 150000, "basis_id": "AQSCF-97-5-OVERDUE"},
        {"type": "suspend_production", "basis_id": "AQSCF-97-5-OVERDUE"},
        {"type": "fine", "amount": 30000, "basis_id": "AQSCF-97-5-OVERDUE-PERSON", "target": PRINCIPAL},
    ],
    "facts": FACTS,
    "reasoning": "逾期未改正，依据安全生产法第九十七条第（五）项，对单位及其主要负责人处罚。",
}
MINOR = {
    "measures": [
        {"type": "fine", "amount": 20000, "basis_id": "AQSCF-97-5"},
        {"type": "order_rectification", "basis_id": "AQSCF-97-5"},
    ],
    "facts": "未如实记录事故隐患排查治理情况。",
    "reasoning": "依据安全生产法第九十七条第（五）项。",
}


def now() -> datetime:
    return datetime.now(UTC)


async def case_of(world: World, cid: str, username: str = "inspector_a1") -> dict[str, Any]:
    response = await world.get(username, f"{API}/{cid}")
    assert response.status_code == 200, response.text
    return response.json()


async def shift_case(world: World, cid: str, **values: Any) -> None:
    """Move the case's instants, as only time could (a period running out, a decision made weeks ago)."""
    async with world.app.state.sessionmaker() as session:
        await session.execute(update(Case).where(Case.id == uuid.UUID(cid)).values(**values))
        await session.commit()


async def delivered(world: World, cid: str, target: str, at: datetime, **extra: Any) -> Any:
    body = {"document": "penalty_decision", "target": target, "method": "direct", "delivered_at": at.isoformat(), "recipient": "签收人"}
    return await world.post("inspector_a1", f"{API}/{cid}/deliveries", {**body, **extra})


async def document_text(world: World, cid: str, doc_type: str, username: str = "inspector_a1", **params: Any) -> str:
    response = await world.get(username, f"{API}/{cid}/documents/{doc_type}", params=params)
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf", response.text
    return "".join(pdf_text(response.content).split())  # lines are broken wherever the page is full


async def test_a_major_case_with_fines_on_the_enterprise_and_its_principal_from_opening_to_closing(world: World) -> None:
    inspection = await submitted_inspection(world)
    cid = (await open_case(world, inspection["id"]))["id"]
    photo = (await upload(world, "inspector_a1", jpeg(color=(90, 9, 9)), case_id=cid)).json()
    ok(await record(world, cid, "onsite_check", "现场检查，隐患排查台账缺失", [photo["id"]]))
    ok(await record(world, cid, "interview", "询问主要负责人负责人a"))

    # 处罚到人: a person's fine needs a person's entry; the old close is refused where only a proposal is allowed
    wrong_party = {**MAJOR, "measures": [{"type": "fine", "amount": 30000, "basis_id": "AQSCF-97-5-OVERDUE", "target": PRINCIPAL}]}
    assert_problem(await world.post("inspector_a1", f"{API}/{cid}/decision", wrong_party), 422, "measure_not_allowed", "measures[0].target")
    close = {**MAJOR, "measures": [{"type": "close", "basis_id": "AQSCF-113-1"}]}
    assert_problem(await world.post("inspector_a1", f"{API}/{cid}/decision", close), 422, "measure_not_allowed", "measures[0].type")

    draft = await world.post("inspector_a1", f"{API}/{cid}/decision", MAJOR)
    assert draft.status_code == 200, draft.text
    assert draft.json()["status"] == "legal_review" and draft.json()["major"] is True
    assert [m["target_key"] for m in draft.json()["measures"]] == ["enterprise", "enterprise", "负责人a"]
    assert len(draft.json()["hearing_grounds"]) == 3  # two large fines and 责令停产停业
    # out of order: notify before the review, a hearing request before the notice, closing before anything
    assert_problem(await world.post("inspector_a1", f"{API}/{cid}/notify", {}), 409, "invalid_transition")
    assert_problem(await world.post("enterprise_a", f"{API}/{cid}/hearing-request", {}), 409, "invalid_transition")
    assert_problem(await world.post("leader_city", f"{API}/{cid}/close", {"summary": "结案"}), 409, "invalid_transition")
    assert_problem(await world.get("enterprise_a", f"{API}/{cid}/documents/penalty_notice"), 409, "document_unavailable")
    ok(await world.post("legal_city", f"{API}/{cid}/legal-review", {"decision": "approve", "opinion": "同意"}))

    notified = await world.post("inspector_a1", f"{API}/{cid}/notify", {})
    assert notified.status_code == 200, notified.text
    case = notified.json()
    assert case["status"] == "notified" and case["hearing_right"] is True
    assert local_date(datetime.fromisoformat(case["statement_due"])) == working_day_after(now(), 3)
    assert local_date(datetime.fromisoformat(case["hearing_request_due"])) == working_day_after(now(), 5)
    assert {d["type"] for d in case["documents"]} >= {"penalty_notice", "hearing_notice"}
    notice = await document_text(world, cid, "penalty_notice", "enterprise_a")
    assert "行政处罚告知书" in notice and "陈述和申辩" in notice and "负责人a" in notice
    assert "五日内" in await document_text(world, cid, "hearing_notice")

    # 陈述、申辩 by the enterprise itself, replayed by a phone; deciding before the reply is refused
    statement_id = str(uuid.uuid4())
    body = {"id": statement_id, "content": "我单位已补建台账，请求从轻处罚。"}
    made = await world.post("enterprise_a", f"{API}/{cid}/statements", body)
    again = await world.post("enterprise_a", f"{API}/{cid}/statements", body)
    assert (made.status_code, again.status_code) == (201, 200) and again.json() == made.json()
    assert_problem(await world.post("enterprise_a", f"{API}/{cid}/statements", {**body, "content": "别的"}), 409, "duplicate_conflict")
    assert_problem(await world.post("enterprise_b", f"{API}/{cid}/statements", {"content": "不相干"}), 404, "case_not_found")
    assert_problem(await world.post("enterprise_b", f"{API}/{cid}/hearing-request", {}), 404, "case_not_found")
    assert_problem(await world.post("inspector_a1", f"{API}/{cid}/decide"), 409, "statement_unanswered")
    reply = await world.post(
        "inspector_a2", f"{API}/{cid}/statements/{statement_id}/reply", {"adopted": False, "reasoning": "逾期未改正事实清楚"}
    )
    assert reply.status_code == 200 and reply.json()["adopted"] is False, reply.text
    assert_problem(await world.post("inspector_a1", f"{API}/{cid}/decide"), 409, "hearing_request_period_open")

    # 听证: requested in time, scheduled with enough notice by someone else than the investigators, recorded by the host
    ok(await world.post("enterprise_a", f"{API}/{cid}/hearing-request", {}))
    soon = (now() + timedelta(days=2)).isoformat()
    later = (now() + timedelta(days=20)).isoformat()
    hearing = {"scheduled_at": later, "place": "区应急管理局听证室", "host_id": str(world.users["legal_city"].id)}
    too_soon = await world.post("inspector_a1", f"{API}/{cid}/hearing", {**hearing, "scheduled_at": soon})
    assert_problem(too_soon, 422, "hearing_notice_too_short", "scheduled_at")
    investigator = await world.post("inspector_a1", f"{API}/{cid}/hearing", {**hearing, "host_id": str(world.users["inspector_a2"].id)})
    assert_problem(investigator, 422, "host_is_investigator", "host_id")
    assert (await case_of(world, cid))["status"] == "hearing_requested"  # the refusals changed nothing
    ok(await world.post("inspector_a1", f"{API}/{cid}/hearing", hearing))
    record_body = {
        "held_at": now().isoformat(),
        "attendees": [{"role": "当事人", "name": "负责人a"}, {"role": "调查人员", "name": "inspector_a1"}],
        "summary": "调查人员提出违法事实、证据和处罚建议，当事人进行申辩和质证。",
    }
    assert_problem(await world.post("inspector_a1", f"{API}/{cid}/hearing/record", record_body), 403, "not_the_host")
    heard = await world.post("legal_city", f"{API}/{cid}/hearing/record", record_body)
    assert heard.status_code == 200 and heard.json()["status"] == "heard", heard.text
    assert "听证笔录" in await document_text(world, cid, "hearing_record")

    # 集体讨论 and the leader's approval, then the decision; a leader of another city sees nothing
    assert_problem(await world.post("inspector_a1", f"{API}/{cid}/decide"), 409, "collective_discussion_required")
    assert_problem(await world.post("leader_city", f"{API}/{cid}/approve", {}), 409, "collective_discussion_required")
    discussion = {"held_at": now().isoformat(), "participants": ["局长甲", "副局长乙", "副局长丙"], "conclusion": "同意处罚"}
    assert_problem(await world.post("leader_other", f"{API}/{cid}/collective-discussion", discussion), 404, "case_not_found")
    discussed = await world.post("leader_city", f"{API}/{cid}/collective-discussion", discussion)
    assert discussed.status_code == 201, discussed.text
    assert_problem(await world.post("inspector_a1", f"{API}/{cid}/decide"), 409, "leader_approval_required")
    ok(await world.post("leader_city", f"{API}/{cid}/approve", {"opinion": "同意"}))
    decided = await world.post("inspector_a1", f"{API}/{cid}/decide")
    assert decided.status_code == 200, decided.text
    case = decided.json()
    assert case["status"] == "decided"
    decisions = {d["target"]: d for d in case["documents"] if d["type"] == "penalty_decision"}
    assert set(decisions) == {"enterprise", "负责人a"} and decisions["enterprise"]["number"] != decisions["负责人a"]["number"]
    assert_problem(await world.get("inspector_a1", f"{API}/{cid}/documents/penalty_decision"), 422, field="target")
    unit = await document_text(world, cid, "penalty_decision", target="enterprise")
    person = await document_text(world, cid, "penalty_decision", target="负责人a")
    for text in (unit, person):
        assert "行政处罚决定书" in text and "六十日内" in text and "六个月内" in text and "人民政府申请行政复议" in text
        assert "百分之三加处罚款" in text and "十五日内" in text and "证据" in text
    assert "150000" in unit and "30000" not in unit and "30000" in person and "110101199003071234" in person

    # 送达 (the decision moved 40 days back): more than seven working days after it is late; both delivered -> delivered
    async with world.app.state.sessionmaker() as session:
        await session.execute(update(Case).where(Case.id == uuid.UUID(cid)).values(decided_at=now() - timedelta(days=40)))
        await session.commit()
    late = await delivered(world, cid, "enterprise", now() - timedelta(days=20), id=str(uuid.uuid4()))
    assert late.status_code == 201 and late.json()["late"] is True, late.text
    assert (await case_of(world, cid))["status"] == "decided"
    second = await delivered(world, cid, "负责人a", now())
    assert second.status_code == 201 and second.json()["payment_due"], second.text
    case = await case_of(world, cid)
    assert case["status"] == "delivered"
    fines = {f["target"]: f for f in case["fines"]}
    assert fines["enterprise"]["surcharge"] == 150000 * 3 * 5 // 100  # five days after payment_due
    assert case["surcharge"] == fines["enterprise"]["surcharge"] and fines["负责人a"]["surcharge"] == 0
    assert "送达回执" in await document_text(world, cid, "delivery_receipt", target="enterprise")

    # payments settle the fines and the surcharge -> executed; then the leader closes the case
    pay = {"amount": 150000, "paid_at": now().isoformat(), "receipt_no": "NO.001", "target": "enterprise"}
    assert_problem(await world.post("inspector_a1", f"{API}/{cid}/payments", {**pay, "target": None}), 422, field="target")
    ok(await world.post("inspector_a1", f"{API}/{cid}/payments", pay))
    ok(await world.post("inspector_a1", f"{API}/{cid}/payments", {**pay, "amount": 30000, "receipt_no": "NO.002", "target": "负责人a"}))
    assert (await case_of(world, cid))["status"] == "delivered"  # the surcharge is still owed
    paid = await world.post("inspector_a1", f"{API}/{cid}/payments", {**pay, "amount": 22500, "receipt_no": "NO.003"})
    assert paid.status_code == 201
    case = await case_of(world, cid)
    assert case["status"] == "executed" and all(f["outstanding"] == 0 for f in case["fines"])
    assert_problem(await world.post("inspector_a1", f"{API}/{cid}/close", {"summary": "结案"}), 403, "role_forbidden")
    closed = await world.post("leader_city", f"{API}/{cid}/close", {"summary": "罚款已缴清，处罚执行完毕。"})
    assert closed.status_code == 200 and closed.json()["status"] == "closed", closed.text
    report = await document_text(world, cid, "closing_report")
    assert "结案审批表" in report and "加处罚款22500元" in report

    history = [e["action"] for e in closed.json()["history"]]
    for action in ("notified", "statement_made", "statement_answered", "hearing_requested", "hearing_scheduled", "hearing_held"):
        assert action in history
    for action in ("collective_discussion", "leader_approved", "decided", "delivered", "executed", "closed"):
        assert action in history
    kinds = [r["kind"] for r in (await world.get("inspector_a1", f"{API}/{cid}/records", params={"limit": 200})).json()["items"]]
    for kind in ("statement", "reply", "hearing", "discussion", "approval", "decision", "delivery", "payment", "closing"):
        assert kind in kinds, kind
    verified = (await world.get("leader_city", f"{API}/{cid}/verify")).json()
    assert verified["valid"] is True and verified["length"] == len(kinds)


async def notified_minor_case(world: World) -> str:
    cid = (await open_case(world))["id"]
    ok(await world.post("inspector_a1", f"{API}/{cid}/decision", MINOR))
    notified = await world.post("inspector_a1", f"{API}/{cid}/notify", {})
    assert notified.status_code == 200 and notified.json()["hearing_right"] is False, notified.text
    return cid


async def test_a_minor_case_without_hearing_to_closing(world: World) -> None:
    cid = await notified_minor_case(world)
    assert (await case_of(world, cid))["hearing_request_due"] is None
    assert_problem(await world.get("inspector_a1", f"{API}/{cid}/documents/hearing_notice"), 409, "document_unavailable")
    assert_problem(await world.post("enterprise_a", f"{API}/{cid}/hearing-request", {}), 409, "no_hearing_right")
    assert_problem(await world.post("inspector_a1", f"{API}/{cid}/decide"), 409, "statement_period_open")
    waiver = await world.post("inspector_a2", f"{API}/{cid}/statements", {"content": "当事人书面表示放弃陈述、申辩", "waived": True})
    assert waiver.status_code == 201, waiver.text
    decided = await world.post("inspector_a1", f"{API}/{cid}/decide")
    assert decided.status_code == 200 and decided.json()["status"] == "decided", decided.text
    assert "20000" in await document_text(world, cid, "penalty_decision")  # one target: no `target` needed
    assert_problem(await world.post("leader_city", f"{API}/{cid}/close", {"summary": "结案"}), 409, "invalid_transition")
    in_time = await delivered(world, cid, "enterprise", now())
    assert in_time.status_code == 201 and in_time.json()["late"] is False, in_time.text
    ok(await world.post("inspector_a1", f"{API}/{cid}/payments", {"amount": 20000, "paid_at": now().isoformat(), "receipt_no": "R1"}))
    case = await case_of(world, cid)
    assert case["status"] == "executed" and case["surcharge"] == 0
    assert {d["step"]: d["overdue"] for d in case["deadlines"]} == {
        "decision": False,
        "statement": False,
        "delivery": False,
        "payment": False,
    }
    ok(await world.post("leader_city", f"{API}/{cid}/close", {"summary": "执行完毕"}))


async def test_execution_passed_to_a_court_closes_a_decided_case(world: World) -> None:
    cid = await notified_minor_case(world)
    await shift_case(world, cid, statement_due=now() - timedelta(minutes=1))
    ok(await world.post("inspector_a1", f"{API}/{cid}/decide"))
    assert_problem(await world.post("leader_city", f"{API}/{cid}/close", {"summary": "未缴"}), 409, "invalid_transition")
    closed = await world.post("leader_city", f"{API}/{cid}/close", {"summary": "逾期未缴纳，申请法院强制执行", "court_enforcement": True})
    assert closed.status_code == 200 and closed.json()["court_enforcement"] is True, closed.text
    assert "申请人民法院强制执行" in await document_text(world, cid, "closing_report")


async def test_steps_out_of_order_are_refused_and_change_nothing(world: World) -> None:
    cid = (await open_case(world))["id"]
    steps = [
        ("inspector_a1", "notify", {}),
        ("enterprise_a", "statements", {"content": "陈述"}),
        ("enterprise_a", "hearing-request", {}),
        ("inspector_a1", "hearing", {"scheduled_at": now().isoformat(), "place": "听证室", "host_id": str(world.users["legal_city"].id)}),
        ("legal_city", "hearing/record", {"held_at": now().isoformat(), "attendees": [{"role": "当事人", "name": "甲"}], "summary": "x"}),
        ("leader_city", "collective-discussion", {"held_at": now().isoformat(), "participants": ["甲", "乙"], "conclusion": "同意"}),
        ("leader_city", "approve", {}),
        ("inspector_a1", "decide", None),
        ("inspector_a1", "payments", {"amount": 1, "paid_at": now().isoformat(), "receipt_no": "R"}),
        ("leader_city", "close", {"summary": "结案"}),
    ]
    before = await case_of(world, cid)
    async with world.app.state.sessionmaker() as session:
        events = (await session.execute(select(func.count()).select_from(CaseEvent))).scalar_one()
    for username, step, body in steps:
        response = await world.post(username, f"{API}/{cid}/{step}", body)
        assert response.status_code == 409 and response.json()["code"] in ("invalid_transition", "decision_required"), (step, response.text)
    after = await case_of(world, cid)
    assert after == before
    async with world.app.state.sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(CaseEvent))).scalar_one() == events
        assert (await session.execute(select(func.count()).select_from(CaseStatement))).scalar_one() == 0


async def test_two_handlers_deciding_at_once_one_wins(world: World) -> None:
    cid = await notified_minor_case(world)
    await shift_case(world, cid, statement_due=now() - timedelta(minutes=1))
    answers = await asyncio.gather(world.post("inspector_a1", f"{API}/{cid}/decide"), world.post("inspector_a2", f"{API}/{cid}/decide"))
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    async with world.app.state.sessionmaker() as session:
        decided = select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == uuid.UUID(cid), CaseEvent.action == "decided")
        assert (await session.execute(decided)).scalar_one() == 1
        records = select(func.count()).select_from(CaseRecord).where(CaseRecord.case_id == uuid.UUID(cid), CaseRecord.kind == "decision")
        assert (await session.execute(records)).scalar_one() == 1


async def test_completing_a_step_twice_at_once_takes_it_once(world: World) -> None:
    cid = await notified_minor_case(world)
    await shift_case(world, cid, statement_due=now() - timedelta(minutes=1))
    ok(await world.post("inspector_a1", f"{API}/{cid}/decide"))
    body = {"id": str(uuid.uuid4()), "document": "penalty_decision", "method": "mail", "delivered_at": now().isoformat(), "recipient": "甲"}
    answers = await asyncio.gather(*[world.post("inspector_a1", f"{API}/{cid}/deliveries", body) for _ in range(2)])
    assert sorted(a.status_code for a in answers) in ([200, 201], [201, 409]), [a.text for a in answers]
    pay = {"id": str(uuid.uuid4()), "amount": 20000, "paid_at": now().isoformat(), "receipt_no": "R9"}
    answers = await asyncio.gather(*[world.post("inspector_a1", f"{API}/{cid}/payments", pay) for _ in range(2)])
    assert sorted(a.status_code for a in answers) in ([200, 201], [201, 409]), [a.text for a in answers]
    async with world.app.state.sessionmaker() as session:
        count = select(func.count()).select_from(CasePayment).where(CasePayment.case_id == uuid.UUID(cid))
        assert (await session.execute(count)).scalar_one() == 1
    assert (await case_of(world, cid))["status"] == "executed"


async def test_deadlines_and_the_overdue_list(world: World) -> None:
    overdue = await notified_minor_case(world)
    fresh = await notified_minor_case(world)
    await shift_case(world, overdue, statement_due=now() - timedelta(days=1), decide_by=now() - timedelta(hours=1))
    case = await case_of(world, overdue)
    deadlines = {d["step"]: d for d in case["deadlines"]}
    assert deadlines["statement"]["overdue"] is True and deadlines["decision"]["overdue"] is True
    assert (await case_of(world, fresh))["deadlines"][0]["overdue"] is False

    async def listed(step: str, username: str = "inspector_a1", **params: Any) -> list[str]:
        response = await world.get(username, API, params={"overdue_step": step, **params})
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["items"]]

    assert await listed("statement") == [overdue] and await listed("decision") == [overdue]
    assert await listed("delivery") == [] and await listed("statement", "inspector_other") == []
    assert await listed("statement", "enterprise_b") == [] and await listed("statement", "leader_city") == [overdue]
    assert await listed("statement", status="notified", limit=1) == [overdue]
    assert_problem(await world.get("inspector_a1", API, params={"overdue_step": "lunch"}), 400, field="overdue_step")

    # the decision's delivery deadline: seven working days after deciding
    extension = {"until": (now() + timedelta(days=30)).date().isoformat(), "reason": "案情复杂", "approved_by": "局长"}
    ok(await world.post("inspector_a1", f"{API}/{overdue}/extension", extension))
    ok(await world.post("inspector_a1", f"{API}/{overdue}/decide"))
    await shift_case(world, overdue, delivery_due=now() - timedelta(days=1))
    assert await listed("delivery") == [overdue]


def test_the_surcharge_is_three_percent_a_day_capped_at_the_fine() -> None:
    due = datetime(2026, 3, 1, 15, 59, tzinfo=UTC)  # 23:59 on 1 March in the agencies' zone

    def paid(amount: int, on: datetime) -> CasePayment:
        return CasePayment(
            case_id=uuid.uuid4(),
            target="enterprise",
            amount=amount,
            paid_at=on,
            receipt_no="R",
            recorded_by=uuid.uuid4(),
            client_fingerprint="",
        )

    assert surcharge(10000, due, [], due) == 0
    assert surcharge(10000, due, [], due + timedelta(days=1)) == 300
    assert surcharge(10000, due, [], due + timedelta(days=10)) == 3000
    assert surcharge(10000, due, [], due + timedelta(days=40)) == 10000  # 120% is capped at the fine
    assert surcharge(9999, due, [], due + timedelta(days=1)) == 299  # whole yuan, rounded down
    # it stops when the fine itself is paid, in parts if need be
    parts = [paid(4000, due + timedelta(days=2)), paid(6000, due + timedelta(days=4))]
    assert surcharge(10000, due, parts, due + timedelta(days=30)) == 1200
    assert surcharge(10000, None, [], due + timedelta(days=30)) == 0  # not delivered yet


async def test_a_redraft_after_the_statement_is_reviewed_and_notified_again(world: World) -> None:
    cid = await notified_minor_case(world)
    sid = (await world.post("enterprise_a", f"{API}/{cid}/statements", {"content": "已整改"})).json()["id"]
    ok(await world.post("inspector_a1", f"{API}/{cid}/statements/{sid}/reply", {"adopted": True, "reasoning": "采纳，减轻处罚"}))
    lighter = {**MINOR, "measures": [{"type": "fine", "amount": 10000, "basis_id": "AQSCF-97-5"}]}
    redrafted = await world.post("inspector_a1", f"{API}/{cid}/decision", lighter)
    assert redrafted.json()["status"] == "decision_draft"
    case = (await world.post("inspector_a1", f"{API}/{cid}/notify", {})).json()
    notices = [d for d in case["documents"] if d["type"] == "penalty_notice"]
    assert [n["edition"] for n in notices] == [1, 2] and notices[0]["number"] != notices[1]["number"]
    assert "10000" in await document_text(world, cid, "penalty_notice")


async def test_the_admin_creates_leaders_of_an_agency(world: World) -> None:
    leader = {"username": "leader_new", "password": "a-long-password", "display_name": "局长", "role": "leader"}
    assert_problem(await world.post("admin", "/api/v1/users", leader), 422, field="agency_id")
    created = await world.post("admin", "/api/v1/users", {**leader, "agency_id": str(world.agencies["district_a"].id)})
    assert created.status_code == 201 and created.json()["role"] == "leader", created.text
    assert_problem(await world.post("inspector_a1", "/api/v1/users", {**leader, "username": "leader_x"}), 403)


@pytest.fixture
async def sqlite_world(settings: Settings, tmp_path: Path) -> AsyncIterator[World]:
    """The same app on an embedded SQLite database of its own (migrated as `safety serve` does), with its own World:
    the procedure is walked on both databases the product supports in one run, whichever the suite runs on."""
    url = f"sqlite:///{tmp_path / 'procedure.db'}"
    await asyncio.to_thread(upgrade, url)  # Alembic runs its own event loop
    async with serving(dataclasses.replace(settings, database_url=url)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
            yield await World.build(client, app)
        await app.state.engine.dispose()


async def test_both_walks_on_sqlite_too(sqlite_world: World) -> None:
    assert sqlite_world.app.state.engine.dialect.name == "sqlite"
    await test_a_major_case_with_fines_on_the_enterprise_and_its_principal_from_opening_to_closing(sqlite_world)
    await test_a_minor_case_without_hearing_to_closing(sqlite_world)
