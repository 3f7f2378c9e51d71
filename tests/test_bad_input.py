"""Bad input is a 4xx naming what is wrong, never a 500, and leaves nothing written: NUL bytes and control characters
in bodies, query strings, form fields and headers; JSON nested too deeply, in a body or a crafted cursor; dates and
numbers out of range; bodies and header blocks over their limits; data that would break a response header."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvicorn
from sqlalchemy import func, select, update

from backend.accounts.models import Agency
from backend.audit import AuditLog
from backend.cli import uvicorn_options
from backend.evidence.models import Evidence
from backend.hazards.models import Hazard
from backend.limits import LOGIN_MAX_BODY_BYTES, MAX_JSON_DEPTH, RESULTS_MAX_BODY_BYTES, json_too_deep
from backend.pagination import encode_cursor
from backend.wire import control_character_problem
from tests.helpers import World, assert_problem, ok, start_inspection, upload
from tests.media import jpeg
from tests.test_enforcement import open_case, submitted_inspection
from tests.test_hazards import PLAN, act, report

LOGIN = "/api/v1/auth/login"
FUTURE = (datetime.now(UTC) + timedelta(days=20)).date().isoformat()


async def written(world: World) -> dict[str, int]:
    """Rows in the tables a bad request could have touched."""
    async with world.app.state.sessionmaker() as session:
        return {
            model.__tablename__: (await session.execute(select(func.count()).select_from(model))).scalar_one()
            for model in (AuditLog, Hazard, Evidence, Agency)
        }


def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# --- 1. NUL bytes and control characters ------------------------------------------------------------------------------


async def test_a_nul_byte_in_the_login_is_a_400_naming_the_field(world: World) -> None:
    for field in ("username", "password"):
        body = {"username": "admin", "password": "secret-password", field: "adm\x00in"}
        response = await world.client.post(LOGIN, json=body)
        problem = assert_problem(response, 400, "validation_error", field=field)
        assert "NUL" in problem["detail"]


async def test_a_nul_byte_in_any_body_field_is_a_400_naming_it_and_writes_nothing(world: World) -> None:
    before = await written(world)
    enterprise = str(world.enterprises["a"].id)
    hazard = await world.post("inspector_a1", "/api/v1/hazards", {"enterprise_id": enterprise, "level": "general", "description": "a\x00b"})
    assert_problem(hazard, 400, "validation_error", field="description")
    agency = await world.post("admin", "/api/v1/agencies", {"name": "局\x00", "region_code": "140600"})
    assert_problem(agency, 400, "validation_error", field="name")
    assert await written(world) == before

    inspection = await start_inspection(world)
    checklist_id = inspection["checklist_ids"][0]
    nested = {"results": [{"checklist_id": checklist_id, "item_code": "X-1", "outcome": "compliant", "note": "见\x00"}]}
    response = await world.put("inspector_a1", f"/api/v1/inspections/{inspection['id']}/results", nested)
    assert_problem(response, 400, "validation_error", field="results.0.note")
    deep = {
        "results": [
            {"checklist_id": checklist_id, "item_code": "X-1", "outcome": "hazard", "hazard": {"level": "general", "description": "\x00"}}
        ]
    }
    response = await world.put("inspector_a1", f"/api/v1/inspections/{inspection['id']}/results", deep)
    assert_problem(response, 400, "validation_error", field="results.0.hazard.description")


async def test_control_characters_other_than_line_breaks_and_tabs_are_refused(world: World) -> None:
    enterprise = str(world.enterprises["a"].id)
    for text in ("bell\x07", "esc\x1b[31m", "del\x7f"):
        response = await world.post(
            "inspector_a1", "/api/v1/hazards", {"enterprise_id": enterprise, "level": "general", "description": text}
        )
        assert_problem(response, 400, "validation_error", field="description")
    multi_line = await world.post(
        "inspector_a1", "/api/v1/hazards", {"enterprise_id": enterprise, "level": "general", "description": "第一行\n第二行\r\n\t第三行"}
    )
    assert multi_line.status_code == 201, multi_line.text
    # a name is a single line: a line break there could end up in a document number, a header or a CSV row
    agency = await world.post("admin", "/api/v1/agencies", {"name": "朔州市\r\nX-Injected: 1", "region_code": "140600"})
    assert_problem(agency, 400, "validation_error", field="name")
    assert control_character_problem("a\tb") is None and control_character_problem("a\tb", single_line=True)


async def test_a_nul_byte_in_a_query_parameter_is_a_400_naming_it(world: World) -> None:
    for path, parameter in (
        ("/api/v1/enterprises?q=%00", "q"),
        ("/api/v1/enterprises?topic=mining&q=ab%00cd", "q"),
        ("/api/v1/hazards?cursor=%00", "cursor"),
        ("/api/v1/discretion?q=%1b", "q"),
        ("/api/v1/sync/changes?since=1.%00", "since"),
    ):
        response = await world.get("inspector_a1", path)
        problem = assert_problem(response, 400, "validation_error", field=parameter)
        assert problem["errors"][0]["source"] == "query"
    # unauthenticated routes too, before anything else looks at the request
    public = await world.client.get("/api/v1/public/decisions?cursor=%00")
    assert_problem(public, 400, "validation_error", field="cursor")
    login = await world.client.post(f"{LOGIN}?next=%00", json={"username": "admin", "password": "x"})
    assert_problem(login, 400, "validation_error", field="next")
    # a percent sign that encodes no control character is fine
    fine = await world.get("inspector_a1", "/api/v1/enterprises?q=100%25")
    assert fine.status_code == 200, fine.text


async def test_a_control_character_in_a_header_is_a_400_naming_it(world: World) -> None:
    headers = {**world.headers("inspector_a1"), "X-Client-Note": "a\x00b"}
    response = await world.client.get("/api/v1/hazards", headers=headers)
    problem = assert_problem(response, 400, "validation_error", field="x-client-note")
    assert problem["errors"][0]["source"] == "header"


async def test_a_nul_byte_in_a_form_field_is_a_400_naming_it(world: World) -> None:
    inspection = await start_inspection(world)
    response = await upload(world, "inspector_a1", jpeg(), inspection_id=inspection["id"], captured_at="2026-01-01T00:00:00\x00+08:00")
    assert_problem(response, 400, "validation_error", field="captured_at")
    response = await upload(world, "inspector_a1", jpeg(), kind="photo\x00", inspection_id=inspection["id"])
    assert_problem(response, 400, "validation_error", field="kind")


# --- 2. JSON nested too deeply ------------------------------------------------------------------------------------------


async def test_deeply_nested_json_is_a_400_not_a_recursion_error(world: World) -> None:
    headers = {**world.headers("inspector_a1"), "content-type": "application/json"}
    for depth in (10_000, 900, MAX_JSON_DEPTH + 1):
        body = b"[" * depth + b"]" * depth
        response = await world.client.post("/api/v1/hazards", content=body, headers=headers)
        assert_problem(response, 400, "validation_error")
        nested = b'{"description":' + b"[" * depth + b"]" * depth + b"}"
        response = await world.client.post("/api/v1/hazards", content=nested, headers=headers)
        assert_problem(response, 400, "validation_error")
    # the login reads no more than a login needs: 10,000 levels are refused for their size before they are decoded
    response = await world.client.post(LOGIN, content=b"[" * 10_000 + b"]" * 10_000, headers={"content-type": "application/json"})
    assert_problem(response, 413, "payload_too_large")
    response = await world.client.post(LOGIN, content=b"[" * 1500 + b"]" * 1500, headers={"content-type": "application/json"})
    assert_problem(response, 400, "validation_error")
    assert json_too_deep([[[]]], limit=2) and not json_too_deep([[], [[]]], limit=3) and not json_too_deep("x")


async def test_a_crafted_cursor_is_refused_naming_it(world: World) -> None:
    deep = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode()
    some_id = str(uuid.uuid4())
    crafted = [
        deep,  # far longer than any cursor handed out
        base64.urlsafe_b64encode(b"[" * 70 + b"]" * 70).decode(),  # short, but not ours
        cursor_of(["9999-12-31T23:59:59+00:00", some_id]),
        cursor_of(["0001-01-01T00:00:00+14:00", some_id]),
        cursor_of(["2026-01-01T00:00:00", some_id]),  # no offset
        cursor_of([1, 2]),
        cursor_of({"a": 1}),
        "!!!",
    ]
    for cursor in crafted:
        for path in ("/api/v1/hazards", "/api/v1/cases", "/api/v1/enterprises"):
            response = await world.get("inspector_a1", path, params={"cursor": cursor})
            assert_problem(response, 400, "validation_error", field="cursor")
        public = await world.client.get("/api/v1/public/decisions", params={"cursor": cursor})
        assert_problem(public, 400, "validation_error", field="cursor")
    case = await open_case(world)
    for cursor in (cursor_of([2**70]), cursor_of([-1]), cursor_of([True]), deep):
        response = await world.get("inspector_a1", f"/api/v1/cases/{case['id']}/records", params={"cursor": cursor})
        assert_problem(response, 400, "validation_error", field="cursor")
    # a cursor the API handed out still works
    good = encode_cursor(datetime.now(UTC), uuid.uuid4())
    assert (await world.get("inspector_a1", "/api/v1/hazards", params={"cursor": good})).status_code == 200


async def test_a_sync_cursor_out_of_range_is_refused_naming_since(world: World) -> None:
    for since in (
        "99999999999999999999999.1",  # more digits than a bigint has
        "9223372036854775808.1",  # one past the largest bigint
        "1.9223372036854775808",
        "-1.5",
        "1_0.5",
        "1.5.6",
        "٣.٣",  # digits, but not ASCII ones
    ):
        response = await world.get("inspector_a1", "/api/v1/sync/changes", params={"since": since})
        assert_problem(response, 400, "validation_error", field="since")
    ok(await world.get("inspector_a1", "/api/v1/sync/changes", params={"since": "9223372036854775807.9223372036854775807"}))
    ok(await world.get("inspector_a1", "/api/v1/sync/changes", params={"since": ""}))


# --- 3. dates and numbers out of range ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "deadline", ["9999-12-31", "0001-01-01", "1999-12-31", "2101-01-01", "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-12:00"]
)
async def test_a_deadline_out_of_range_is_a_400_naming_it(world: World, deadline: str) -> None:
    before = await written(world)
    enterprise = str(world.enterprises["a"].id)
    response = await world.post(
        "enterprise_a", "/api/v1/hazards", {"enterprise_id": enterprise, "level": "general", "description": "x", "deadline": deadline}
    )
    assert_problem(response, 400, "validation_error", field="deadline")
    assert await written(world) == before
    hazard = await report(world, level="major")
    assert_problem(await act(world, "inspector_a1", hazard["id"], "order", {"deadline": deadline, "measures": "m"}), 400, field="deadline")
    ok(await act(world, "inspector_a1", hazard["id"], "order", {"deadline": FUTURE, "measures": "m"}))
    plan = await act(world, "enterprise_a", hazard["id"], "governance-plan", {**PLAN, "deadline": deadline})
    assert_problem(plan, 400, "validation_error", field="deadline")
    case = await open_case(world)
    extension = {"until": deadline, "reason": "案情复杂", "approved_by": "局长"}
    response = await world.post("inspector_a1", f"/api/v1/cases/{case['id']}/extension", extension)
    assert_problem(response, 400, "validation_error", field="until")


async def test_the_edges_of_the_deadline_range_are_accepted(world: World) -> None:
    enterprise = str(world.enterprises["a"].id)
    for deadline in ("2100-12-31", "2100-12-31T23:59:59+08:00"):
        response = await world.post(
            "enterprise_a", "/api/v1/hazards", {"enterprise_id": enterprise, "level": "general", "description": "x", "deadline": deadline}
        )
        assert response.status_code == 201, response.text


async def test_an_instant_out_of_range_is_a_400_naming_it(world: World) -> None:
    case = await open_case(world)
    inspection = await start_inspection(world)
    far = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    for when in ("9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00", "1989-12-31T23:59:59+00:00", far):
        record = {"kind": "note", "occurred_at": when, "description": "记录"}
        assert_problem(await world.post("inspector_a1", f"/api/v1/cases/{case['id']}/records", record), 400, field="occurred_at")
        photo = await upload(world, "inspector_a1", jpeg(), inspection_id=inspection["id"], captured_at=when)
        assert_problem(photo, 400, "validation_error", field="captured_at")
        notice = await world.post("inspector_a1", f"/api/v1/inspections/{inspection['id']}/notice", {"given_at": when})
        assert_problem(notice, 400, "validation_error", field="given_at")
    recent = {"kind": "note", "occurred_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(), "description": "记录"}
    assert (await world.post("inspector_a1", f"/api/v1/cases/{case['id']}/records", recent)).status_code == 201


async def test_integers_beyond_their_range_are_refused_naming_them(world: World) -> None:
    hazard = await report(world, level="major")
    ok(await act(world, "inspector_a1", hazard["id"], "order", {"deadline": FUTURE, "measures": "m"}))
    for funds in (2**63, 10**30, -1):
        plan = await act(world, "enterprise_a", hazard["id"], "governance-plan", {**PLAN, "funds": funds})
        assert_problem(plan, 400, "validation_error", field="funds")
    case = await open_case(world)
    decision = {"measures": [{"type": "fine", "amount": 2**64, "basis_id": "AQSCF-97-5-OVERDUE"}], "facts": "f", "reasoning": "r"}
    response = await world.post("inspector_a1", f"/api/v1/cases/{case['id']}/decision", decision)
    assert_problem(response, 400, "validation_error", field="measures.0.amount")
    inspection = await start_inspection(world)
    upload_in = {
        "kind": "video",
        "content_type": "video/mp4",
        "size": 2**64,
        "sha256": "0" * 64,
        "owner": {"inspection_id": inspection["id"]},
    }
    assert_problem(await world.post("inspector_a1", "/api/v1/evidence/uploads", upload_in), 400, field="size")
    for limit in ("99999999999999999999999", "-1", "0"):
        assert_problem(await world.get("inspector_a1", f"/api/v1/hazards?limit={limit}"), 400, field="limit")
        assert_problem(await world.get("inspector_a1", f"/api/v1/sync/changes?limit={limit}"), 400, field="limit")


# --- 4. body limits -----------------------------------------------------------------------------------------------------


class Chunks:
    """A request body that counts how much of it the server asked for."""

    def __init__(self, size: int, chunk: int = 64 * 1024) -> None:
        self.size, self.chunk, self.sent = size, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.size:
            block = b" " * min(self.chunk, self.size - self.sent)
            self.sent += len(block)
            yield block


async def test_the_login_reads_no_more_than_a_login_needs(world: World) -> None:
    body = Chunks(200 * 1024 * 1024)
    headers = {"content-type": "application/json", "content-length": str(body.size)}
    response = await world.client.post(LOGIN, content=body, headers=headers)
    assert_problem(response, 413, "payload_too_large")
    assert body.sent <= 64 * 1024  # refused on its announced length: at most what the transport had in hand
    # without a length, reading stops once the limit is passed
    unannounced = Chunks(200 * 1024 * 1024, chunk=1024)
    response = await world.client.post(LOGIN, content=unannounced, headers={"content-type": "application/json"})
    assert_problem(response, 413, "payload_too_large")
    assert unannounced.sent <= LOGIN_MAX_BODY_BYTES + 2048
    padded = json.dumps({"username": "admin", "password": "x" * 200}).encode()
    assert len(padded) < LOGIN_MAX_BODY_BYTES
    assert (await world.client.post(LOGIN, content=padded, headers={"content-type": "application/json"})).status_code == 401


async def test_json_routes_take_a_small_body_and_results_a_batch_of_a_thousand(world: World) -> None:
    limit = world.app.state.settings.max_json_body_bytes
    enterprise = str(world.enterprises["a"].id)
    big = {"enterprise_id": enterprise, "level": "general", "description": "x" * (limit + 1)}
    assert_problem(await world.post("inspector_a1", "/api/v1/hazards", big), 413, "payload_too_large")
    # authenticated routes do not read the body of a caller without a token either
    body = Chunks(50 * 1024 * 1024)
    anonymous = await world.client.post("/api/v1/hazards", content=body, headers={"content-type": "application/json"})
    assert_problem(anonymous, 401)
    assert body.sent <= 64 * 1024

    inspection = await start_inspection(world)
    checklist_id = inspection["checklist_ids"][0]
    results = [
        {
            "checklist_id": checklist_id,
            "item_code": f"NO-SUCH-{n:04d}",
            "outcome": "hazard",
            "note": "现场发现配电箱未上锁，周边堆放易燃物品，" * 10,
            "evidence_ids": [str(uuid.uuid4()) for _ in range(3)],
            "hazard": {"level": "general", "description": "配电箱未上锁" * 30, "rectify_days": 30},
        }
        for n in range(1000)
    ]
    batch = json.dumps({"results": results}).encode()  # ASCII-escaped, the larger way to send it
    assert limit < len(batch) < RESULTS_MAX_BODY_BYTES
    response = await world.client.put(
        f"/api/v1/inspections/{inspection['id']}/results",
        content=batch,
        headers={**world.headers("inspector_a1"), "content-type": "application/json"},
    )
    assert_problem(response, 422, "unknown_item")  # read and checked in full: the items are not this checklist's


async def test_the_evidence_upload_is_bounded_by_max_upload_bytes(world: World) -> None:
    inspection = await start_inspection(world)
    settings = world.app.state.settings
    world.app.state.settings = replace(settings, max_upload_bytes=256 * 1024)
    try:
        body = Chunks(10 * 1024 * 1024)
        headers = {**world.headers("inspector_a1"), "content-type": "multipart/form-data; boundary=x", "content-length": str(body.size)}
        response = await world.client.post("/api/v1/evidence", content=body, headers=headers)
        assert_problem(response, 413, "payload_too_large")
        assert body.sent <= 64 * 1024
        too_big = await upload(world, "inspector_a1", b"\xff" * (300 * 1024), kind="document", inspection_id=inspection["id"])
        assert too_big.status_code == 413, too_big.text
    finally:
        world.app.state.settings = settings
    photo = await upload(world, "inspector_a1", jpeg(), inspection_id=inspection["id"])
    assert photo.status_code == 201, photo.text  # and the upload is bigger than a JSON body may be where it matters


# --- 5. header block ----------------------------------------------------------------------------------------------------


async def test_an_oversized_header_block_is_a_431(world: World) -> None:
    limit = world.app.state.settings.max_header_bytes
    response = await world.client.get("/api/v1/hazards", headers={**world.headers("inspector_a1"), "X-Padding": "a" * limit})
    assert_problem(response, 431, "headers_too_large")
    response = await world.client.get(f"/api/v1/public/decisions?cursor={'a' * limit}")
    assert_problem(response, 431, "headers_too_large")
    megabyte = await world.client.post(LOGIN, json={"username": "admin", "password": "x"}, headers={"X-Padding": "a" * 1024 * 1024})
    assert_problem(megabyte, 431, "headers_too_large")
    fine = await world.client.get("/api/v1/hazards", headers={**world.headers("inspector_a1"), "X-Padding": "a" * (limit // 2)})
    assert fine.status_code == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _raw_request(port: int, head: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        return await asyncio.wait_for(reader.read(4096), timeout=10)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


async def test_serve_runs_uvicorn_with_a_bounded_header_parser(world: World) -> None:
    """`safety serve` passes uvicorn_options(settings) to uvicorn: the h11 parser, whose buffer for an incomplete
    request is MAX_HEADER_BYTES, so a megabyte of headers is refused before it is held in memory or reaches the app."""
    settings = replace(world.app.state.settings, host="127.0.0.1", port=_free_port(), max_header_bytes=16 * 1024)
    options = uvicorn_options(settings)
    assert options["http"] == "h11" and options["h11_max_incomplete_event_size"] == settings.max_header_bytes

    async def hello(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                pass
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    server = uvicorn.Server(uvicorn.Config(hello, log_level="warning", lifespan="off", **options))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # the test runner keeps its own
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        small = await _raw_request(settings.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 1024 + b"\r\n\r\n")
        assert small.startswith(b"HTTP/1.1 200")
        huge = await _raw_request(settings.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * (1024 * 1024) + b"\r\n\r\n")
        assert not huge.startswith(b"HTTP/1.1 200") and (huge == b"" or huge.startswith(b"HTTP/1.1 4")), huge[:200]
    finally:
        server.should_exit = True
        await task


# --- 6. response headers built from data --------------------------------------------------------------------------------


async def test_data_with_line_breaks_never_breaks_a_response_header(world: World) -> None:
    inspection = await submitted_inspection(world)
    case = await open_case(world, inspection["id"])
    async with world.app.state.sessionmaker() as session:  # a name stored before names were checked
        await session.execute(
            update(Agency).where(Agency.id == world.agencies["district_a"].id).values(name="朔州\r\nX-Injected: yes\n应急管理局")
        )
        await session.commit()
    response = await world.get("inspector_a1", f"/api/v1/cases/{case['id']}/documents/inspection_record")
    assert response.status_code == 200, response.text
    assert "x-injected" not in response.headers
    for name in ("x-document-number", "content-disposition", "x-content-sha256"):
        assert "\r" not in response.headers[name] and "\n" not in response.headers[name], name
    assert response.headers["x-document-number"].isascii()

    photo = (await upload(world, "inspector_a1", jpeg(), inspection_id=(await start_inspection(world))["id"])).json()
    async with world.app.state.sessionmaker() as session:  # a content type stored before it was checked
        await session.execute(
            update(Evidence).where(Evidence.id == uuid.UUID(photo["id"])).values(content_type="image/jpeg\r\nX-Injected: yes")
        )
        await session.commit()
    content = await world.get("inspector_a1", f"/api/v1/evidence/{photo['id']}/content")
    assert content.status_code == 200
    assert content.headers["content-type"] == "application/octet-stream" and "x-injected" not in content.headers
    assert content.headers["etag"] == f'"{photo["sha256"]}"'
    assert content.headers["x-content-type-options"] == "nosniff"


async def test_a_declared_content_type_must_be_a_media_type(world: World) -> None:
    inspection = await start_inspection(world)
    body = {"kind": "video", "size": 10, "sha256": "0" * 64, "owner": {"inspection_id": inspection["id"]}}
    for content_type in ("video/mp4\r\nX-Injected: yes", "video mp4", "video/mp4; x=1", "text/html", "image/jpeg"):
        response = await world.post("inspector_a1", "/api/v1/evidence/uploads", {**body, "content_type": content_type})
        assert_problem(response, 400, "validation_error", field="content_type")
    assert (await world.post("inspector_a1", "/api/v1/evidence/uploads", {**body, "content_type": "video/mp4"})).status_code == 201


async def test_a_query_date_at_the_ends_of_the_calendar_is_answered(world: World) -> None:
    for day in ("0001-01-01", "9999-12-31"):
        response = await world.get("inspector_a1", "/api/v1/checklists", params={"date": day})
        assert response.status_code in (200, 400), response.text
    assert_problem(await world.get("inspector_a1", "/api/v1/checklists", params={"date": "10000-01-01"}), 400, field="date")
