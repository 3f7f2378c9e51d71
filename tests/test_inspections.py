"""Field inspections: team rules, results upserted by item, a complete and evidenced submit, offline retries."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from backend.evidence.models import Evidence
from backend.hazards.models import Hazard
from backend.inspections.models import Inspection, InspectionResult
from tests.helpers import World, assert_problem, ok, routine_checklist, start_inspection, upload
from tests.media import jpeg

ATTENDEES = [
    {"role": "principal", "name": "王主任"},
    {"role": "safety_manager", "name": "李安全"},
    {"role": "operator", "name": "赵师傅"},
]


async def counts(world: World) -> dict[str, int]:
    async with world.app.state.sessionmaker() as session:
        return {
            model.__tablename__: (await session.execute(select(func.count()).select_from(model))).scalar_one()
            for model in (Inspection, InspectionResult, Evidence, Hazard)
        }


async def items_of(world: World, checklist_id: str) -> list[dict[str, Any]]:
    return (await world.get("inspector_a1", f"/api/v1/checklists/{checklist_id}")).json()["items"]


def all_compliant(checklist_id: str, items: list[dict[str, Any]], hazards: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    hazards = hazards or {}
    return [
        {
            "checklist_id": checklist_id,
            "item_code": item["code"],
            "outcome": "hazard",
            "evidence_ids": hazards[item["code"]],
            "note": "现场发现",
        }
        if item["code"] in hazards
        else {"checklist_id": checklist_id, "item_code": item["code"], "outcome": "compliant"}
        for item in items
    ]


async def test_create_is_idempotent_and_conflicts_on_other_content(world: World) -> None:
    checklist = await routine_checklist(world)
    body = {
        "id": str(uuid.uuid4()),
        "enterprise_id": str(world.enterprises["a"].id),
        "checklist_ids": [checklist["id"]],
        "inspector_ids": [str(world.users["inspector_a1"].id)],
        "kind": "routine",
    }
    first = await world.post("inspector_a1", "/api/v1/inspections", body)
    assert first.status_code == 201 and first.json()["status"] == "in_progress"
    assert first.json()["checklist_ids"] == [checklist["id"]]
    # the same meaning written differently: the caller listed explicitly, ids in another order
    again = await world.post("inspector_a1", "/api/v1/inspections", {**body, "inspector_ids": [str(world.users["inspector_a1"].id)] * 2})
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    other = await world.post(
        "inspector_a1", "/api/v1/inspections", {**body, "kind": "enforcement", "inspector_ids": [str(world.users["inspector_a2"].id)]}
    )
    assert_problem(other, 409, "duplicate_conflict")
    assert (await counts(world))["inspection"] == 1


async def test_enforcement_needs_two_certified_inspectors_of_the_right_agency(world: World) -> None:
    checklist = await routine_checklist(world)
    base = {"enterprise_id": str(world.enterprises["a"].id), "checklist_ids": [checklist["id"]], "kind": "enforcement"}
    alone = await world.post("inspector_a1", "/api/v1/inspections", {**base, "inspector_ids": [str(world.users["inspector_a1"].id)]})
    assert_problem(alone, 422, "two_officers_required", field="inspector_ids")
    outsider = await world.post("inspector_a1", "/api/v1/inspections", {**base, "inspector_ids": [str(world.users["inspector_b"].id)]})
    assert_problem(outsider, 422, "inspector_not_eligible", field="inspector_ids")
    city = await world.post("inspector_a1", "/api/v1/inspections", {**base, "inspector_ids": [str(world.users["inspector_city"].id)]})
    assert city.status_code == 201  # the city agency supervises the district's enterprises too
    assert len(city.json()["inspectors"]) == 2 and all(m["certificate_no"] for m in city.json()["inspectors"])


async def test_create_checks_enterprise_checklists_and_role(world: World) -> None:
    checklist = await routine_checklist(world)
    base = {"checklist_ids": [checklist["id"]], "inspector_ids": [], "kind": "routine"}
    outside = await world.post(
        "inspector_a1",
        "/api/v1/inspections",
        {**base, "enterprise_id": str(world.enterprises["b"].id), "inspector_ids": [str(world.users["inspector_a1"].id)]},
    )
    assert_problem(outside, 422, "enterprise_not_found", field="enterprise_id")
    unpublished = await world.post(
        "inspector_a1",
        "/api/v1/inspections",
        {
            **base,
            "enterprise_id": str(world.enterprises["a"].id),
            "checklist_ids": [str(uuid.uuid4())],
            "inspector_ids": [str(world.users["inspector_a1"].id)],
        },
    )
    assert_problem(unpublished, 422, "checklist_not_found", field="checklist_ids")
    for username in ("enterprise_a", "legal_city", "admin"):
        denied = await world.post(username, "/api/v1/inspections", {**base, "enterprise_id": str(world.enterprises["a"].id)})
        assert_problem(denied, 403)


async def test_results_are_upserted_by_item_and_unknown_items_refused(world: World) -> None:
    inspection = await start_inspection(world)
    checklist_id = inspection["checklist_ids"][0]
    items = await items_of(world, checklist_id)
    url = f"/api/v1/inspections/{inspection['id']}/results"
    batch = {"results": [{"checklist_id": checklist_id, "item_code": items[0]["code"], "outcome": "compliant"}]}
    first = await world.put("inspector_a1", url, batch)
    assert first.status_code == 200 and len(first.json()["results"]) == 1
    assert first.json()["started_at"] is not None
    ok(await world.put("inspector_a1", url, batch))
    changed = {"results": [{**batch["results"][0], "outcome": "not_applicable", "note": "停产设备"}]}
    second = await world.put("inspector_a2", url, changed)
    assert [r["outcome"] for r in second.json()["results"]] == ["not_applicable"]
    assert (await counts(world))["inspection_result"] == 1

    unknown = await world.put(
        "inspector_a1", url, {"results": [{"checklist_id": checklist_id, "item_code": "NOPE-1", "outcome": "compliant"}]}
    )
    assert_problem(unknown, 422, "unknown_item", field="results[0].item_code")
    other_checklist = await world.put(
        "inspector_a1", url, {"results": [{"checklist_id": str(uuid.uuid4()), "item_code": "X", "outcome": "compliant"}]}
    )
    assert_problem(other_checklist, 422, "unknown_item", field="results[0].checklist_id")
    bad_outcome = await world.put(
        "inspector_a1", url, {"results": [{"checklist_id": checklist_id, "item_code": items[0]["code"], "outcome": "fine"}]}
    )
    assert_problem(bad_outcome, 400, "validation_error")
    not_team = await world.put("inspector_city", url, batch)
    assert_problem(not_team, 403, "not_on_team")
    assert_problem(await world.put("inspector_b", url, batch), 404)


async def test_submit_validates_completeness_attendees_notice_and_photos(world: World) -> None:
    inspection = await start_inspection(world, kind="enforcement")
    checklist_id = inspection["checklist_ids"][0]
    items = await items_of(world, checklist_id)
    iid = inspection["id"]
    submit = f"/api/v1/inspections/{iid}/submit"

    incomplete = await world.post("inspector_a1", submit, {"attendees": ATTENDEES})
    assert_problem(incomplete, 422, "results_incomplete")
    finding = items[3]["code"]
    ok(
        await world.put(
            "inspector_a1", f"/api/v1/inspections/{iid}/results", {"results": all_compliant(checklist_id, items, {finding: []})}
        )
    )
    assert_problem(await world.post("inspector_a1", submit, {"attendees": ATTENDEES}), 422, "notice_required")
    notice = await world.post("inspector_a1", f"/api/v1/inspections/{iid}/notice", {"note": "出示执法证件，告知检查事项和权利义务"})
    assert notice.status_code == 200 and notice.json()["notice_given_at"]
    assert_problem(await world.post("inspector_a1", submit, {"attendees": ATTENDEES[:2]}), 422, "attendees_incomplete", field="attendees")
    assert_problem(await world.post("inspector_a1", submit, {"attendees": ATTENDEES}), 422, "evidence_required")

    photo = (await upload(world, "inspector_a1", jpeg(), inspection_id=iid)).json()
    ok(
        await world.put(
            "inspector_a1",
            f"/api/v1/inspections/{iid}/results",
            {"results": [{"checklist_id": checklist_id, "item_code": finding, "outcome": "hazard", "evidence_ids": [photo["id"]]}]},
        )
    )
    done = await world.post("inspector_a1", submit, {"attendees": ATTENDEES, "feedback": "已当场反馈隐患及整改要求"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "submitted" and len(done.json()["hazard_ids"]) == 1

    hazard = (await world.get("inspector_a1", f"/api/v1/hazards/{done.json()['hazard_ids'][0]}")).json()
    assert hazard["status"] == "rectifying" and hazard["source"] == "inspection" and hazard["item_code"] == finding
    assert hazard["level"] == "general" and hazard["evidence_ids"] == [photo["id"]]
    rectify_days = next(i["rectify_days"] for i in items if i["code"] == finding)
    deadline = datetime.fromisoformat(hazard["deadline"])
    assert timedelta(days=rectify_days - 1) < deadline - datetime.now(UTC) <= timedelta(days=rectify_days + 1)
    assert [e["to_status"] for e in hazard["timeline"]] == ["rectifying"]

    trace = (await world.get("inspector_a1", f"/api/v1/inspections/{iid}")).json()
    assert trace["notice_given_at"] <= trace["feedback_at"] and trace["started_at"] <= trace["feedback_at"]
    assert trace["feedback"] == "已当场反馈隐患及整改要求" and len(trace["attendees"]) == 3

    twice = await world.post("inspector_a1", submit, {"attendees": ATTENDEES, "feedback": "已当场反馈隐患及整改要求"})
    assert twice.status_code == 200 and twice.json()["hazard_ids"] == done.json()["hazard_ids"]
    assert_problem(await world.post("inspector_a1", submit, {"attendees": ATTENDEES}), 409, "inspection_submitted")
    late = await world.put("inspector_a1", f"/api/v1/inspections/{iid}/results", {"results": all_compliant(checklist_id, items)})
    assert_problem(late, 409, "inspection_submitted")
    retry = await world.put(
        "inspector_a1",
        f"/api/v1/inspections/{iid}/results",
        {"results": [{"checklist_id": checklist_id, "item_code": finding, "outcome": "hazard", "evidence_ids": [photo["id"]]}]},
    )
    assert retry.status_code == 200  # a late retry of what was recorded changes nothing
    assert (await counts(world))["hazard"] == 1
    assert_problem(await upload(world, "inspector_a1", jpeg(color=(3, 3, 3)), inspection_id=iid), 409, "inspection_submitted")
    again = await upload(world, "inspector_a1", jpeg(), id=photo["id"], inspection_id=iid)
    assert again.status_code == 200  # a late retry of a photo that was stored before the submit


async def test_experts_must_attend_an_expert_inspection(world: World) -> None:
    inspection = await start_inspection(world, with_experts=True)
    checklist_id = inspection["checklist_ids"][0]
    items = await items_of(world, checklist_id)
    ok(await world.put("inspector_a1", f"/api/v1/inspections/{inspection['id']}/results", {"results": all_compliant(checklist_id, items)}))
    submit = f"/api/v1/inspections/{inspection['id']}/submit"
    assert_problem(await world.post("inspector_a1", submit, {"attendees": ATTENDEES}), 422, "attendees_incomplete")
    accepted = await world.post("inspector_a1", submit, {"attendees": [*ATTENDEES, {"role": "expert", "name": "陈专家"}]})
    assert accepted.status_code == 200 and accepted.json()["hazard_ids"] == []


async def test_enterprise_sees_only_its_own_inspections(world: World) -> None:
    inspection = await start_inspection(world)
    assert (await world.get("enterprise_a", f"/api/v1/inspections/{inspection['id']}")).status_code == 200
    assert_problem(await world.get("enterprise_b", f"/api/v1/inspections/{inspection['id']}"), 404)
    assert (await world.get("enterprise_b", "/api/v1/inspections")).json()["items"] == []


async def test_concurrent_creates_with_one_client_id_give_one_record(world: World) -> None:
    checklist = await routine_checklist(world)
    inspection_body = {
        "id": str(uuid.uuid4()),
        "enterprise_id": str(world.enterprises["a"].id),
        "checklist_ids": [checklist["id"]],
        "inspector_ids": [str(world.users["inspector_a2"].id)],
        "kind": "routine",
    }
    hazard_body = {
        "id": str(uuid.uuid4()),
        "enterprise_id": str(world.enterprises["a"].id),
        "level": "general",
        "description": "消防通道堵塞",
    }
    for path, body in (("/api/v1/inspections", inspection_body), ("/api/v1/hazards", hazard_body)):
        responses = await asyncio.gather(*(world.post("inspector_a1", path, body) for _ in range(2)))
        assert sorted(r.status_code for r in responses) == [200, 201], [r.text for r in responses]
        assert responses[0].json()["id"] == responses[1].json()["id"] == body["id"]
    assert (await counts(world))["inspection"] == 1 and (await counts(world))["hazard"] == 1


async def test_offline_sync_replayed_three_times_in_shuffled_order(world: World) -> None:
    """A phone's whole offline inspection, sent three times in random order with duplicate photo uploads."""
    checklist = await routine_checklist(world, "hazardous_chemicals", "major")
    items = await items_of(world, checklist["id"])
    inspection_id = str(uuid.uuid4())
    findings = {items[0]["code"]: 2, items[5]["code"]: 1, items[9]["code"]: 1}
    photos = {code: [(str(uuid.uuid4()), jpeg(color=(n * 40, n, 200 - n))) for n in range(count)] for code, count in findings.items()}
    photos[items[5]["code"]][0] = (photos[items[5]["code"]][0][0], photos[items[0]["code"]][0][1])  # the same picture twice

    create = (
        "POST",
        "/api/v1/inspections",
        {
            "id": inspection_id,
            "enterprise_id": str(world.enterprises["a"].id),
            "checklist_ids": [checklist["id"]],
            "inspector_ids": [str(world.users["inspector_a2"].id)],
            "kind": "routine",
        },
    )
    uploads = [("UPLOAD", evidence_id, content) for group in photos.values() for evidence_id, content in group]
    results = all_compliant(checklist["id"], items, {code: [e for e, _ in group] for code, group in photos.items()})
    batches = [("PUT", f"/api/v1/inspections/{inspection_id}/results", {"results": results[i : i + 7]}) for i in range(0, len(results), 7)]
    submit = ("POST", f"/api/v1/inspections/{inspection_id}/submit", {"attendees": ATTENDEES, "feedback": "反馈"})
    requests = [create, *uploads, *uploads, *batches, submit]

    rng = random.Random(20261129)
    statuses: list[int] = []
    for _ in range(3):
        order = requests[:]
        rng.shuffle(order)
        for method, target, body in order:
            if method == "UPLOAD":
                response = await upload(world, "inspector_a1", body, id=target, inspection_id=inspection_id)
            elif method == "PUT":
                response = await world.put("inspector_a1", target, body)
            else:
                response = await world.post("inspector_a1", target, body)
            assert response.status_code < 500, response.text
            statuses.append(response.status_code)

    final = (await world.get("inspector_a1", f"/api/v1/inspections/{inspection_id}")).json()
    assert final["status"] == "submitted"
    assert len(final["results"]) == len(items)
    assert len(final["hazard_ids"]) == len(findings)
    assert await counts(world) == {
        "inspection": 1,
        "inspection_result": len(items),
        "evidence": sum(findings.values()),
        "hazard": len(findings),
    }
    assert 201 in statuses and 200 in statuses
