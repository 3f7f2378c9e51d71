"""Enforcement end to end: the hash-chained record with photos, a major decision through legal review, the three
PDFs, publication with masking, and the chain's verification against tampering in the database and the bucket."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pypdf import PdfReader
from sqlalchemy import select, text, update

from backend.enforcement.models import Case, CaseRecord, IssuedDocument
from tests.helpers import World, assert_problem, ok, start_inspection, upload
from tests.media import jpeg
from tests.test_inspections import ATTENDEES, all_compliant, items_of


async def submitted_inspection(world: World) -> dict[str, Any]:
    inspection = await start_inspection(world, kind="enforcement")
    checklist_id = inspection["checklist_ids"][0]
    items = await items_of(world, checklist_id)
    photo = (await upload(world, "inspector_a1", jpeg(color=(10, 20, 30)), inspection_id=inspection["id"])).json()
    ok(await world.post("inspector_a1", f"/api/v1/inspections/{inspection['id']}/notice", {"note": "出示证件，告知检查事项"}))
    ok(
        await world.put(
            "inspector_a1",
            f"/api/v1/inspections/{inspection['id']}/results",
            {"results": all_compliant(checklist_id, items, {items[2]["code"]: [photo["id"]]})},
        )
    )
    submitted = await world.post(
        "inspector_a1", f"/api/v1/inspections/{inspection['id']}/submit", {"attendees": ATTENDEES, "feedback": "当场反馈"}
    )
    assert submitted.status_code == 200, submitted.text
    return inspection


async def open_case(world: World, inspection_id: str | None = None) -> dict[str, Any]:
    body = {
        "id": str(uuid.uuid4()),
        "enterprise_id": str(world.enterprises["a"].id),
        "inspection_id": inspection_id,
        "title": "企业a未如实记录事故隐患排查治理情况案",
        "handler_ids": [str(world.users["inspector_a1"].id), str(world.users["inspector_a2"].id)],
    }
    response = await world.post("inspector_a1", "/api/v1/cases", body)
    assert response.status_code == 201, response.text
    again = await world.post("inspector_a1", "/api/v1/cases", body)
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    return response.json()


async def record(world: World, case_id: str, kind: str, description: str, evidence_ids: list[str] | None = None, **extra: Any) -> Any:
    body = {
        "kind": kind,
        "occurred_at": datetime.now(UTC).isoformat(),
        "description": description,
        "evidence_ids": evidence_ids or [],
        **extra,
    }
    return await world.post("inspector_a1", f"/api/v1/cases/{case_id}/records", body)


FACTS = "经查，企业a主要负责人负责人a（身份证号110101199003071234，电话13812345678）未将事故隐患排查治理情况如实记录。"
MAJOR_FINE = {
    "measures": [
        {"type": "fine", "amount": 150000, "basis_id": "AQSCF-97-5-OVERDUE"},
        {"type": "suspend_production", "basis_id": "AQSCF-97-5-OVERDUE"},
    ],
    "facts": FACTS,
    "reasoning": "逾期未改正，依据安全生产法第九十七条第（五）项处罚。",
}


async def hear_and_approve(world: World, case_id: str, *, major: bool) -> None:
    """From a draft ready for 告知 to one ready to decide: notify, the party's written waiver, and for a major
    decision the collective discussion and a leader's approval."""
    base = f"/api/v1/cases/{case_id}"
    ok(await world.post("inspector_a1", f"{base}/notify", {}))
    ok(await world.post("inspector_a2", f"{base}/statements", {"content": "当事人书面放弃陈述、申辩和听证权利", "waived": True}))
    if major:
        discussion = {"held_at": datetime.now(UTC).isoformat(), "participants": ["局长", "副局长"], "conclusion": "同意"}
        ok(await world.post("leader_city", f"{base}/collective-discussion", discussion))
        ok(await world.post("leader_city", f"{base}/approve", {}))


def pdf_text(content: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


async def test_a_case_end_to_end(world: World, bucket) -> None:
    inspection = await submitted_inspection(world)
    case = await open_case(world, inspection["id"])
    cid = case["id"]
    assert case["status"] == "open" and len(case["handler_ids"]) == 2
    assert datetime.fromisoformat(case["decide_by"]) - datetime.fromisoformat(case["opened_at"]) == timedelta(days=90)

    photo = (await upload(world, "inspector_a2", jpeg(color=(200, 1, 1)), case_id=cid)).json()
    notice = await record(world, cid, "notice", "出示执法证件，告知当事人权利义务")
    record_id = str(uuid.uuid4())
    onsite = await record(
        world, cid, "onsite_check", "现场检查，隐患排查台账缺失", [photo["id"]], id=record_id, location={"lat": 39.33, "lng": 112.43}
    )
    retry = await world.post(
        "inspector_a1",
        f"/api/v1/cases/{cid}/records",
        {
            "id": record_id,
            "kind": "onsite_check",
            "occurred_at": onsite.json()["occurred_at"],
            "description": "现场检查，隐患排查台账缺失",
            "evidence_ids": [photo["id"]],
            "location": {"lat": 39.33, "lng": 112.43},
        },
    )
    assert (notice.status_code, onsite.status_code, retry.status_code) == (201, 201, 200)
    assert retry.json()["hash"] == onsite.json()["hash"]
    assert onsite.json()["prev_hash"] == notice.json()["hash"] and onsite.json()["evidence"][0]["sha256"] == photo["sha256"]
    await record(world, cid, "interview", "询问安全管理人员安全员a")

    discretion = (await world.get("legal_city", "/api/v1/discretion", params={"q": "第九十七条"})).json()["items"]
    assert {d["id"] for d in discretion} >= {"AQSCF-97-5", "AQSCF-97-5-OVERDUE"}

    outside = await world.post(
        "inspector_a1",
        f"/api/v1/cases/{cid}/decision",
        {**MAJOR_FINE, "measures": [{"type": "fine", "amount": 250000, "basis_id": "AQSCF-97-5-OVERDUE"}]},
    )
    assert_problem(outside, 422, "outside_discretion", field="measures[0].amount")
    draft = await world.post("inspector_a1", f"/api/v1/cases/{cid}/decision", MAJOR_FINE)
    assert draft.status_code == 200, draft.text
    assert draft.json()["major"] is True and draft.json()["status"] == "legal_review"
    assert draft.json()["measures"][0]["position_in_range"] == 0.5
    assert any("较大数额罚款" in r for r in draft.json()["major_reasons"]) and "责令停产停业" in draft.json()["major_reasons"]

    assert_problem(await world.post("inspector_a2", f"/api/v1/cases/{cid}/decide"), 409, "legal_review_required")
    for username in ("inspector_a1", "enterprise_a"):
        denied = await world.post(username, f"/api/v1/cases/{cid}/legal-review", {"decision": "approve", "opinion": "同意"})
        assert_problem(denied, 403, "role_forbidden")
    # a reviewer of another agency is told what a random id would tell: nothing
    foreign = await world.post("legal_other", f"/api/v1/cases/{cid}/legal-review", {"decision": "approve", "opinion": "同意"})
    assert_problem(foreign, 404, "case_not_found")
    returned = await world.post("legal_city", f"/api/v1/cases/{cid}/legal-review", {"decision": "return", "opinion": "事实认定需补充证据"})
    assert returned.status_code == 200 and returned.json()["outcome"] == "return"
    assert_problem(await world.post("inspector_a1", f"/api/v1/cases/{cid}/decide"), 409, "legal_review_required")
    ok(await world.post("inspector_a1", f"/api/v1/cases/{cid}/decision", MAJOR_FINE))
    approved = await world.post("legal_city", f"/api/v1/cases/{cid}/legal-review", {"decision": "approve", "opinion": "同意"})
    assert approved.status_code == 200
    await hear_and_approve(world, cid, major=True)
    decided = await world.post("inspector_a1", f"/api/v1/cases/{cid}/decide")
    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert body["status"] == "decided" and body["decided_at"]
    assert [r["outcome"] for r in body["reviews"]] == ["return", "approve"]
    assert [e["action"] for e in body["history"]] == [
        "opened",
        "major_decision_drafted",
        "returned",
        "major_decision_drafted",
        "approved",
        "notified",
        "statement_made",
        "collective_discussion",
        "leader_approved",
        "decided",
    ]

    texts = {}
    for doc_type, title in (
        ("penalty_decision", "行政处罚决定书"),
        ("inspection_record", "现场检查记录"),
        ("rectification_order", "责令限期整改指令书"),
    ):
        response = await world.get("inspector_a1", f"/api/v1/cases/{cid}/documents/{doc_type}")
        assert response.status_code == 200 and response.headers["content-type"] == "application/pdf", response.text
        texts[doc_type] = pdf_text(response.content)
        assert title in texts[doc_type] and "企业a" in texts[doc_type]
        again = await world.get("enterprise_a", f"/api/v1/cases/{cid}/documents/{doc_type}")
        assert again.content == response.content  # issued once: the same bytes every time
        documents = {d["type"]: d for d in (await world.get("inspector_a1", f"/api/v1/cases/{cid}")).json()["documents"]}
        assert documents[doc_type]["sha256"] == hashlib.sha256(response.content).hexdigest()
        assert documents[doc_type]["number"] in texts[doc_type]
    year = datetime.now(UTC).year
    assert f"district_a应急罚〔{year}〕1号" in texts["penalty_decision"] and "150000" in texts["penalty_decision"]
    assert "第九十七条" in texts["penalty_decision"]

    public = await world.client.get("/api/v1/public/decisions")
    assert public.status_code == 200
    listed = public.json()["items"][0]
    assert listed["decision_number"] == f"district_a应急罚〔{year}〕1号" and listed["enterprise_name"] == "企业a"
    assert "负责人a" not in listed["facts"] and "负**" in listed["facts"]
    assert "110101199003071234" not in listed["facts"] and "110101********1234" in listed["facts"]
    assert "13812345678" not in listed["facts"] and "138****5678" in listed["facts"]
    assert all("*" in h for h in listed["handlers"])

    verified = (await world.get("legal_city", f"/api/v1/cases/{cid}/verify")).json()
    records = (await world.get("inspector_a1", f"/api/v1/cases/{cid}/records")).json()["items"]
    assert verified == {"valid": True, "length": len(records), "head": records[-1]["hash"], "first_invalid_seq": None, "problem": None}
    # three records by hand; the waiver, the discussion, the approval and the decision; five documents issued
    assert len(records) == 12
    assert "sha256" in records[-1]["description"]


async def _chained_case(world: World) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    case = await open_case(world)
    cid = case["id"]
    photo = (await upload(world, "inspector_a1", jpeg(color=(7, 77, 177)), case_id=cid)).json()
    for n in range(3):
        await record(world, cid, "note", f"第{n + 1}条记录", [photo["id"]] if n == 1 else [])
    return cid, photo, (await world.get("inspector_a1", f"/api/v1/cases/{cid}/records")).json()["items"]


async def _tamper_with_record(world: World, case_id: str, seq: int, description: str) -> None:
    """Change a stored record the way an intruder with database access would, past the append-only trigger."""
    statement = (
        update(CaseRecord.__table__).where(CaseRecord.case_id == uuid.UUID(case_id), CaseRecord.seq == seq).values(description=description)
    )
    async with world.app.state.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SET session_replication_role = replica"))  # triggers off, this session only
            await conn.execute(statement)
            await conn.execute(text("SET session_replication_role = origin"))
        else:
            await conn.execute(text("DROP TRIGGER case_record_no_update"))
            await conn.execute(statement)
            await conn.execute(
                text(
                    "CREATE TRIGGER case_record_no_update BEFORE UPDATE ON case_record "
                    "BEGIN SELECT RAISE(ABORT, 'table case_record is append-only'); END"
                )
            )
        await conn.commit()


async def test_verify_finds_a_record_altered_in_the_database(world: World) -> None:
    cid, _, records = await _chained_case(world)
    assert (await world.get("inspector_a1", f"/api/v1/cases/{cid}/verify")).json()["valid"] is True
    await _tamper_with_record(world, cid, 2, "被篡改的记录")
    result = (await world.get("inspector_a1", f"/api/v1/cases/{cid}/verify")).json()
    assert result["valid"] is False and result["first_invalid_seq"] == 2 and result["length"] == len(records)


async def test_verify_finds_evidence_altered_in_the_bucket(world: World, bucket) -> None:
    cid, photo, _ = await _chained_case(world)
    sha = photo["sha256"]
    bucket.write(f"originals/{sha[:2]}/{sha}", jpeg(color=(1, 2, 3)))
    result = (await world.get("inspector_a1", f"/api/v1/cases/{cid}/verify")).json()
    assert result["valid"] is False and result["first_invalid_seq"] == 2 and "altered" in result["problem"]


async def test_who_may_open_and_review_cases(world: World) -> None:
    base = {"enterprise_id": str(world.enterprises["a"].id), "title": "案"}
    one = await world.post("inspector_a1", "/api/v1/cases", {**base, "handler_ids": [str(world.users["inspector_a1"].id)] * 2})
    assert_problem(one, 422, "two_officers_required", field="handler_ids")
    foreign = await world.post(
        "inspector_a1", "/api/v1/cases", {**base, "handler_ids": [str(world.users["inspector_b"].id), str(world.users["inspector_a2"].id)]}
    )
    assert_problem(foreign, 422, "inspector_not_eligible", field="handler_ids")
    assert_problem(await world.post("enterprise_a", "/api/v1/cases", {**base, "handler_ids": []}), 403)
    case = await open_case(world)
    assert_problem(await world.get("inspector_b", f"/api/v1/cases/{case['id']}"), 404)
    assert_problem(await world.get("enterprise_b", f"/api/v1/cases/{case['id']}"), 404)
    assert (await world.get("enterprise_a", f"/api/v1/cases/{case['id']}")).status_code == 200
    not_handler = await world.post(
        "inspector_city",
        f"/api/v1/cases/{case['id']}/records",
        {"kind": "note", "occurred_at": datetime.now(UTC).isoformat(), "description": "x"},
    )
    assert_problem(not_handler, 403, "not_a_handler")


async def test_a_minor_decision_needs_no_review_and_the_time_limit_is_enforced(world: World) -> None:
    case = await open_case(world)
    cid = case["id"]
    draft = await world.post(
        "inspector_a1",
        f"/api/v1/cases/{cid}/decision",
        {
            "measures": [
                {"type": "fine", "amount": 20000, "basis_id": "AQSCF-97-5"},
                {"type": "order_rectification", "basis_id": "AQSCF-97-5"},
            ],
            "facts": "事实",
            "reasoning": "理由",
        },
    )
    assert draft.json()["major"] is False and draft.json()["status"] == "decision_draft"
    wrong_measure = await world.post(
        "inspector_a1",
        f"/api/v1/cases/{cid}/decision",
        {
            "measures": [{"type": "close", "basis_id": "AQSCF-97-5"}],
            "facts": "事实",
            "reasoning": "理由",
        },
    )
    assert_problem(wrong_measure, 422, "measure_not_allowed", field="measures[0].type")
    assert_problem(await world.post("inspector_a1", f"/api/v1/cases/{cid}/decide"), 409, "invalid_transition")  # not notified
    await hear_and_approve(world, cid, major=False)
    async with world.app.state.sessionmaker() as session:
        await session.execute(update(Case).where(Case.id == uuid.UUID(cid)).values(decide_by=datetime.now(UTC) - timedelta(days=1)))
        await session.commit()
    assert_problem(await world.post("inspector_a1", f"/api/v1/cases/{cid}/decide"), 409, "decision_deadline_passed")
    until = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    extended = await world.post(
        "inspector_a1", f"/api/v1/cases/{cid}/extension", {"until": until, "reason": "案情复杂", "approved_by": "局长张某"}
    )
    assert extended.status_code == 200 and extended.json()["history"][-1]["action"] == "time_limit_extended"
    decided = await world.post("inspector_a1", f"/api/v1/cases/{cid}/decide")
    assert decided.status_code == 200 and decided.json()["status"] == "decided"
    again = await world.post("inspector_a1", f"/api/v1/cases/{cid}/decide")  # a phone that lost the first answer
    assert again.status_code == 200 and again.json() == decided.json()
    assert_problem(await world.post("inspector_a2", f"/api/v1/cases/{cid}/decide"), 409, "invalid_transition")


async def test_documents_are_kept_in_the_database_and_older_ones_read_from_the_store(world: World, bucket) -> None:
    inspection = await submitted_inspection(world)
    cid = (await open_case(world, inspection["id"]))["id"]
    issued = await world.get("inspector_a1", f"/api/v1/cases/{cid}/documents/inspection_record")
    assert issued.status_code == 200, issued.text
    assert not bucket.keys("documents/")  # issuing calls no store: the PDF is kept with its row
    async with world.app.state.sessionmaker() as session:
        row = (
            await session.execute(
                select(IssuedDocument).where(IssuedDocument.case_id == uuid.UUID(cid), IssuedDocument.type == "inspection_record")
            )
        ).scalar_one()
        assert row.pdf == issued.content and row.object_key is None
        # A document issued before PDFs were kept in the database: only its object key, the bytes in the store.
        older = b"%PDF-1.4 issued before\n%%EOF\n"
        key = f"documents/{cid}/rectification_order-{hashlib.sha256(older).hexdigest()}.pdf"
        bucket.write(key, older)
        session.add(
            IssuedDocument(
                case_id=uuid.UUID(cid),
                type="rectification_order",
                number="旧文号",
                sha256=hashlib.sha256(older).hexdigest(),
                size=len(older),
                object_key=key,
                issued_by=world.users["inspector_a1"].id,
            )
        )
        await session.commit()
    served = await world.get("enterprise_a", f"/api/v1/cases/{cid}/documents/rectification_order")
    assert served.status_code == 200 and served.content == older
