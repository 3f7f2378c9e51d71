"""Health, error format, the audit log's append-only guarantee, migrations and the exported OpenAPI document."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

from backend import audit
from backend.audit import Actor, AuditLog
from backend.cli import OPENAPI_FILE, openapi_document
from backend.demo import seed_demo
from backend.storage import EmbeddedSeaweed
from tests.helpers import World, assert_problem


async def test_health_ok(world: World) -> None:
    response = await world.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "object_store": "ok"}


async def test_health_names_the_object_store_when_it_is_down(world: World, object_store: EmbeddedSeaweed) -> None:
    object_store.stop()
    try:
        down = await world.client.get("/health")
        assert down.status_code == 503
        body = down.json()
        assert body["status"] == "unavailable"
        assert body["object_store"] == "unavailable" and body["database"] == "ok"
        assert body["failing"] == "object_store"
    finally:
        object_store.start()
    up = await world.client.get("/health")
    assert up.status_code == 200, up.text


async def test_unknown_route_and_malformed_json_are_problem_details(world: World) -> None:
    assert_problem(await world.get("admin", "/api/v1/nothing-here"), 404, "not_found")
    malformed = await world.client.post(
        "/api/v1/agencies", content=b"{not json", headers={**world.headers("admin"), "content-type": "application/json"}
    )
    assert_problem(malformed, 400)
    wrong_type = await world.post("admin", "/api/v1/agencies", ["a", "list"])
    assert_problem(wrong_type, 400)


async def test_audit_log_is_append_only(world: World) -> None:
    async with world.app.state.sessionmaker() as session:
        row = audit.record(session, Actor.system("test"), "test.event", "test", "1")
        await session.commit()
    async with world.app.state.sessionmaker() as session:
        with pytest.raises(DBAPIError):
            await session.execute(update(AuditLog).where(AuditLog.id == row.id).values(action="tampered"))
        await session.rollback()
        with pytest.raises(DBAPIError):
            await session.execute(text("DELETE FROM audit_log"))
        await session.rollback()
        assert (await session.get(AuditLog, row.id)).action == "test.event"


async def test_migrations_match_the_models(world: World) -> None:
    def diff(connection: object) -> list[object]:
        return compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)

    async with world.app.state.engine.connect() as connection:
        assert await connection.run_sync(diff) == []


def test_committed_openapi_document_is_current(app: object) -> None:
    assert OPENAPI_FILE.read_text(encoding="utf-8") == openapi_document(app), (
        "mobile_api_spec/openapi.json is stale: run `safety export-openapi`"
    )


async def test_demo_accounts_can_log_in(world: World, tmp_path: Path) -> None:
    """`./run.sh serve` seeds the demo once; every printed account logs in, and a second run changes nothing."""
    credentials = await seed_demo(world.app.state.sessionmaker, tmp_path, world.app.state.settings)
    assert {c["role"] for c in credentials} == {"enterprise", "inspector", "legal_reviewer", "leader"}
    tokens = {}
    for account in credentials:
        login = await world.client.post("/api/v1/auth/login", json={"username": account["username"], "password": account["password"]})
        assert login.status_code == 200, (account["username"], login.text)
        tokens[account["username"]] = {"Authorization": f"Bearer {login.json()['access_token']}"}
    # the desk console's users find their work waiting: a case for the legal review, hazards to rectify
    queue = await world.client.get("/api/v1/cases", params={"awaiting_my_review": "true"}, headers=tokens["legal1"])
    assert len(queue.json()["items"]) == 1, queue.text
    hazards = await world.client.get("/api/v1/hazards", params={"status": "rectifying"}, headers=tokens["enterprise1"])
    assert {h["level"] for h in hazards.json()["items"]} == {"general", "major"}, hazards.text
    assert await seed_demo(world.app.state.sessionmaker, tmp_path, world.app.state.settings) == credentials


async def test_api_docs_load_their_files_from_the_app_itself(world: World) -> None:
    """Swagger UI and ReDoc work on an intranet: every script, style sheet and icon they load is served by the app."""
    for page in ("/schema/swagger", "/schema/redoc", "/schema"):
        response = await world.client.get(page)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
        head = response.text.split("<body", 1)[0]
        references = re.findall(r"""(?:src|href)=["']([^"']+)["']""", head)
        assert references and "://" not in head, head
        for reference in references:
            assert reference.startswith("/") and not reference.startswith("//"), reference
            asset = await world.client.get(reference)
            assert asset.status_code == 200 and len(asset.content) > 500, reference
    swagger = (await world.client.get("/schema/swagger")).text
    assert "/schema/assets/swagger-ui/swagger-ui-bundle.js" in swagger
    assert "/schema/assets/swagger-ui/swagger-ui-standalone-preset.js" in swagger
    assert "/schema/assets/swagger-ui/swagger-ui.css" in swagger
