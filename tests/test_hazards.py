"""The rectification workflow: every transition, every illegal one, concurrent reviews, look-backs and figures."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from backend.hazards.models import Hazard
from backend.hazards.rectification import lookback_sampled
from tests.helpers import World, assert_problem, ok, upload
from tests.media import jpeg

FUTURE = (datetime.now(UTC) + timedelta(days=20)).date().isoformat()
LATER = (datetime.now(UTC) + timedelta(days=40)).date().isoformat()
PLAN = {
    "objective": "消除瓦斯超限隐患",
    "measures": "增设抽采钻孔，调整通风系统",
    "funds": 350000,
    "responsible_person": "张矿长",
    "deadline": LATER,
    "safeguards": "停止作业面生产，撤出人员，制定应急预案",
}


async def report(world: World, username: str = "inspector_a1", level: str = "general", **extra: Any) -> dict[str, Any]:
    body = {"enterprise_id": str(world.enterprises["a"].id), "level": level, "description": "安全出口被堵塞", **extra}
    response = await world.post(username, "/api/v1/hazards", body)
    assert response.status_code == 201, response.text
    return response.json()


async def act(world: World, username: str, hazard_id: str, action: str, body: dict[str, Any] | None = None) -> Any:
    return await world.post(username, f"/api/v1/hazards/{hazard_id}/{action}", body or {})


async def proof(world: World, hazard_id: str, photos: int = 1, username: str = "enterprise_a") -> dict[str, Any]:
    ids = []
    for n in range(photos):
        uploaded = await upload(world, username, jpeg(color=(n * 30, 200, n)), hazard_id=hazard_id)
        assert uploaded.status_code in (200, 201), uploaded.text
        ids.append(uploaded.json()["id"])
    return {"description": "已清理安全出口，设置禁止堆放标识", "evidence_ids": ids}


async def detail(world: World, hazard_id: str, username: str = "inspector_a1") -> dict[str, Any]:
    return (await world.get(username, f"/api/v1/hazards/{hazard_id}")).json()


async def make_overdue(world: World, hazard_id: str) -> None:
    async with world.app.state.sessionmaker() as session:
        await session.execute(
            update(Hazard).where(Hazard.id == uuid.UUID(hazard_id)).values(deadline=datetime.now(UTC) - timedelta(hours=1))
        )
        await session.commit()


async def test_general_hazard_walks_every_transition(world: World, lookback_now: Any) -> None:
    hazard = await report(world)
    hid = hazard["id"]
    assert hazard["status"] == "reported" and hazard["deadline"] is None

    ordered = await act(world, "inspector_a1", hid, "order", {"deadline": FUTURE, "measures": "立即清理安全出口"})
    assert ordered.status_code == 200 and ordered.json()["status"] == "rectifying"
    deadline = datetime.fromisoformat(ordered.json()["deadline"])
    assert deadline.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).strftime("%H:%M") == "23:59"

    submitted = await act(world, "enterprise_a", hid, "rectifications", await proof(world, hid))
    assert submitted.json()["status"] == "pending_review"
    rejected = await act(world, "inspector_a2", hid, "review", {"decision": "reject", "opinion": "标识不清晰，重新整改"})
    assert rejected.json()["status"] == "rectifying"

    await make_overdue(world, hid)
    assert (await detail(world, hid))["overdue"] is True
    overdue_ids = [h["id"] for h in (await world.get("inspector_a1", "/api/v1/hazards", params={"overdue": "true"})).json()["items"]]
    assert overdue_ids == [hid]
    shortened = await act(
        world, "inspector_a1", hid, "order", {"deadline": (datetime.now(UTC) - timedelta(days=1)).date().isoformat(), "measures": "x"}
    )
    assert_problem(shortened, 422, field="deadline")
    extended = await act(world, "inspector_a1", hid, "order", {"deadline": LATER, "measures": "延期整改至月底"})
    assert extended.json()["status"] == "rectifying" and extended.json()["overdue"] is False

    ok(await act(world, "enterprise_a", hid, "rectifications", await proof(world, hid)))
    closed = await act(world, "inspector_a1", hid, "review", {"decision": "accept", "opinion": "整改到位"})
    assert closed.json()["status"] == "closed" and closed.json()["closed_at"] and closed.json()["lookback_due_at"]
    due = (await world.get("inspector_a1", "/api/v1/lookbacks/due")).json()["items"]
    assert [h["id"] for h in due] == [hid]
    verified = await act(world, "inspector_a1", hid, "lookback", {"outcome": "held", "note": "回头看：整改效果保持"})
    assert verified.json()["status"] == "verified"

    timeline = (await detail(world, hid))["timeline"]
    assert [(e["action"], e["from_status"], e["to_status"]) for e in timeline] == [
        ("created", None, "reported"),
        ("ordered", "reported", "rectifying"),
        ("rectification_submitted", "rectifying", "pending_review"),
        ("rejected", "pending_review", "rectifying"),
        ("extended", "rectifying", "rectifying"),
        ("rectification_submitted", "rectifying", "pending_review"),
        ("accepted", "pending_review", "closed"),
        ("lookback_held", "closed", "verified"),
    ]
    assert [e["actor"] for e in timeline][2:4] == ["enterprise_a", "inspector_a2"]
    assert timeline[3]["note"] == "标识不清晰，重新整改"


async def test_major_hazard_needs_a_plan_agency_acceptance_and_a_look_back(world: World, lookback_now: Any) -> None:
    settings = world.app.state.settings
    world.app.state.settings = replace(settings, lookback_sample_rate=0.0)  # major hazards are looked back regardless
    hazard = await report(world, level="major", description="瓦斯超限作业")
    hid = hazard["id"]
    ok(await act(world, "inspector_a1", hid, "order", {"deadline": LATER, "measures": "停产整顿"}))
    no_plan = await act(world, "enterprise_a", hid, "rectifications", await proof(world, hid))
    assert_problem(no_plan, 409, "plan_required")
    bad_plan = await act(world, "enterprise_a", hid, "governance-plan", {**PLAN, "funds": -1})
    assert_problem(bad_plan, 400, field="funds")
    plan = await act(world, "enterprise_a", hid, "governance-plan", PLAN)
    assert plan.status_code == 201 and plan.json()["plan"]["responsible_person"] == "张矿长"
    ok(await act(world, "enterprise_a", hid, "rectifications", await proof(world, hid)))
    self_accept = await act(world, "enterprise_a", hid, "review", {"decision": "accept", "opinion": "自行验收"})
    assert_problem(self_accept, 403, "agency_review_required")
    closed = await act(world, "inspector_a1", hid, "review", {"decision": "accept", "opinion": "验收合格"})
    assert closed.json()["status"] == "closed" and closed.json()["lookback_due_at"]

    recurred = await act(world, "inspector_a1", hid, "lookback", {"outcome": "recurred", "note": "回头看发现瓦斯再次超限"})
    assert recurred.json()["status"] == "rectifying" and recurred.json()["recurrence_count"] == 1
    assert datetime.fromisoformat(recurred.json()["deadline"]) > datetime.now(UTC)
    ok(await act(world, "enterprise_a", hid, "rectifications", await proof(world, hid)))
    ok(await act(world, "inspector_a1", hid, "review", {"decision": "accept", "opinion": "再次验收合格"}))
    held = await act(world, "inspector_a1", hid, "lookback", {"outcome": "held", "note": "保持"})
    assert held.json()["status"] == "verified" and held.json()["recurrence_count"] == 1
    actions = [e["action"] for e in (await detail(world, hid))["timeline"]]
    assert actions == [
        "created",
        "ordered",
        "plan_submitted",
        "rectification_submitted",
        "accepted",
        "lookback_recurred",
        "rectification_submitted",
        "accepted",
        "lookback_held",
    ]
    plan_event = next(e for e in (await detail(world, hid))["timeline"] if e["action"] == "plan_submitted")
    assert plan_event["data"]["funds"] == 350000
    world.app.state.settings = settings


async def test_self_inspection_general_hazard_closed_by_the_enterprise(world: World) -> None:
    photo_hazard = await report(world, "enterprise_a", deadline=FUTURE, description="灭火器过期")
    hid = photo_hazard["id"]
    assert photo_hazard["status"] == "rectifying" and photo_hazard["source"] == "self_inspection"
    ok(await act(world, "enterprise_a", hid, "rectifications", await proof(world, hid)))
    closed = await act(world, "enterprise_a", hid, "review", {"decision": "accept", "opinion": "已更换灭火器，自行验收"})
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    no_deadline = await world.post(
        "enterprise_a", "/api/v1/hazards", {"enterprise_id": str(world.enterprises["a"].id), "level": "general", "description": "x"}
    )
    assert_problem(no_deadline, 422, field="deadline")
    other = await world.post(
        "enterprise_a",
        "/api/v1/hazards",
        {"enterprise_id": str(world.enterprises["b"].id), "level": "general", "description": "x", "deadline": FUTURE},
    )
    assert_problem(other, 422, "enterprise_not_found", field="enterprise_id")


async def test_rectification_needs_after_photos_for_each_finding_photo(world: World) -> None:
    hazard = await report(world)
    before = await upload(world, "inspector_a1", jpeg(color=(1, 1, 1)), hazard_id=hazard["id"])
    hid = hazard["id"]
    async with world.app.state.sessionmaker() as session:  # the finding's photos, as an inspection would have recorded
        await session.execute(
            update(Hazard).where(Hazard.id == uuid.UUID(hid)).values(evidence_ids=[before.json()["id"], before.json()["id"]])
        )
        await session.commit()
    ok(await act(world, "inspector_a1", hid, "order", {"deadline": FUTURE, "measures": "整改"}))
    assert_problem(
        await act(world, "enterprise_a", hid, "rectifications", {"description": "x", "evidence_ids": []}), 400, field="evidence_ids"
    )
    one = await act(world, "enterprise_a", hid, "rectifications", await proof(world, hid, photos=1))
    assert_problem(one, 422, "evidence_required")
    foreign = await upload(world, "enterprise_b", jpeg(), hazard_id=hid)
    assert_problem(foreign, 422, "hazard_not_found")
    two = await act(world, "enterprise_a", hid, "rectifications", await proof(world, hid, photos=2))
    assert two.status_code == 200
    pairs = (await detail(world, hid))["timeline"][-1]["data"]["pairs"]
    assert len(pairs) == 2 and all(p["before"] == before.json()["id"] for p in pairs)


# Bodies differ from those hazard_in() used, so no call below is a replay of the step that led to the status.
ACTIONS = {
    "order": {"deadline": FUTURE, "measures": "再次整改"},
    "governance-plan": {**PLAN, "objective": "修订后的治理目标"},
    "rectifications": None,  # filled per hazard with a real photo
    "review:accept": {"decision": "accept", "opinion": "再次同意"},
    "review:reject": {"decision": "reject", "opinion": "不同意"},
    "lookback:held": {"outcome": "held", "note": "再次回头看"},
    "lookback:recurred": {"outcome": "recurred", "note": "复发"},
}
# (status, action) pairs the workflow allows, and who may make them
ALLOWED = {
    ("reported", "order"): {"inspector_a1"},
    ("reported", "governance-plan"): {"enterprise_a"},
    ("rectifying", "order"): {"inspector_a1"},
    ("rectifying", "governance-plan"): {"enterprise_a"},
    ("rectifying", "rectifications"): {"enterprise_a"},
    ("pending_review", "review:accept"): {"inspector_a1"},
    ("pending_review", "review:reject"): {"inspector_a1"},
    ("closed", "lookback:held"): {"inspector_a1"},
    ("closed", "lookback:recurred"): {"inspector_a1"},
}
ROLES = ("inspector_a1", "enterprise_a", "legal_city", "admin", "inspector_b", "enterprise_b")
ROLE_OF = {
    "inspector_a1": "inspector",
    "inspector_b": "inspector",
    "enterprise_a": "enterprise",
    "enterprise_b": "enterprise",
    "legal_city": "legal_reviewer",
    "admin": "admin",
}
# who each route lets in at all (its role guard), before anything about the hazard is looked at
GUARD = {
    "order": {"inspector"},
    "lookback": {"inspector"},
    "governance-plan": {"enterprise"},
    "rectifications": {"enterprise"},
    "review": {"inspector", "enterprise"},
}


def expected_refusal(status: str, action: str, username: str) -> tuple[int, str]:
    """The exact answer to a step that must not happen."""
    role, endpoint = ROLE_OF[username], action.split(":", maxsplit=1)[0]
    if role not in GUARD[endpoint]:
        return 403, "role_forbidden"
    if username in ("inspector_b", "enterprise_b"):
        return 404, "hazard_not_found"  # outside their scope: existence does not leak
    if (status, action) not in ALLOWED:
        return 409, "invalid_transition"
    if status == "pending_review" and endpoint == "review" and role == "enterprise":
        return 403, "agency_review_required"  # only its own self-found general hazards
    return 403, "role_forbidden"


async def hazard_in(world: World, status: str) -> str:
    hazard = await report(world, level="major", description=f"处于{status}的隐患")
    hid = hazard["id"]
    if status == "reported":
        return hid
    ok(await act(world, "inspector_a1", hid, "order", {"deadline": FUTURE, "measures": "整改"}))
    if status == "rectifying":
        return hid
    ok(await act(world, "enterprise_a", hid, "governance-plan", PLAN))
    ok(await act(world, "enterprise_a", hid, "rectifications", await proof(world, hid)))
    if status == "pending_review":
        return hid
    ok(await act(world, "inspector_a1", hid, "review", {"decision": "accept", "opinion": "同意"}))
    if status == "closed":
        return hid
    ok(await act(world, "inspector_a1", hid, "lookback", {"outcome": "held", "note": "保持"}))
    return hid


async def test_every_illegal_transition_for_every_role_changes_nothing(world: World, lookback_now: Any) -> None:
    tried = 0
    for status in ("reported", "rectifying", "pending_review", "closed", "verified"):
        hid = await hazard_in(world, status)
        assert (await detail(world, hid))["status"] == status
        photo = (await upload(world, "enterprise_a", jpeg(), hazard_id=hid)).json()["id"]
        for action, given in ACTIONS.items():
            endpoint = action.split(":")[0]
            body = given or {"description": "整改", "evidence_ids": [photo]}
            for username in ROLES:
                if username in ALLOWED.get((status, action), set()):
                    continue
                before = await detail(world, hid)
                response = await act(world, username, hid, endpoint, body)
                status_code, code = expected_refusal(status, action, username)
                assert_problem(response, status_code, code)
                assert await detail(world, hid) == before, (status, action, username)
                tried += 1
    assert tried > 150


async def test_two_concurrent_reviews_cannot_both_win(world: World) -> None:
    hid = await hazard_in(world, "pending_review")
    accept = act(world, "inspector_a1", hid, "review", {"decision": "accept", "opinion": "同意"})
    reject = act(world, "inspector_a2", hid, "review", {"decision": "reject", "opinion": "不同意"})
    responses = await asyncio.gather(accept, reject)
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    timeline = (await detail(world, hid))["timeline"]
    assert len([e for e in timeline if e["action"] in ("accepted", "rejected")]) == 1
    winner = next(r for r in responses if r.status_code == 200).json()
    assert (await detail(world, hid))["status"] == winner["status"]


def test_lookback_sample_is_reproducible_and_matches_the_rate() -> None:
    ids = [uuid.uuid5(uuid.NAMESPACE_URL, f"hazard-{n}") for n in range(20000)]
    for rate in (0.05, 0.2, 0.5):
        first = [lookback_sampled(i, rate) for i in ids]
        second = [lookback_sampled(i, rate) for i in ids]
        assert first == second
        assert abs(sum(first) / len(ids) - rate) < 0.015, rate
    assert not any(lookback_sampled(i, 0.0) for i in ids[:1000]) and all(lookback_sampled(i, 1.0) for i in ids[:1000])


async def test_closed_general_hazards_are_looked_back_as_the_sample_says(world: World) -> None:
    settings = world.app.state.settings
    world.app.state.settings = replace(settings, lookback_delay_days=0, lookback_sample_rate=0.5)
    try:
        closed = []
        for n in range(12):
            hid = (await report(world, "enterprise_a", deadline=FUTURE, description=f"一般隐患{n}"))["id"]
            ok(await act(world, "enterprise_a", hid, "rectifications", await proof(world, hid)))
            ok(await act(world, "enterprise_a", hid, "review", {"decision": "accept", "opinion": "自行验收"}))
            closed.append(hid)
        due = {h["id"] for h in (await world.get("inspector_a1", "/api/v1/lookbacks/due", params={"limit": 200})).json()["items"]}
        assert due == {h for h in closed if lookback_sampled(uuid.UUID(h), 0.5)}
        not_chosen = next(h for h in closed if h not in due)
        assert_problem(await act(world, "inspector_a1", not_chosen, "lookback", ACTIONS["lookback:held"]), 409, "lookback_not_selected")
    finally:
        world.app.state.settings = settings


async def test_lookback_is_not_possible_before_it_is_due(world: World) -> None:
    hid = await hazard_in(world, "closed")  # default delay: 30 days
    assert_problem(await act(world, "inspector_a1", hid, "lookback", ACTIONS["lookback:held"]), 409, "lookback_not_due")


async def test_enterprise_sees_only_its_own_hazards(world: World) -> None:
    hid = (await report(world))["id"]
    assert (await world.get("enterprise_a", f"/api/v1/hazards/{hid}")).status_code == 200
    assert_problem(await world.get("enterprise_b", f"/api/v1/hazards/{hid}"), 404, "hazard_not_found")
    assert (await world.get("enterprise_b", "/api/v1/hazards")).json()["items"] == []
    assert_problem(await world.get("inspector_b", f"/api/v1/hazards/{hid}"), 404)


async def test_stats_group_counts_overdue_median_and_recurrences(world: World, lookback_now: Any) -> None:
    overdue = (await report(world, description="逾期"))["id"]
    ok(await act(world, "inspector_a1", overdue, "order", {"deadline": FUTURE, "measures": "整改"}))
    await make_overdue(world, overdue)
    recurred = await hazard_in(world, "closed")
    ok(await act(world, "inspector_a1", recurred, "lookback", ACTIONS["lookback:recurred"]))
    verified = await hazard_in(world, "verified")
    await report(world, "inspector_b", description="b的隐患", enterprise_id=str(world.enterprises["b"].id))

    by_level = (await world.get("inspector_a1", "/api/v1/stats/hazards", params={"group_by": "level"})).json()
    groups = {g["key"]: g for g in by_level["groups"]}
    assert groups["general"]["total"] == 1 and groups["general"]["overdue"] == 1
    assert groups["major"]["total"] == 2 and groups["major"]["by_status"] == {"rectifying": 1, "verified": 1}
    assert groups["major"]["lookbacks_held"] == 1 and groups["major"]["lookbacks_recurred"] == 1
    assert groups["major"]["hazards_recurred"] == 1
    assert groups["major"]["median_days_to_close"] is not None and groups["major"]["median_days_to_close"] < 1

    by_enterprise = (await world.get("inspector_city", "/api/v1/stats/hazards", params={"group_by": "enterprise"})).json()
    names = {g["name"]: g for g in by_enterprise["groups"]}
    assert names["企业a"]["hazards_recurred"] == 1 and names["企业b"]["total"] == 1
    own = (await world.get("enterprise_b", "/api/v1/stats/hazards", params={"group_by": "status"})).json()
    assert sum(g["total"] for g in own["groups"]) == 1
    for group_by in ("topic", "agency", "status"):
        assert (await world.get("admin", "/api/v1/stats/hazards", params={"group_by": group_by})).status_code == 200
    assert_problem(await world.get("admin", "/api/v1/stats/hazards", params={"group_by": "colour"}), 400, field="group_by")
    assert (await detail(world, verified))["status"] == "verified"

    # the running tally agrees with a recount of the hazards themselves
    everything = (await world.get("admin", "/api/v1/hazards", params={"limit": 200})).json()["items"]
    by_status = (await world.get("admin", "/api/v1/stats/hazards", params={"group_by": "status"})).json()["groups"]
    assert {g["key"]: g["total"] for g in by_status} == dict(Counter(h["status"] for h in everything))
    assert sum(g["overdue"] for g in by_status) == sum(h["overdue"] for h in everything)
    assert sum(g["lookbacks_recurred"] for g in by_status) == sum(h["recurrence_count"] for h in everything)


async def test_median_days_to_close_is_exact(world: World) -> None:
    async def closed_after(days: int) -> None:
        hid = (await report(world, "enterprise_a", deadline=FUTURE, description=f"{days}天整改"))["id"]
        async with world.app.state.sessionmaker() as session:  # reported `days` ago
            await session.execute(
                update(Hazard).where(Hazard.id == uuid.UUID(hid)).values(created_at=datetime.now(UTC) - timedelta(days=days))
            )
            await session.commit()
        ok(await act(world, "enterprise_a", hid, "rectifications", await proof(world, hid)))
        assert (await act(world, "enterprise_a", hid, "review", {"decision": "accept", "opinion": "自行验收"})).status_code == 200

    async def median() -> float:
        groups = (await world.get("inspector_a1", "/api/v1/stats/hazards", params={"group_by": "level"})).json()["groups"]
        return groups[0]["median_days_to_close"]

    for days in (1, 3, 10):
        await closed_after(days)
    assert await median() == 3
    await closed_after(5)
    assert await median() == 4
