"""Hazard exports (隐患清单): CSV and XLSX with the filters of GET /hazards, scoped to the caller, Chinese headers.

Both read the list's own statement (`HazardService.filtered`: the scope and the filters) in keyset pages, each page
in a short transaction of its own, so no connection is held while a slow client reads.
- CSV streams as it is read: a page of rows becomes a chunk of the response. UTF-8 with a byte-order mark, so
  Excel opens the Chinese text right.
- XLSX is written by openpyxl in write-only mode (rows go to a temporary file as they come, never all in memory), in
  a worker thread page by page, then the finished file is streamed; it is unlinked as soon as it is open, so it
  cannot outlive the response.
Text a person wrote that starts like a formula (= + - @) is prefixed with an apostrophe, so a spreadsheet shows it
and never runs it.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, BinaryIO

import anyio
from openpyxl import Workbook
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from backend.accounts.models import Enterprise
from backend.clock import in_agency_zone, now
from backend.hazards.models import Hazard
from backend.hazards.service import is_overdue
from backend.pagination import MAX_LIMIT, encode_cursor, keyset

HEADERS = [
    "隐患编号",
    "企业名称",
    "统一社会信用代码",
    "行业领域",
    "隐患等级",
    "隐患描述",
    "检查项",
    "状态",
    "是否逾期",
    "整改期限",
    "来源",
    "复发次数",
    "发现时间",
    "销号时间",
    "回头看时间",
]
TOPICS = {
    "mining": "矿山",
    "hazardous_chemicals": "危险化学品",
    "construction": "建筑施工",
    "fire_safety": "消防安全",
    "industry_trade": "工贸",
    "road_transport": "道路运输",
}
LEVELS = {"general": "一般事故隐患", "major": "重大事故隐患"}
STATUSES = {"reported": "已报告", "rectifying": "整改中", "pending_review": "待验收", "closed": "已销号", "verified": "回头看通过"}
SOURCES = {"inspection": "执法检查", "inspector": "执法人员报告", "self_inspection": "企业自查自报"}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
XLSX_MAX_ROWS = 1_048_575  # a sheet's rows, less the header
CHUNK = 64 * 1024

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _text(value: str | None) -> str:
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_START) else value


def _when(value: datetime | None) -> str:
    return in_agency_zone(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _row(hazard: Hazard, enterprise: str, credit_code: str, at: datetime) -> list[Any]:
    return [
        str(hazard.id),
        _text(enterprise),
        credit_code,
        TOPICS.get(hazard.topic, hazard.topic),
        LEVELS.get(hazard.level, hazard.level),
        _text(hazard.description),
        _text(hazard.item_text),
        STATUSES.get(hazard.status, hazard.status),
        "是" if is_overdue(hazard, at) else "否",
        _when(hazard.deadline),
        SOURCES.get(hazard.source, hazard.source),
        hazard.recurrence_count,
        _when(hazard.created_at),
        _when(hazard.closed_at),
        _when(hazard.lookback_due_at),
    ]


async def pages(sessionmaker: async_sessionmaker[AsyncSession], query: Select[Any]) -> AsyncIterator[list[list[Any]]]:
    """The rows of `query` (hazards, newest first) as export rows, a keyset page at a time, each page read in a
    transaction of its own."""
    query = query.add_columns(col(Enterprise.name), col(Enterprise.credit_code))
    cursor: str | None = None
    at = now()
    while True:
        async with sessionmaker() as session:
            found = list((await session.execute(keyset(query, Hazard.created_at, Hazard.id, cursor, MAX_LIMIT))).all())
        page = found[:MAX_LIMIT]
        if page:
            yield [_row(hazard, name, code, at) for hazard, name, code in page]
        if len(found) <= MAX_LIMIT:
            return
        cursor = encode_cursor(page[-1][0].created_at, page[-1][0].id)


async def csv_chunks(sessionmaker: async_sessionmaker[AsyncSession], query: Select[Any]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def take() -> bytes:
        data = buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
        return data

    writer.writerow(HEADERS)
    yield "\ufeff".encode() + take()
    async for page in pages(sessionmaker, query):
        writer.writerows(page)
        yield take()


async def xlsx_file(sessionmaker: async_sessionmaker[AsyncSession], query: Select[Any]) -> BinaryIO:
    """The workbook, written and open for reading (its name already unlinked)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("隐患清单")
    sheet.append(HEADERS)
    written = 0
    async for page in pages(sessionmaker, query):
        rows = page[: XLSX_MAX_ROWS - written]
        await anyio.to_thread.run_sync(_append_rows, sheet, rows)
        written += len(rows)
        if written >= XLSX_MAX_ROWS:
            break
    return await anyio.to_thread.run_sync(_saved, workbook)


def _saved(workbook: Workbook) -> BinaryIO:
    fd, path = tempfile.mkstemp(prefix="hazards-", suffix=".xlsx")
    os.close(fd)
    try:
        workbook.save(path)
        return open(path, "rb")  # closed by the stream that sends it; its name is gone already
    finally:
        os.unlink(path)


def _append_rows(sheet: Any, rows: list[list[Any]]) -> None:
    for row in rows:
        sheet.append(row)


async def file_chunks(handle: BinaryIO) -> AsyncIterator[bytes]:
    read: Callable[[int], bytes] = handle.read
    try:
        while chunk := await anyio.to_thread.run_sync(read, CHUNK):
            yield chunk
    finally:
        handle.close()
