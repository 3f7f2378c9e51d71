"""Hazard exports: the filters and the scope of GET /hazards, Chinese headers, CSV streamed in keyset pages,
XLSX that openpyxl opens."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import insert

from backend.hazards.exports import HEADERS
from backend.hazards.models import Hazard
from tests.helpers import World, assert_problem

API = "/api/v1/exports"


async def hazard(world: World, username: str, enterprise: str, level: str = "general", description: str = "安全出口被堵塞") -> str:
    body = {"enterprise_id": str(world.enterprises[enterprise].id), "level": level, "description": description}
    response = await world.post(username, "/api/v1/hazards", body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def rows_of_csv(content: bytes) -> list[list[str]]:
    assert content.startswith("\ufeff".encode())  # Excel reads UTF-8 with its byte-order mark
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


async def export_csv(world: World, username: str, **params: Any) -> list[list[str]]:
    response = await world.get(username, f"{API}/hazards.csv", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    rows = rows_of_csv(response.content)
    assert rows[0] == HEADERS
    return rows[1:]


async def test_exports_keep_the_scope_and_the_filters_of_the_list(world: World) -> None:
    a_general = await hazard(world, "inspector_a1", "a")
    a_major = await hazard(world, "inspector_a1", "a", level="major", description='=HYPERLINK("http://x")')
    b = await hazard(world, "inspector_b", "b")
    other = await hazard(world, "inspector_other", "other")
    assert HEADERS[:3] == ["隐患编号", "企业名称", "统一社会信用代码"]

    everything = await export_csv(world, "admin")
    assert {r[0] for r in everything} == {a_general, a_major, b, other}
    assert {r[0] for r in await export_csv(world, "enterprise_a")} == {a_general, a_major}  # never another enterprise's
    assert {r[0] for r in await export_csv(world, "inspector_other")} == {other}
    assert {r[0] for r in await export_csv(world, "inspector_city")} == {a_general, a_major, b}
    assert {r[0] for r in await export_csv(world, "admin", level="major")} == {a_major}
    assert {r[0] for r in await export_csv(world, "admin", enterprise_id=str(world.enterprises["b"].id))} == {b}
    assert await export_csv(world, "enterprise_a", enterprise_id=str(world.enterprises["b"].id)) == []
    assert await export_csv(world, "admin", status="closed") == []
    # the same rows, in the same order, as the list
    listed = (await world.get("inspector_city", "/api/v1/hazards", params={"limit": 200})).json()["items"]
    assert [r[0] for r in await export_csv(world, "inspector_city")] == [h["id"] for h in listed]

    [major] = [r for r in everything if r[0] == a_major]
    row = dict(zip(HEADERS, major, strict=True))
    assert row["企业名称"] == "企业a" and row["隐患等级"] == "重大事故隐患" and row["状态"] == "已报告" and row["行业领域"] == "矿山"
    assert row["隐患描述"] == '\'=HYPERLINK("http://x")'  # shown, never run as a formula
    assert row["是否逾期"] == "否" and row["来源"] == "执法人员报告"

    assert_problem(await world.get("admin", f"{API}/hazards.csv", params={"status": "eaten"}), 400)
    assert (await world.client.get(f"{API}/hazards.csv")).status_code == 401

    response = await world.get("enterprise_a", f"{API}/hazards.xlsx", params={"level": "major"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    assert sheet is not None
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == HEADERS and [r[0] for r in rows[1:]] == [a_major]
    assert rows[1][HEADERS.index("隐患描述")] == '\'=HYPERLINK("http://x")'


async def test_a_long_export_is_read_page_by_page(world: World) -> None:
    """More rows than one keyset page: every one comes out once, newest first, in CSV and in XLSX."""
    enterprise = world.enterprises["a"]
    start = datetime.now(UTC) - timedelta(days=1)
    ids = [uuid.uuid4() for _ in range(450)]
    rows = [
        {
            "id": hid,
            "enterprise_id": enterprise.id,
            "topic": "mining",
            "level": "general",
            "description": f"隐患{n}",
            "status": "reported",
            "source": "inspector",
            "evidence_ids": [],
            "recurrence_count": 0,
            "version": 1,
            "client_fingerprint": "x",
            "created_at": start + timedelta(seconds=n // 2),  # pairs share an instant: the id breaks the tie
            "updated_at": start,
        }
        for n, hid in enumerate(ids)
    ]
    async with world.app.state.sessionmaker() as session:
        await session.execute(insert(Hazard), rows)
        await session.commit()
    exported = [r[0] for r in await export_csv(world, "enterprise_a")]
    assert len(exported) == 450 and set(exported) == {str(i) for i in ids}
    response = await world.get("inspector_a1", f"{API}/hazards.xlsx")
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    assert sheet is not None
    assert [r[0] for r in sheet.iter_rows(min_row=2, values_only=True)] == exported
