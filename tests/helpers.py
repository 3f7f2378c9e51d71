"""Shared test data: a small world of agencies, enterprises and accounts, and tokens to act as each of them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import httpx
from litestar import Litestar
from sqlalchemy import select

from backend.accounts.credit_code import make_credit_code
from backend.accounts.models import Agency, Enterprise, EnterpriseTopic, User
from backend.auth import hash_password, issue_token

ADMIN_PASSWORD = "admin-password-for-tests"
USER_PASSWORD = "user-password-for-tests"


@lru_cache(maxsize=1)
def _user_hash() -> str:
    return hash_password(USER_PASSWORD)


def credit_code(n: int) -> str:
    return make_credit_code(f"9114060{n:010d}")


@dataclass
class World:
    """city ─┬─ district_a (enterprise `a`, inspectors a1, a2)
             └─ district_b (enterprise `b`, inspector b)
       other_city (enterprise `other`, inspector other, legal reviewer other)
    plus a legal reviewer, a leader and an inspector at city level, a leader of district_a and of other_city, and one
    enterprise user for `a` and for `b`."""

    client: httpx.AsyncClient
    app: Litestar
    agencies: dict[str, Agency] = field(default_factory=dict)
    enterprises: dict[str, Enterprise] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)

    @classmethod
    async def build(cls, client: httpx.AsyncClient, app: Litestar) -> World:
        world = cls(client=client, app=app)
        async with app.state.sessionmaker() as session:
            for key, parent in (("city", None), ("district_a", "city"), ("district_b", "city"), ("other_city", None)):
                agency_id = uuid.uuid4()
                parent_agency = world.agencies.get(parent) if parent else None
                path = f"{parent_agency.path if parent_agency else '/'}{agency_id}/"
                agency = Agency(
                    id=agency_id,
                    name=f"{key}应急管理局",
                    region_code="140600",
                    parent_id=parent_agency.id if parent_agency else None,
                    path=path,
                )
                session.add(agency)
                world.agencies[key] = agency
                await session.flush()
            for n, (key, agency_key, topic) in enumerate(
                (("a", "district_a", "mining"), ("b", "district_b", "hazardous_chemicals"), ("other", "other_city", "construction")),
                start=1,
            ):
                enterprise = Enterprise(
                    name=f"企业{key}",
                    credit_code=credit_code(n),
                    agency_id=world.agencies[agency_key].id,
                    address="测试地址",
                    principal=f"负责人{key}",
                    safety_manager=f"安全员{key}",
                )
                session.add(enterprise)
                await session.flush()
                session.add(EnterpriseTopic(enterprise_id=enterprise.id, topic=topic))
                world.enterprises[key] = enterprise
            accounts: list[tuple[str, str, dict[str, Any]]] = [
                ("admin", "admin", {}),
                ("inspector_a1", "inspector", {"agency": "district_a", "certificate_no": "A-0001"}),
                ("inspector_a2", "inspector", {"agency": "district_a", "certificate_no": "A-0002"}),
                ("inspector_b", "inspector", {"agency": "district_b", "certificate_no": "B-0001"}),
                ("inspector_city", "inspector", {"agency": "city", "certificate_no": "C-0001"}),
                ("inspector_other", "inspector", {"agency": "other_city", "certificate_no": "O-0001"}),
                ("legal_city", "legal_reviewer", {"agency": "city"}),
                ("legal_other", "legal_reviewer", {"agency": "other_city"}),
                ("leader_city", "leader", {"agency": "city"}),
                ("leader_a", "leader", {"agency": "district_a"}),
                ("leader_other", "leader", {"agency": "other_city"}),
                ("enterprise_a", "enterprise", {"enterprise": "a"}),
                ("enterprise_b", "enterprise", {"enterprise": "b"}),
            ]
            existing = {u.username: u for u in (await session.execute(select(User))).scalars()}
            for username, role, extra in accounts:
                if username in existing:  # the admin the app created at start-up from the environment
                    world.users[username] = existing[username]
                    continue
                user = User(
                    username=username,
                    password_hash=hash_password(ADMIN_PASSWORD) if role == "admin" else _user_hash(),
                    display_name=username,
                    role=role,
                    agency_id=world.agencies[extra["agency"]].id if "agency" in extra else None,
                    enterprise_id=world.enterprises[extra["enterprise"]].id if "enterprise" in extra else None,
                    certificate_no=extra.get("certificate_no"),
                )
                session.add(user)
                world.users[username] = user
            await session.commit()
        return world

    def headers(self, username: str) -> dict[str, str]:
        token = issue_token(self.app.state.jwt_auth, self.users[username])
        return {"Authorization": f"Bearer {token}"}

    def _with_auth(self, username: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {**kwargs, "headers": {**self.headers(username), **kwargs.get("headers", {})}}

    async def get(self, username: str, path: str, **kwargs: Any) -> Any:
        return await self.client.get(path, **self._with_auth(username, kwargs))

    async def post(self, username: str, path: str, json: Any = None, **kwargs: Any) -> Any:
        return await self.client.post(path, json=json, **self._with_auth(username, kwargs))

    async def put(self, username: str, path: str, json: Any = None, **kwargs: Any) -> Any:
        return await self.client.put(path, json=json, **self._with_auth(username, kwargs))


async def routine_checklist(world: World, topic: str = "mining", kind: str = "routine") -> dict[str, Any]:
    response = await world.get("inspector_a1", "/api/v1/checklists", params={"topic": topic, "kind": kind})
    return response.json()["items"][0]


async def start_inspection(
    world: World, *, kind: str = "routine", topic: str = "mining", username: str = "inspector_a1", **overrides: Any
) -> dict[str, Any]:
    checklist = await routine_checklist(world, topic)
    body = {
        "id": str(uuid.uuid4()),
        "enterprise_id": str(world.enterprises["a"].id),
        "checklist_ids": [checklist["id"]],
        "inspector_ids": [str(world.users["inspector_a1"].id), str(world.users["inspector_a2"].id)],
        "kind": kind,
        **overrides,
    }
    response = await world.post(username, "/api/v1/inspections", body)
    assert response.status_code == 201, response.text
    return response.json()


async def upload(world: World, username: str, content: bytes, *, kind: str = "photo", filename: str = "photo.jpg", **fields: Any) -> Any:
    data = {"kind": kind, **{k: str(v) for k, v in fields.items()}}
    return await world.client.post(
        "/api/v1/evidence", data=data, files={"file": (filename, content, "application/octet-stream")}, headers=world.headers(username)
    )


def assert_problem(response: Any, status: int, code: str | None = None, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    if code is not None:
        assert body["code"] == code, body
    if field is not None:
        assert body.get("field") == field, body
    return body


def ok(response: Any) -> Any:
    """A set-up step must succeed: otherwise the test goes on to assert things about a state it never reached."""
    assert response.status_code < 300, response.text
    return response
