"""Documents beyond the case's own: the embedded font, a routine inspection's 现场检查记录 and 责令限期整改指令书 with
their deliveries (送达), and the 整改复查意见书 of a hazard review."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import update

from backend.enforcement.documents import use_font
from backend.hazards.models import Hazard
from tests.helpers import World, assert_problem, ok, start_inspection, upload
from tests.media import jpeg
from tests.test_enforcement import open_case, pdf_text
from tests.test_inspections import ATTENDEES, all_compliant, items_of

API = "/api/v1"


def font_files(pdf: bytes) -> list[dict[str, Any]]:
    """The font dictionaries of every page, resolved."""
    fonts = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for font in page["/Resources"]["/Font"].values():
            fonts.append(font.get_object())
    return fonts


def assert_embeds_its_font(pdf: bytes) -> None:
    """Every Chinese glyph comes from an embedded TrueType subset (FontFile2), with a ToUnicode map; nothing refers to
    a font the reader would have to have (STSong-Light, the CID font the PDFs used to rely on)."""
    assert b"STSong" not in pdf
    embedded = [f for f in font_files(pdf) if f["/Subtype"] == "/TrueType"]
    assert embedded, [f["/BaseFont"] for f in font_files(pdf)]
    for font in embedded:
        descriptor = font["/FontDescriptor"].get_object()
        assert "/FontFile2" in descriptor, descriptor
        assert "+" in font["/BaseFont"]  # a subset: ABCDEF+FontName
        assert "/ToUnicode" in font


async def submitted_routine_inspection(world: World, *, findings: int = 2) -> tuple[dict[str, Any], list[str]]:
    """A routine inspection of enterprise `a` by inspector_a1 and inspector_a2 with `findings` hazards."""
    inspection = await start_inspection(world)
    iid, checklist_id = inspection["id"], inspection["checklist_ids"][0]
    items = await items_of(world, checklist_id)
    photos = [(await upload(world, "inspector_a1", jpeg(color=(n, 40, 90)), inspection_id=iid)).json()["id"] for n in range(findings)]
    found = {items[n]["code"]: [photos[n]] for n in range(findings)}
    ok(await world.put("inspector_a1", f"{API}/inspections/{iid}/results", {"results": all_compliant(checklist_id, items, found)}))
    submitted = await world.post("inspector_a1", f"{API}/inspections/{iid}/submit", {"attendees": ATTENDEES, "feedback": "当场反馈"})
    assert submitted.status_code == 200, submitted.text
    return inspection, submitted.json()["hazard_ids"]


def test_a_missing_or_unusable_font_stops_start_up_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"PDF_FONT_PATH.*not found.*fonts-wqy-microhei"):
        use_font(tmp_path / "missing.ttf")
    not_a_font = tmp_path / "not-a-font.ttf"
    not_a_font.write_bytes(b"these are not the glyphs you are looking for")
    with pytest.raises(RuntimeError, match=r"PDF_FONT_PATH.*cannot be embedded"):
        use_font(not_a_font)


async def test_a_routine_inspection_issues_its_documents_and_records_their_delivery(world: World) -> None:
    inspection, hazard_ids = await submitted_routine_inspection(world)
    iid = inspection["id"]
    year = datetime.now(UTC).year

    # the enterprise may read them, but only the team issues them
    assert_problem(await world.get("enterprise_a", f"{API}/inspections/{iid}/documents/rectification_order"), 409, "document_not_issued")
    assert_problem(await world.get("inspector_city", f"{API}/inspections/{iid}/documents/rectification_order"), 409, "document_not_issued")
    for outsider in ("inspector_b", "enterprise_b", "inspector_other"):
        assert_problem(await world.get(outsider, f"{API}/inspections/{iid}/documents/rectification_order"), 404, "inspection_not_found")

    order = await world.get("inspector_a2", f"{API}/inspections/{iid}/documents/rectification_order")
    assert order.status_code == 200 and order.headers["content-type"] == "application/pdf", order.text
    assert_embeds_its_font(order.content)
    text = pdf_text(order.content)
    assert "责令限期整改指令书" in text and "企业a" in text and "district_a应急管理局" in text
    # hazards with a deadline are ordered on 第一百零二条 (限期消除); 第六十五条 is for 立即排除 and major hazards
    assert f"district_a应急责改〔{year}〕1号" in text and "第一百零二条" in text
    hazards = [(await world.get("inspector_a1", f"{API}/hazards/{h}")).json() for h in hazard_ids]
    for hazard in hazards:
        assert hazard["description"] in text
        deadline = datetime.fromisoformat(hazard["deadline"])
        assert f"{deadline.year}年{deadline.month}月{deadline.day}日" in text
    assert order.headers["x-content-sha256"] == hashlib.sha256(order.content).hexdigest()
    again = await world.get("enterprise_a", f"{API}/inspections/{iid}/documents/rectification_order")
    assert again.content == order.content  # issued once

    record = await world.get("inspector_a1", f"{API}/inspections/{iid}/documents/inspection_record")
    assert record.status_code == 200
    record_text = pdf_text(record.content)
    assert "现场检查记录" in record_text and f"district_a应急检记〔{year}〕1号" in record_text and "王主任" in record_text

    # a case opened from the inspection serves the same document: one 文号, never a second
    case = await open_case(world, iid)
    through_case = await world.get("inspector_a1", f"{API}/cases/{case['id']}/documents/rectification_order")
    assert through_case.content == order.content
    listed = (await world.get("inspector_a1", f"{API}/cases/{case['id']}")).json()["documents"]
    assert {d["type"]: d["number"] for d in listed} == {
        "rectification_order": f"district_a应急责改〔{year}〕1号",
        "inspection_record": f"district_a应急检记〔{year}〕1号",
    }
    # a second inspection's order takes the agency's next number
    second, second_hazards = await submitted_routine_inspection(world, findings=1)
    second_order = await world.get("inspector_a1", f"{API}/inspections/{second['id']}/documents/rectification_order")
    assert f"district_a应急责改〔{year}〕2号" in pdf_text(second_order.content)

    # 送达
    receipt = (await upload(world, "inspector_a1", jpeg(color=(9, 9, 9)), hazard_id=hazard_ids[0])).json()
    body = {
        "id": str(uuid.uuid4()),
        "document": "rectification_order",
        "method": "direct",
        "delivered_at": datetime.now(UTC).isoformat(),
        "recipient": "负责人a",
        "evidence_ids": [receipt["id"]],
    }
    delivered = await world.post("inspector_a2", f"{API}/inspections/{iid}/deliveries", body)
    assert delivered.status_code == 201, delivered.text
    out = delivered.json()
    assert out["document_number"] == f"district_a应急责改〔{year}〕1号" and out["evidence"] == [
        {"id": receipt["id"], "sha256": receipt["sha256"]}
    ]
    retry = await world.post("inspector_a2", f"{API}/inspections/{iid}/deliveries", body)
    assert retry.status_code == 200 and retry.json() == out
    assert_problem(
        await world.post("inspector_a2", f"{API}/inspections/{iid}/deliveries", {**body, "method": "mail"}), 409, "duplicate_conflict"
    )
    assert_problem(await world.post("inspector_city", f"{API}/inspections/{iid}/deliveries", {**body, "id": None}), 403, "not_on_team")
    assert_problem(await world.post("enterprise_a", f"{API}/inspections/{iid}/deliveries", {**body, "id": None}), 403, "role_forbidden")
    early = {**body, "id": None, "delivered_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()}
    assert_problem(await world.post("inspector_a1", f"{API}/inspections/{iid}/deliveries", early), 422, field="delivered_at")
    other = await upload(world, "inspector_a1", jpeg(color=(7, 7, 7)), hazard_id=second_hazards[0])
    foreign_receipt = {**body, "id": None, "evidence_ids": [other.json()["id"]]}
    assert_problem(await world.post("inspector_a1", f"{API}/inspections/{iid}/deliveries", foreign_receipt), 422, "evidence_not_found")


async def test_inspection_documents_wait_for_the_submit_and_for_hazards(world: World) -> None:
    inspection = await start_inspection(world)
    iid = inspection["id"]
    assert_problem(await world.get("inspector_a1", f"{API}/inspections/{iid}/documents/inspection_record"), 409, "document_unavailable")
    delivery = {"document": "inspection_record", "method": "left", "delivered_at": datetime.now(UTC).isoformat(), "recipient": "门卫"}
    assert_problem(await world.post("inspector_a1", f"{API}/inspections/{iid}/deliveries", delivery), 409, "document_not_issued")
    clean, _ = await submitted_routine_inspection(world, findings=0)
    assert_problem(
        await world.get("inspector_a1", f"{API}/inspections/{clean['id']}/documents/rectification_order"), 409, "document_unavailable"
    )
    record = await world.get("inspector_a1", f"{API}/inspections/{clean['id']}/documents/inspection_record")
    assert record.status_code == 200 and "未发现问题" in pdf_text(record.content)
    assert_problem(await world.get("inspector_a1", f"{API}/inspections/{iid}/documents/penalty_decision"), 400)


async def test_a_hazard_removed_at_once_is_ordered_removed_at_once(world: World) -> None:
    """rectify_days 0 (立即排除) puts the deadline on the inspection's own day: the order says 立即排除."""
    inspection, hazard_ids = await submitted_routine_inspection(world, findings=1)
    async with world.app.state.sessionmaker() as session:  # as the submit of a rectify_days 0 finding sets it
        await session.execute(update(Hazard).where(Hazard.id == uuid.UUID(hazard_ids[0])).values(deadline=datetime.now(UTC)))
        await session.commit()
    order = await world.get("inspector_a1", f"{API}/inspections/{inspection['id']}/documents/rectification_order")
    text = pdf_text(order.content)
    assert "整改期限：立即排除" in text and "第六十五条" in text and "立即排除第1项" in text


async def test_the_review_opinion_follows_each_review(world: World) -> None:
    _, hazard_ids = await submitted_routine_inspection(world, findings=1)
    hid = hazard_ids[0]
    path = f"{API}/hazards/{hid}/documents/review_opinion"
    assert_problem(await world.get("inspector_a1", path), 409, "document_unavailable")
    photo = (await upload(world, "enterprise_a", jpeg(color=(1, 99, 1)), hazard_id=hid)).json()
    ok(
        await world.post(
            "enterprise_a", f"{API}/hazards/{hid}/rectifications", {"description": "已加装防护栏", "evidence_ids": [photo["id"]]}
        )
    )
    assert_problem(await world.get("enterprise_a", path), 409, "document_unavailable")  # not reviewed yet
    ok(await world.post("inspector_a2", f"{API}/hazards/{hid}/review", {"decision": "reject", "opinion": "防护栏高度不足1.2米"}))

    rejected = await world.get("enterprise_a", path)  # the enterprise may be the first to ask
    assert rejected.status_code == 200, rejected.text
    assert_embeds_its_font(rejected.content)
    text = pdf_text(rejected.content)
    year = datetime.now(UTC).year
    assert "整改复查意见书" in text and f"district_a应急复查〔{year}〕1号" in text
    assert "不符合要求" in text and "防护栏高度不足1.2米" in text and "已加装防护栏" in text and "inspector_a2（A-0002）" in text
    assert (await world.get("inspector_a1", path)).content == rejected.content
    for outsider in ("inspector_b", "enterprise_b"):
        assert_problem(await world.get(outsider, path), 404, "hazard_not_found")

    photo2 = (await upload(world, "enterprise_a", jpeg(color=(2, 98, 2)), hazard_id=hid)).json()
    ok(
        await world.post(
            "enterprise_a", f"{API}/hazards/{hid}/rectifications", {"description": "防护栏加高至1.2米", "evidence_ids": [photo2["id"]]}
        )
    )
    ok(await world.post("inspector_a1", f"{API}/hazards/{hid}/review", {"decision": "accept", "opinion": "整改到位"}))
    accepted = await world.get("inspector_a1", path)
    text = pdf_text(accepted.content)
    assert f"district_a应急复查〔{year}〕2号" in text and "已整改完毕" in text and "整改到位" in text
    assert accepted.headers["x-content-sha256"] == hashlib.sha256(accepted.content).hexdigest()


async def test_a_self_accepted_hazard_has_no_review_opinion(world: World) -> None:
    deadline = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    hazard = ok(
        await world.post(
            "enterprise_a",
            f"{API}/hazards",
            {"enterprise_id": str(world.enterprises["a"].id), "level": "general", "description": "灭火器过期", "deadline": deadline},
        )
    ).json()
    hid = hazard["id"]
    photo = (await upload(world, "enterprise_a", jpeg(color=(3, 3, 200)), hazard_id=hid)).json()
    ok(await world.post("enterprise_a", f"{API}/hazards/{hid}/rectifications", {"description": "已更换", "evidence_ids": [photo["id"]]}))
    ok(await world.post("enterprise_a", f"{API}/hazards/{hid}/review", {"decision": "accept", "opinion": "自行验收"}))
    assert_problem(await world.get("inspector_a1", f"{API}/hazards/{hid}/documents/review_opinion"), 409, "document_unavailable")
