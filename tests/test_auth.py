"""Logins, tokens and the login throttle."""

from __future__ import annotations

from tests.helpers import ADMIN_PASSWORD, USER_PASSWORD, World, assert_problem


async def test_login_returns_a_token_that_opens_me(world: World) -> None:
    response = await world.client.post("/api/v1/auth/login", json={"username": "inspector_a1", "password": USER_PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    assert body["user"]["role"] == "inspector"
    assert body["user"]["agency_id"] == str(world.agencies["district_a"].id)

    me = await world.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json() == {
        "id": str(world.users["inspector_a1"].id),
        "username": "inspector_a1",
        "display_name": "inspector_a1",
        "role": "inspector",
        "agency_id": str(world.agencies["district_a"].id),
        "enterprise_id": None,
        "certificate_no": "A-0001",
    }


async def test_admin_from_environment_can_log_in(world: World) -> None:
    response = await world.client.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert response.status_code == 200
    assert response.json()["user"]["role"] == "admin"


async def test_wrong_password_and_unknown_user_are_401(world: World) -> None:
    for username in ("inspector_a1", "nobody"):
        response = await world.client.post("/api/v1/auth/login", json={"username": username, "password": "wrong-password"})
        assert_problem(response, 401, "invalid_credentials")


async def test_missing_or_forged_token_is_401(world: World) -> None:
    missing = await world.client.get("/api/v1/auth/me", headers={"X-Request-ID": "phone-7"})
    body = assert_problem(missing, 401, "not_authenticated")
    assert missing.headers["x-request-id"] == body["request_id"] == "phone-7"
    forged = await world.client.get("/api/v1/auth/me", headers={"Authorization": "Bearer not.a.token"})
    assert_problem(forged, 401)


async def test_deactivated_user_loses_access_at_once(world: World) -> None:
    headers = world.headers("inspector_a1")
    async with world.app.state.sessionmaker() as session:
        user = await session.get(type(world.users["inspector_a1"]), world.users["inspector_a1"].id)
        user.is_active = False
        await session.commit()
    assert_problem(await world.client.get("/api/v1/auth/me", headers=headers), 401)


async def test_repeated_failed_logins_are_throttled(world: World) -> None:
    max_failures = world.app.state.settings.login_max_failures
    for _ in range(max_failures):
        response = await world.client.post("/api/v1/auth/login", json={"username": "inspector_b", "password": "guess"})
        assert response.status_code == 401
    blocked = await world.client.post("/api/v1/auth/login", json={"username": "inspector_b", "password": USER_PASSWORD})
    assert_problem(blocked, 429, "login_throttled")
    # another account from the same client is not affected
    other = await world.client.post("/api/v1/auth/login", json={"username": "inspector_a2", "password": USER_PASSWORD})
    assert other.status_code == 200


async def test_login_body_errors_name_the_field(world: World) -> None:
    response = await world.client.post("/api/v1/auth/login", json={"username": "inspector_a1"})
    assert_problem(response, 400, "validation_error", field="password")
