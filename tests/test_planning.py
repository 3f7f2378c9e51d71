"""分类分级, annual plans and 双随机、一公开: classification history, plan approval and versions, draws that a third party
can recompute (and that fail verification once tampered with), conflicts, tasks on the phones, progress, and the
public list without personal data."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from backend.clock import local_today
from backend.db import is_postgres
from backend.planning.models import Draw, Task
from tests.helpers import USER_PASSWORD, World, assert_problem, credit_code, ok, routine_checklist
from tests.test_inspections import ATTENDEES, all_compliant, items_of
from tests.test_sync import drain

API = "/api/v1"
TODAY = local_today()
YEAR = TODAY.year
WHOLE_YEAR = {"period_start": f"{YEAR}-01-01", "period_end": f"{YEAR}-12-31"}
GENERAL_ENTERPRISES = 10


@dataclass
class Planning:
    world: World
    district: str  # district_a's id
    general: list[str]  # enterprise ids classified (or left) general
    key: str  # enterprise a, classified key
    inspectors: dict[str, str]  # user id -> username, district_a's four inspectors
    plan_id: str = ""

    def username(self, user_id: str) -> str:
        return self.inspectors[user_id]


async def planning_world(world: World) -> Planning:
    """district_a with four certified inspectors, enterprise `a` classified key, ten more enterprises general (the
    last two never classified: general by default)."""
    district = str(world.agencies["district_a"].id)
    for n in (3, 4):
        created = await world.post(
            "admin",
            f"{API}/users",
            {
                "username": f"inspector_a{n}",
                "password": USER_PASSWORD,
                "display_name": f"执法员{n}号",
                "role": "inspector",
                "agency_id": district,
                "certificate_no": f"A-000{n}",
            },
        )
        ok(created)
        async with world.app.state.sessionmaker() as session:
            from backend.accounts.models import User

            world.users[f"inspector_a{n}"] = (await session.execute(select(User).where(User.username == f"inspector_a{n}"))).scalar_one()
    general = []
    for n in range(GENERAL_ENTERPRISES):
        body = {
            "name": f"一般企业{n}",
            "credit_code": credit_code(200 + n),
            "topics": ["industry_trade"],
            "agency_id": district,
            "address": "测试地址",
            "principal": f"法定代表人{n}",
        }
        enterprise = ok(await world.post("inspector_a1", f"{API}/enterprises", body)).json()
        general.append(enterprise["id"])
        if n < GENERAL_ENTERPRISES - 2:
            await classify(world, enterprise["id"], "general", "low")
    key = str(world.enterprises["a"].id)
    await classify(world, key, "key", "major")
    inspectors = {str(world.users[f"inspector_a{n}"].id): f"inspector_a{n}" for n in (1, 2, 3, 4)}
    return Planning(world=world, district=district, general=general, key=key, inspectors=inspectors)


async def classify(world: World, enterprise_id: str, category: str, risk: str, valid_from: str | None = None) -> dict[str, Any]:
    body = {"category": category, "risk_level": risk, "basis": "风险评估报告", "valid_from": valid_from or f"{YEAR}-01-01"}
    return ok(await world.put("inspector_a1", f"{API}/enterprises/{enterprise_id}/classification", body)).json()


async def approved_plan(p: Planning, rules: list[dict[str, Any]] | None = None) -> str:
    rules = rules or [
        {"category": "key", "visits_per_year": 3},
        {"category": "general", "sample_rate": 0.3},
        {"category": "general", "topic": "road_transport", "sample_rate": 0.5},
    ]
    plan = ok(
        await p.world.post(
            "inspector_a1", f"{API}/plans", {"agency_id": p.district, "year": YEAR, "title": f"{YEAR}年度监督检查计划", "rules": rules}
        )
    ).json()
    ok(await p.world.post("leader_a", f"{API}/plans/{plan['id']}/approve"))
    p.plan_id = plan["id"]
    return plan["id"]


async def draw(p: Planning, rule_index: int, **extra: Any) -> Any:
    body = {"id": str(uuid.uuid4()), "rule_index": rule_index, **WHOLE_YEAR, **extra}
    return await p.world.post("inspector_a1", f"{API}/plans/{p.plan_id}/draws", body)


# --- 分类分级 -------------------------------------------------------------------------------------------------------


async def test_classification_keeps_history_and_the_draw_uses_the_one_in_force(world: World) -> None:
    p = await planning_world(world)
    target = p.general[0]
    again = await classify(world, target, "general", "low")  # the same again: a retry, no new row
    history = ok(await world.get("inspector_a1", f"{API}/enterprises/{target}/classifications")).json()["items"]
    assert [h["id"] for h in history] == [again["id"]]

    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    later = await classify(world, target, "key", "high", valid_from=tomorrow)  # not yet in force
    history = ok(await world.get("inspector_a1", f"{API}/enterprises/{target}/classifications")).json()["items"]
    assert [h["id"] for h in history] == [later["id"], again["id"]] and history[0]["category"] == "key"
    assert ok(await world.get("enterprise_a", f"{API}/enterprises/{p.key}/classifications")).json()["items"][0]["category"] == "key"

    await approved_plan(p)
    key_draw = ok(await draw(p, 0)).json()
    assert {t["enterprise_id"] for t in key_draw["tasks"]} == {p.key}  # the later `key` row is not in force today
    general = ok(await draw(p, 1, count=GENERAL_ENTERPRISES)).json()
    assert target in {t["enterprise_id"] for t in general["tasks"]}
    assert p.key not in {t["enterprise_id"] for t in general["tasks"]}
    assert set(p.general[-2:]) <= {t["enterprise_id"] for t in general["tasks"]}  # unclassified: general by default

    assert_problem(await world.get("enterprise_b", f"{API}/enterprises/{p.key}/classifications"), 404, "enterprise_not_found")
    body = {"category": "key", "risk_level": "major", "basis": "x", "valid_from": f"{YEAR}-01-01"}
    assert_problem(await world.put("inspector_other", f"{API}/enterprises/{p.key}/classification", body), 404, "enterprise_not_found")
    assert_problem(await world.put("legal_city", f"{API}/enterprises/{p.key}/classification", body), 403, "role_forbidden")
    assert_problem(await world.put("inspector_a1", f"{API}/enterprises/{p.key}/classification", {**body, "category": "vip"}), 400)


# --- plans ------------------------------------------------------------------------------------------------------


async def test_plan_approval_immutability_and_versions(world: World) -> None:
    p = await planning_world(world)
    body = {
        "id": str(uuid.uuid4()),
        "agency_id": p.district,
        "year": YEAR,
        "title": "年度计划",
        "rules": [{"category": "key", "visits_per_year": 2}],
    }
    created = await world.post("inspector_a1", f"{API}/plans", body)
    assert created.status_code == 201 and created.json()["status"] == "draft" and created.json()["version"] == 1, created.text
    plan_id = created.json()["id"]
    assert (await world.post("inspector_a1", f"{API}/plans", body)).status_code == 200  # a replay
    assert_problem(await world.post("inspector_a1", f"{API}/plans", {**body, "title": "别的"}), 409, "duplicate_conflict")
    assert_problem(await world.post("inspector_a1", f"{API}/plans", {**body, "id": str(uuid.uuid4())}), 409, "plan_exists")
    assert_problem(
        await world.post("inspector_a1", f"{API}/plans", {**body, "id": None, "rules": [{"category": "key"}]}), 400, "validation_error"
    )
    assert_problem(await world.post("inspector_other", f"{API}/plans", {**body, "id": None}), 422, "agency_not_found", field="agency_id")

    edited = ok(await world.put("inspector_a1", f"{API}/plans/{plan_id}", {"title": "年度计划（修订）", "rules": body["rules"]})).json()
    assert edited["title"] == "年度计划（修订）"
    assert_problem(await draw_on(world, plan_id, 0), 409, "plan_not_approved")

    assert_problem(await world.post("inspector_a1", f"{API}/plans/{plan_id}/approve"), 403, "role_forbidden")
    assert_problem(await world.post("legal_city", f"{API}/plans/{plan_id}/approve"), 403, "role_forbidden")
    assert_problem(await world.post("leader_other", f"{API}/plans/{plan_id}/approve"), 404, "plan_not_found")
    approved = ok(await world.post("leader_a", f"{API}/plans/{plan_id}/approve")).json()
    assert approved["status"] == "approved" and approved["approved_by"] == str(world.users["leader_a"].id)
    assert ok(await world.post("leader_a", f"{API}/plans/{plan_id}/approve")).json() == approved  # approving again changes nothing

    assert_problem(await world.put("inspector_a1", f"{API}/plans/{plan_id}", {"title": "改", "rules": body["rules"]}), 409, "plan_approved")
    version2 = {**body, "id": str(uuid.uuid4()), "rules": [{"category": "key", "visits_per_year": 4}], "supersedes": plan_id}
    v2 = await world.post("inspector_a1", f"{API}/plans", version2)
    assert v2.status_code == 201 and v2.json()["version"] == 2 and v2.json()["supersedes"] == plan_id, v2.text
    assert ok(await world.get("inspector_a1", f"{API}/plans/{plan_id}")).json()["status"] == "approved"  # until v2 is approved
    ok(await world.post("leader_a", f"{API}/plans/{v2.json()['id']}/approve"))
    assert ok(await world.get("inspector_a1", f"{API}/plans/{plan_id}")).json()["status"] == "superseded"
    assert_problem(await draw_on(world, plan_id, 0), 409, "plan_not_approved")
    assert_problem(await world.post("leader_a", f"{API}/plans/{plan_id}/approve"), 409, "invalid_transition")

    listed = ok(await world.get("legal_city", f"{API}/plans", params={"year": YEAR})).json()["items"]
    assert {x["id"] for x in listed} == {plan_id, v2.json()["id"]}
    assert ok(await world.get("inspector_b", f"{API}/plans")).json()["items"] == []  # another district's plans
    assert_problem(await world.get("enterprise_a", f"{API}/plans"), 403, "role_forbidden")
    assert_problem(await world.get("inspector_other", f"{API}/plans/{plan_id}/progress"), 404, "plan_not_found")


async def draw_on(world: World, plan_id: str, rule_index: int, **extra: Any) -> Any:
    return await world.post("inspector_a1", f"{API}/plans/{plan_id}/draws", {"rule_index": rule_index, **WHOLE_YEAR, **extra})


# --- draws ------------------------------------------------------------------------------------------------------


def recompute_enterprises(seed_hex: str, population: str, count: int) -> list[str]:
    """A third party's recomputation from the published description alone (mobile_api_spec/API.md)."""
    seed = bytes.fromhex(seed_hex)
    ids = population.split("\n")
    assert ids == sorted(ids)
    return sorted(ids, key=lambda e: (hmac.new(seed, f"enterprise:{e}".encode(), hashlib.sha256).digest(), e))[:count]


async def test_key_enterprises_get_their_visits_general_ones_are_sampled_and_draws_verify(world: World) -> None:
    p = await planning_world(world)
    await approved_plan(p)

    key = await draw(p, 0)
    assert key.status_code == 201, key.text
    visits = key.json()["tasks"]
    assert [(t["enterprise_id"], t["visit"]) for t in visits] == [(p.key, 1), (p.key, 2), (p.key, 3)]
    assert [t["due_by"] for t in visits] == sorted(t["due_by"] for t in visits) and visits[-1]["due_by"].startswith(f"{YEAR}-12-31")
    for before, after in itertools.pairwise(visits):
        assert set(before["inspector_ids"]) != set(after["inspector_ids"])  # never the same team twice in a row
    assert all(len(t["inspector_ids"]) == 2 and set(t["inspector_ids"]) <= set(p.inspectors) for t in visits)
    assert_problem(await draw(p, 0, count=1), 422, "validation_error", field="count")

    sampled = await draw(p, 1)  # sample_rate 0.3 of the ten general enterprises: 3
    assert sampled.status_code == 201, sampled.text
    result = sampled.json()
    drawn = [t["enterprise_id"] for t in result["tasks"]]
    assert len(drawn) == len(set(drawn)) == 3 and set(drawn) <= set(p.general) and result["population_size"] == GENERAL_ENTERPRISES

    snapshot = ok(await world.get("inspector_a1", f"{API}/draws/{result['id']}/snapshot")).json()
    assert hashlib.sha256(snapshot["population"].encode()).hexdigest() == result["population_hash"] == snapshot["population_hash"]
    assert snapshot["seed"] == result["seed"] and len(bytes.fromhex(result["seed"])) == 32
    assert recompute_enterprises(snapshot["seed"], snapshot["population"], snapshot["count"]) == drawn
    for draw_id in (key.json()["id"], result["id"]):
        verdict = ok(await world.get("inspector_a1", f"{API}/draws/{draw_id}/verify")).json()
        assert verdict["valid"] is True and verdict["tasks"] > 0, verdict

    # the same draw replayed: the same result; other content under its id: 409
    body = {"id": result["id"], "rule_index": 1, **WHOLE_YEAR}
    replay = await world.post("inspector_a1", f"{API}/plans/{p.plan_id}/draws", body)
    assert replay.status_code == 200 and replay.json() == result
    assert_problem(await world.post("inspector_a1", f"{API}/plans/{p.plan_id}/draws", {**body, "count": 5}), 409, "duplicate_conflict")
    assert ok(await world.get("legal_city", f"{API}/draws/{result['id']}")).json() == result

    # bad input: a rule with nobody to draw, too few inspectors, a period outside the plan's year
    empty = assert_problem(await draw(p, 2), 422, "empty_population")
    assert empty["rule_index"] == 2 and "road_transport" in empty["detail"]
    short = assert_problem(await draw(p, 1, inspectors_per_task=5), 422, "not_enough_inspectors")
    assert short["rule_index"] == 1 and "4 eligible" in short["detail"]
    assert_problem(await draw(p, 1, period_start=f"{YEAR - 1}-12-01"), 422, "validation_error", field="period_start")
    assert_problem(await draw(p, 7), 422, "validation_error", field="rule_index")
    assert_problem(await draw(p, 1, count=2, sample_rate=0.5), 400, "validation_error")


async def test_a_tampered_seed_or_snapshot_fails_verification(world: World) -> None:
    p = await planning_world(world)
    await approved_plan(p)
    result = ok(await draw(p, 1, count=4)).json()
    url = f"{API}/draws/{result['id']}/verify"
    assert ok(await world.get("admin", url)).json()["valid"] is True
    async with world.app.state.sessionmaker() as session:
        if not is_postgres(session):
            pytest.skip("the draw table is append-only; the tampering below bypasses its trigger the PostgreSQL way")

    async def tamper(**values: Any) -> None:
        async with world.app.state.sessionmaker() as session:
            await session.execute(text("SET LOCAL session_replication_role = replica"))  # past the append-only trigger
            await session.execute(update(Draw).where(Draw.id == uuid.UUID(result["id"])).values(**values))
            await session.commit()

    other_seed = "00" * 32
    await tamper(seed=other_seed)
    verdict = ok(await world.get("admin", url)).json()
    assert verdict == {**verdict, "valid": False, "selection_matches": False, "population_hash_matches": True}
    await tamper(seed=result["seed"])
    assert ok(await world.get("admin", url)).json()["valid"] is True

    population = ok(await world.get("admin", f"{API}/draws/{result['id']}/snapshot")).json()["population"]
    await tamper(population="\n".join(population.split("\n")[1:]))  # someone left out of the population
    verdict = ok(await world.get("admin", url)).json()
    assert verdict["valid"] is False and verdict["population_hash_matches"] is False

    async with world.app.state.sessionmaker() as session:  # and the draw table refuses ordinary changes
        with pytest.raises(Exception, match="append-only"):
            await session.execute(update(Draw).where(Draw.id == uuid.UUID(result["id"])).values(seed=other_seed))


async def test_a_conflicted_inspector_is_never_drawn_and_teams_change_between_draws(world: World) -> None:
    p = await planning_world(world)
    a3 = str(world.users["inspector_a3"].id)
    a2 = str(world.users["inspector_a2"].id)
    conflicted = p.general[0]
    declared = await world.post("inspector_a3", f"{API}/users/{a3}/conflicts", {"enterprise_id": conflicted, "reason": "配偶在该企业任职"})
    assert declared.status_code == 201, declared.text
    again = await world.post("inspector_a3", f"{API}/users/{a3}/conflicts", {"enterprise_id": conflicted, "reason": "配偶在该企业任职"})
    assert again.status_code == 200 and again.json()["id"] == declared.json()["id"]
    assert_problem(await world.post("inspector_a3", f"{API}/users/{a3}/conflicts", {"enterprise_id": conflicted, "reason": "别的"}), 409)
    assert_problem(await world.post("inspector_a1", f"{API}/users/{a2}/conflicts", {"enterprise_id": conflicted, "reason": "x"}), 403)
    assert ok(await world.post("leader_a", f"{API}/users/{a2}/conflicts", {"enterprise_id": p.general[1], "reason": "曾在该企业任职"}))
    assert_problem(await world.post("inspector_other", f"{API}/users/{a3}/conflicts", {"enterprise_id": conflicted, "reason": "x"}), 404)

    await approved_plan(p)
    previous: dict[str, set[str]] = {}
    for _ in range(12):
        result = ok(await draw(p, 1, count=GENERAL_ENTERPRISES)).json()
        for task in result["tasks"]:
            team = set(task["inspector_ids"])
            assert not (task["enterprise_id"] == conflicted and a3 in team)
            assert not (task["enterprise_id"] == p.general[1] and a2 in team)
            assert team != previous.get(task["enterprise_id"]), "the same team as in the previous draw of the plan"
            previous[task["enterprise_id"]] = team
        assert ok(await world.get("inspector_a1", f"{API}/draws/{result['id']}/verify")).json()["valid"] is True


async def test_the_same_draw_sent_twice_at_once_is_made_once(world: World) -> None:
    p = await planning_world(world)
    await approved_plan(p)
    body = {"id": str(uuid.uuid4()), "rule_index": 1, "count": 5, **WHOLE_YEAR}
    first, second = await asyncio.gather(
        world.post("inspector_a1", f"{API}/plans/{p.plan_id}/draws", body),
        world.post("inspector_a2", f"{API}/plans/{p.plan_id}/draws", body),
    )
    assert sorted((first.status_code, second.status_code)) == [200, 201], (first.text, second.text)
    assert first.json() == second.json()
    async with world.app.state.sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(Draw))).scalar_one() == 1
        assert (await session.execute(select(func.count()).select_from(Task))).scalar_one() == 5


# --- tasks, inspections, progress, 一公开 ---------------------------------------------------------------------------


async def test_a_task_reaches_its_inspectors_the_inspection_closes_it_and_the_public_sees_no_people(world: World) -> None:
    p = await planning_world(world)
    await approved_plan(p)
    feeds = {u: (await drain(world, u))[1] for u in ("inspector_a1", "enterprise_a", "inspector_b")}
    task = ok(await draw(p, 0, period_start=TODAY.isoformat())).json()["tasks"][0]  # nothing overdue yet
    first, second = (p.username(i) for i in task["inspector_ids"])
    outsider = next(u for i, u in p.inspectors.items() if i not in task["inspector_ids"])

    mine = ok(await world.get(first, f"{API}/tasks", params={"assignee": "me"})).json()
    assert task["id"] in {t["id"] for t in mine["items"]} and mine["next_cursor"] is None
    theirs = ok(await world.get(outsider, f"{API}/tasks", params={"assignee": "me"})).json()["items"]
    assert task["id"] not in {t["id"] for t in theirs} and all(str(world.users[outsider].id) in t["inspector_ids"] for t in theirs)
    paged = ok(await world.get("leader_a", f"{API}/tasks", params={"status": "assigned", "limit": 2})).json()
    rest = ok(await world.get("leader_a", f"{API}/tasks", params={"status": "assigned", "limit": 2, "cursor": paged["next_cursor"]})).json()
    assert len(paged["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert ok(await world.get("inspector_b", f"{API}/tasks")).json()["items"] == []
    phone = (await drain(world, first))[0]
    assert task["id"] in {c["id"] for c in phone if c["entity"] == "task"}
    assert next(c for c in phone if c["id"] == task["id"])["data"]["inspector_ids"] == task["inspector_ids"]
    for username in ("enterprise_a", "inspector_b"):  # not the enterprise, not another district
        assert all(c["entity"] != "task" for c in (await drain(world, username, feeds[username]))[0])

    checklist = await routine_checklist(world)
    body = {
        "id": str(uuid.uuid4()),
        "enterprise_id": p.key,
        "checklist_ids": [checklist["id"]],
        "inspector_ids": task["inspector_ids"],
        "kind": "routine",
        "task_id": task["id"],
    }
    assert_problem(await world.post(outsider, f"{API}/inspections", body), 422, "task_mismatch", field="inspector_ids")
    assert_problem(
        await world.post(first, f"{API}/inspections", {**body, "enterprise_id": p.general[0]}), 422, "task_mismatch", field="enterprise_id"
    )
    assert_problem(
        await world.post(first, f"{API}/inspections", {**body, "task_id": str(uuid.uuid4())}), 422, "task_not_found", field="task_id"
    )
    inspection = await world.post(first, f"{API}/inspections", body)
    assert inspection.status_code == 201, inspection.text
    assert (await world.post(first, f"{API}/inspections", body)).status_code == 200  # a retry
    assert_problem(await world.post(second, f"{API}/inspections", {**body, "id": str(uuid.uuid4())}), 409, "task_taken")
    started = ok(await world.get(first, f"{API}/tasks", params={"assignee": "me", "status": "in_progress"})).json()["items"]
    assert [t["id"] for t in started] == [task["id"]] and started[0]["inspection_id"] == body["id"]

    progress = ok(await world.get("leader_a", f"{API}/plans/{p.plan_id}/progress")).json()["rules"][0]
    assert progress == {**progress, "planned": 3, "assigned": 2, "in_progress": 1, "done": 0, "overdue": 0}

    items = await items_of(world, checklist["id"])
    ok(await world.put(second, f"{API}/inspections/{body['id']}/results", {"results": all_compliant(checklist["id"], items)}))
    ok(await world.post(second, f"{API}/inspections/{body['id']}/submit", {"attendees": ATTENDEES}))
    done = ok(await world.get(first, f"{API}/tasks", params={"assignee": "me", "status": "done"})).json()["items"]
    assert [t["id"] for t in done] == [task["id"]] and done[0]["done_at"]
    assert any(c["id"] == task["id"] and c["data"]["status"] == "done" for c in (await drain(world, first))[0])

    async with world.app.state.sessionmaker() as session:  # the third visit's date has passed
        third = (await session.execute(select(Task).where(Task.enterprise_id == uuid.UUID(p.key), Task.visit == 3))).scalar_one()
        await session.execute(update(Task).where(Task.id == third.id).values(due_by=datetime.now(UTC) - timedelta(days=1)))
        await session.commit()
    progress = ok(await world.get("inspector_a1", f"{API}/plans/{p.plan_id}/progress")).json()["rules"]
    assert progress[0] == {**progress[0], "planned": 3, "assigned": 2, "in_progress": 0, "done": 1, "overdue": 1}
    assert progress[1]["planned"] == 0

    public = await world.client.get(f"{API}/public/draws")  # no token
    assert public.status_code == 200, public.text
    published = public.json()["items"][0]
    assert [v["enterprise_name"] for v in published["visits"]] == ["企业a"] * 3
    visit = published["visits"][0]
    assert visit["done"] is True and visit["inspection_date"] == TODAY.isoformat() and visit["hazards_found"] is False
    assert published["visits"][1]["inspection_date"] is None and published["visits"][1]["hazards_found"] is None
    people = [u.display_name for u in world.users.values()] + [str(u.id) for u in world.users.values()] + ["负责人a", "安全员a"]
    people += [a["name"] for a in ATTENDEES]
    assert not [name for name in people if name in public.text], "the public list names people"
