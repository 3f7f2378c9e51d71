"""Agencies, users and enterprises: validation, uniqueness, roles and scope."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from backend.accounts.credit_code import credit_code_error, make_credit_code
from backend.audit import AuditLog
from tests.helpers import World, assert_problem, credit_code, ok

ENTERPRISE = "/api/v1/enterprises"


def enterprise_body(world: World, agency: str = "district_a", **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "朔州新建煤业有限公司",
        "credit_code": credit_code(99),
        "topics": ["mining", "fire_safety"],
        "agency_id": str(world.agencies[agency].id),
        "address": "朔州市朔城区",
        "location": {"lat": 39.3, "lng": 112.4},
        "principal": "张三",
        "safety_manager": "李四",
    }
    body.update(overrides)
    return body


def test_credit_code_check_character() -> None:
    assert credit_code_error("91350100M000100Y43") is None  # the example printed in GB 32100-2015
    assert credit_code_error("91350100M000100Y44") is not None
    assert credit_code_error("91350100M000100Y4") is not None
    assert credit_code_error("91350100M0001O0Y43") is not None  # letter O is not in the code's alphabet
    assert credit_code_error(make_credit_code("91140602MA0K00001")) is None


async def test_admin_builds_agency_tree(world: World) -> None:
    root = await world.post("admin", "/api/v1/agencies", {"name": "大同市应急管理局", "region_code": "140200"})
    assert root.status_code == 201, root.text
    child = await world.post(
        "admin", "/api/v1/agencies", {"name": "平城区应急管理局", "region_code": "140213", "parent_id": root.json()["id"]}
    )
    assert child.status_code == 201
    assert child.json()["parent_id"] == root.json()["id"]
    listed = await world.get("admin", "/api/v1/agencies")
    assert {a["name"] for a in listed.json()["items"]} >= {"大同市应急管理局", "平城区应急管理局"}


async def test_agency_validation_and_roles(world: World) -> None:
    bad = await world.post("admin", "/api/v1/agencies", {"name": "x", "region_code": "12"})
    assert_problem(bad, 400, "validation_error", field="region_code")
    unknown_parent = await world.post("admin", "/api/v1/agencies", {"name": "x", "region_code": "140200", "parent_id": str(uuid.uuid4())})
    assert_problem(unknown_parent, 422, "agency_not_found", field="parent_id")
    for username in ("inspector_a1", "legal_city", "enterprise_a"):
        denied = await world.post(username, "/api/v1/agencies", {"name": "x", "region_code": "140200"})
        assert_problem(denied, 403, "role_forbidden")


async def test_inspector_sees_only_own_agency_subtree(world: World) -> None:
    city = await world.get("inspector_city", "/api/v1/agencies")
    assert {a["name"] for a in city.json()["items"]} == {"city应急管理局", "district_a应急管理局", "district_b应急管理局"}
    district = await world.get("inspector_a1", "/api/v1/agencies")
    assert [a["name"] for a in district.json()["items"]] == ["district_a应急管理局"]
    enterprise = await world.get("enterprise_a", "/api/v1/agencies")
    assert [a["name"] for a in enterprise.json()["items"]] == ["district_a应急管理局"]


async def test_create_user_rules(world: World) -> None:
    base = {"username": "new.inspector", "password": "long-enough-password", "display_name": "新执法人员"}
    no_cert = await world.post("admin", "/api/v1/users", {**base, "role": "inspector", "agency_id": str(world.agencies["city"].id)})
    assert_problem(no_cert, 422, "validation_error", field="certificate_no")
    no_agency = await world.post("admin", "/api/v1/users", {**base, "role": "legal_reviewer"})
    assert_problem(no_agency, 422, "validation_error", field="agency_id")
    no_enterprise = await world.post("admin", "/api/v1/users", {**base, "role": "enterprise"})
    assert_problem(no_enterprise, 422, "validation_error", field="enterprise_id")
    bad_role = await world.post("admin", "/api/v1/users", {**base, "role": "superuser"})
    assert_problem(bad_role, 400, "validation_error", field="role")
    short_password = await world.post("admin", "/api/v1/users", {**base, "role": "admin", "password": "short"})
    assert_problem(short_password, 400, "validation_error", field="password")

    ok = await world.post(
        "admin",
        "/api/v1/users",
        {**base, "role": "inspector", "agency_id": str(world.agencies["city"].id), "certificate_no": "晋应急执0099"},
    )
    assert ok.status_code == 201, ok.text
    assert "password" not in ok.text and "password_hash" not in ok.text
    again = await world.post(
        "admin",
        "/api/v1/users",
        {**base, "role": "inspector", "agency_id": str(world.agencies["city"].id), "certificate_no": "晋应急执0099"},
    )
    assert_problem(again, 409, "duplicate_conflict", field="username")
    login = await world.client.post("/api/v1/auth/login", json={"username": "new.inspector", "password": "long-enough-password"})
    assert login.status_code == 200

    for username in ("inspector_a1", "enterprise_a", "legal_city"):
        denied = await world.post(username, "/api/v1/users", {**base, "username": "x" + username, "role": "admin"})
        assert_problem(denied, 403)


async def test_user_list_is_scoped(world: World) -> None:
    listed = await world.get("inspector_a1", "/api/v1/users", params={"role": "inspector"})
    assert {u["username"] for u in listed.json()["items"]} == {"inspector_a1", "inspector_a2"}
    assert_problem(await world.get("enterprise_a", "/api/v1/users"), 403)


async def test_create_enterprise_validates_credit_code_and_topics(world: World) -> None:
    bad_code = await world.post("inspector_a1", ENTERPRISE, enterprise_body(world, credit_code="91140602MA0K000010"))
    body = assert_problem(bad_code, 400, "validation_error", field="credit_code")
    assert "校验位" in body["detail"]
    bad_topic = await world.post("inspector_a1", ENTERPRISE, enterprise_body(world, topics=["space_travel"]))
    assert_problem(bad_topic, 400, "validation_error", field="topics.0")
    bad_location = await world.post("inspector_a1", ENTERPRISE, enterprise_body(world, location={"lat": 123, "lng": 1}))
    assert_problem(bad_location, 400, "validation_error")

    created = await world.post("inspector_a1", ENTERPRISE, enterprise_body(world))
    assert created.status_code == 201, created.text
    data = created.json()
    assert data["topics"] == ["fire_safety", "mining"]
    assert data["location"] == {"lat": 39.3, "lng": 112.4}

    duplicate = await world.post("admin", ENTERPRISE, enterprise_body(world, name="另一家"))
    assert_problem(duplicate, 409, "duplicate_conflict", field="credit_code")


async def test_inspector_cannot_register_enterprise_outside_their_tree(world: World) -> None:
    outside = await world.post("inspector_a1", ENTERPRISE, enterprise_body(world, agency="district_b"))
    assert_problem(outside, 422, "agency_not_found", field="agency_id")
    for username in ("enterprise_a", "legal_city"):
        assert_problem(await world.post(username, ENTERPRISE, enterprise_body(world)), 403)


async def test_enterprise_user_sees_only_own_enterprise(world: World) -> None:
    listed = await world.get("enterprise_a", ENTERPRISE)
    assert [e["name"] for e in listed.json()["items"]] == ["企业a"]
    own = await world.get("enterprise_a", f"{ENTERPRISE}/{world.enterprises['a'].id}")
    assert own.status_code == 200
    other = await world.get("enterprise_a", f"{ENTERPRISE}/{world.enterprises['b'].id}")
    assert_problem(other, 404, "enterprise_not_found")


async def test_inspector_sees_only_enterprises_of_own_agency_tree(world: World) -> None:
    district = await world.get("inspector_a1", ENTERPRISE)
    assert [e["name"] for e in district.json()["items"]] == ["企业a"]
    assert_problem(await world.get("inspector_a1", f"{ENTERPRISE}/{world.enterprises['b'].id}"), 404)
    assert_problem(await world.get("inspector_a1", f"{ENTERPRISE}/{world.enterprises['other'].id}"), 404)
    city = await world.get("inspector_city", ENTERPRISE)
    assert {e["name"] for e in city.json()["items"]} == {"企业a", "企业b"}
    everything = await world.get("admin", ENTERPRISE)
    assert {e["name"] for e in everything.json()["items"]} == {"企业a", "企业b", "企业other"}


async def test_enterprise_list_filters_and_pages(world: World) -> None:
    for n in range(5):
        created = await world.post(
            "admin", ENTERPRISE, enterprise_body(world, name=f"分页企业{n}", credit_code=credit_code(200 + n), topics=["fire_safety"])
        )
        assert created.status_code == 201
    by_topic = await world.get("admin", ENTERPRISE, params={"topic": "fire_safety"})
    assert len(by_topic.json()["items"]) == 5
    by_name = await world.get("admin", ENTERPRISE, params={"q": "分页企业3"})
    assert [e["name"] for e in by_name.json()["items"]] == ["分页企业3"]

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await world.get("admin", ENTERPRISE, params=params)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 8

    assert_problem(await world.get("admin", ENTERPRISE, params={"limit": 500}), 400, field="limit")
    assert_problem(await world.get("admin", ENTERPRISE, params={"cursor": "garbage!"}), 400, field="cursor")


async def test_every_change_is_audited_with_request_id(world: World) -> None:
    response = await world.post("inspector_a1", ENTERPRISE, enterprise_body(world), headers={"X-Request-ID": "req-42"})
    assert response.status_code == 201
    assert response.headers["x-request-id"] == "req-42"
    async with world.app.state.sessionmaker() as session:
        rows = (await session.execute(select(AuditLog).where(AuditLog.entity_id == response.json()["id"]))).scalars().all()
    assert len(rows) == 1
    row = rows[0]
    assert (row.action, row.entity, row.actor_username, row.actor_role, row.request_id) == (
        "enterprise.create",
        "enterprise",
        "inspector_a1",
        "inspector",
        "req-42",
    )
    assert row.data["credit_code"] == credit_code(99)


async def test_rejected_change_leaves_no_audit_row(world: World) -> None:
    ok(await world.post("admin", ENTERPRISE, enterprise_body(world)))
    duplicate = await world.post("admin", ENTERPRISE, enterprise_body(world, name="重复"))
    assert duplicate.status_code == 409
    async with world.app.state.sessionmaker() as session:
        rows = (await session.execute(select(AuditLog).where(AuditLog.action == "enterprise.create"))).scalars().all()
    assert len(rows) == 1
