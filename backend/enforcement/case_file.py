"""The case file (案卷) as one ZIP, streamed: `案卷.pdf` (cover, 卷内目录, every document issued for the case, the
record chain with its hashes and the list of evidence), each issued PDF as it was issued under `documents/`, every
evidence original under `evidence/`, and `manifest.json` with the sha256 and size of every file and the chain head.

Memory stays bounded whatever the evidence weighs: the originals are read from the store a chunk at a time (the next
chunk is already being read while one is written), each chunk goes into the ZIP stored as it is (photos and videos
do not compress) and out to the client before the next few, and the client's pace holds the reading back (the server
waits for the socket to drain). The ZIP's CRC-32 of a chunk (~0.2 ms for 1 MiB) is computed on the event loop: a
round trip to a worker thread for it cost more than it, and slowed the stream by a tenth (bench/RESULTS.md).

The manifest comes last. For the files made here (案卷.pdf, the documents) it gives the sha256 of the bytes sent; for
an original, the sha256 recorded when it was uploaded, which is also its address in the store (originals/<sha256>)
and what the chain's records cite: hashing a gigabyte again would cost more CPU than sending it. So a verifier that
finds an original not matching the manifest has found one altered in the store since (as GET /cases/{id}/verify
would say). Before the first byte is sent, every original is looked up in the store: a missing one is
`409 evidence_missing` naming them all, never a ZIP cut short."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import mimetypes
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

import anyio
import anyio.to_thread
from pypdf import PdfReader, PdfWriter
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy import select
from sqlmodel import col

from backend.accounts.models import Agency, Enterprise
from backend.clock import agency_zone, now
from backend.enforcement.documents import CASE_STATUS_NAMES, FONT, RECORD_KIND_NAMES, TITLES, chinese_date
from backend.enforcement.models import Case, CaseRecord, IssuedDocument
from backend.enforcement.penalties import ENTERPRISE_TARGET
from backend.enforcement.register import issued_for, pdf_of, run_alone
from backend.enforcement.service import CaseAccess
from backend.errors import Conflict, ErrorCode
from backend.evidence.models import Evidence
from backend.storage import ObjectStore
from backend.unit_of_work import end_reads
from backend.vocabulary import EvidenceStatus

VOLUME = "案卷.pdf"
MANIFEST = "manifest.json"
CHUNK = 1 << 20  # bytes read from the store at a time
READ_AHEAD = 2  # chunks read from the store and not yet written
QUEUED = 4  # parts made and not yet sent, at most (a part is at most a chunk): with the chunks read ahead, ~8 MiB
STAT_AT_ONCE = 8  # evidence objects looked up in the store at once before streaming


def document_title(document: IssuedDocument) -> str:
    """The document's title, with the person it is addressed to (one 行政处罚决定书 per target) and its edition."""
    title = TITLES.get(document.type, document.type)
    if document.target not in ("", ENTERPRISE_TARGET):
        title += f"（{document.target}）"
    if document.edition > 1:
        title += f"（第{document.edition}版）"
    return title


@dataclass
class Member:
    """One file of the ZIP: bytes at hand, or an evidence original read from the store."""

    path: str
    at: datetime
    data: bytes | None = None
    object_key: str | None = None
    size: int = 0
    sha256: str | None = None  # an original's, recorded at upload


@dataclass
class CaseFile:
    case_id: uuid.UUID
    chain_head: str
    chain_length: int
    members: list[Member] = field(default_factory=list)


@dataclass
class VolumeFacts:
    """What 案卷.pdf shows, read from the database before any store call."""

    case: Case
    agency_name: str
    enterprise_name: str
    credit_code: str
    documents: list[tuple[IssuedDocument, bytes]]
    records: list[CaseRecord]
    evidence: list[tuple[str, Evidence]]  # path in the ZIP, record


def _extension(content_type: str) -> str:
    guessed = mimetypes.guess_extension(content_type.split(";", maxsplit=1)[0].strip()) or ".bin"
    return {".jpe": ".jpg", ".jpeg": ".jpg"}.get(guessed, guessed)


class CaseFileService(CaseAccess):
    async def prepare(self, case_id: uuid.UUID) -> CaseFile:
        """Everything the ZIP needs but the evidence bytes: read, checked against the store, 案卷.pdf rendered."""
        case = await self._case(case_id)
        records = list(
            (
                await self.session.execute(select(CaseRecord).where(col(CaseRecord.case_id) == case.id).order_by(col(CaseRecord.seq)))
            ).scalars()
        )
        documents = list(
            (await self.session.execute(select(IssuedDocument).where(issued_for(case)).order_by(col(IssuedDocument.issued_at)))).scalars()
        )
        evidence = list(
            (
                await self.session.execute(
                    select(Evidence)
                    .where(col(Evidence.case_id) == case.id, col(Evidence.status) == EvidenceStatus.stored)
                    .order_by(col(Evidence.created_at), col(Evidence.id))
                )
            ).scalars()
        )
        enterprise = await self.session.get(Enterprise, case.enterprise_id)
        agency = await self.session.get(Agency, case.agency_id)
        assert enterprise is not None and agency is not None
        await end_reads(self.session)  # no transaction open while the store is asked

        await self._all_in_store(evidence)
        issued = [(d, await pdf_of(self.session, self.store, d)) for d in documents]
        named = [(f"evidence/{n:03d}-{e.id}{_extension(e.content_type)}", e) for n, e in enumerate(evidence, start=1)]
        facts = VolumeFacts(case, agency.name, enterprise.name, enterprise.credit_code, issued, records, named)
        volume = await anyio.to_thread.run_sync(run_alone, build_volume, facts)

        at = now()
        members = [Member(VOLUME, at, data=volume)]
        members += [
            Member(f"documents/{n:02d}-{document_title(d)}.pdf", d.issued_at, data=pdf) for n, (d, pdf) in enumerate(issued, start=1)
        ]
        members += [Member(path, e.created_at, object_key=e.object_key, size=e.size, sha256=e.sha256) for path, e in named]
        return CaseFile(case_id=case.id, chain_head=case.head_hash, chain_length=case.record_count, members=members)

    async def _all_in_store(self, evidence: list[Evidence]) -> None:
        """409 evidence_missing naming every original the store lacks."""
        missing: list[dict[str, str]] = []
        limiter = anyio.Semaphore(STAT_AT_ONCE)

        async def look(item: Evidence) -> None:
            async with limiter:
                if await self.store.stat(item.object_key) is None:
                    missing.append({"evidence_id": str(item.id), "object_key": item.object_key})

        async with anyio.create_task_group() as group:
            for item in evidence:
                group.start_soon(look, item)
        if missing:
            missing.sort(key=lambda m: m["evidence_id"])
            shown = ", ".join(f"{m['evidence_id']} ({m['object_key']})" for m in missing)
            raise Conflict(
                f"{len(missing)} evidence originals of the case are missing from the object store: {shown}",
                code=ErrorCode.EVIDENCE_MISSING,
                missing=missing,
            )


# --- the ZIP, streamed ----------------------------------------------------------------------------------------


class _Outbox(io.RawIOBase):
    """Where zipfile writes: it keeps what was written until taken, and counts the position. Not seekable, so
    zipfile writes each member's sizes and CRC after its data (a data descriptor) instead of seeking back."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        part = data if isinstance(data, bytes) else bytes(data)
        self._parts.append(part)
        self._position += len(part)
        return len(part)

    def tell(self) -> int:
        return self._position

    def take(self) -> list[bytes]:
        parts, self._parts = self._parts, []
        return parts


def _zip_time(at: datetime) -> tuple[int, int, int, int, int, int]:
    local = at.astimezone(agency_zone())
    return (max(local.year, 1980), local.month, local.day, local.hour, local.minute, local.second)


async def _read_ahead(chunks: AsyncIterator[bytes], depth: int = READ_AHEAD) -> AsyncIterator[bytes]:
    """The chunks of `chunks`, read by a task of their own that keeps up to `depth` chunks ready, so the store is read
    without a pause while the caller works on what was read before."""
    ready: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=depth)

    async def read() -> None:
        try:
            async for chunk in chunks:
                await ready.put(chunk)
        except Exception as exc:
            await ready.put(exc)
            return
        await ready.put(None)

    reader = asyncio.ensure_future(read())
    try:
        while (chunk := await ready.get()) is not None:
            if isinstance(chunk, BaseException):
                raise chunk
            yield chunk
    finally:
        if not reader.done():
            reader.cancel()
            with _suppressed():
                await reader
        await chunks.aclose()  # type: ignore[attr-defined]


class _suppressed:
    """Swallow what a cancelled read-ahead ends with (its cancellation, or the store's error) while cleaning up."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


async def stream_zip(store: ObjectStore, case_file: CaseFile) -> AsyncIterator[bytes]:
    """The ZIP's bytes as they are made. A producer task makes them (reading, hashing, writing the ZIP) while the
    bytes made before are being sent: at most QUEUED parts wait between the two, so memory stays bounded and neither
    side waits for the other more than it must."""
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=QUEUED)
    producer = asyncio.ensure_future(_produce(store, case_file, queue))
    try:
        while (part := await queue.get()) is not None:
            if isinstance(part, BaseException):
                raise part
            yield part
    finally:
        if not producer.done():
            producer.cancel()
            with _suppressed():
                await producer


async def _produce(store: ObjectStore, case_file: CaseFile, queue: asyncio.Queue[bytes | BaseException | None]) -> None:
    try:
        async for part in _zip_parts(store, case_file):
            await queue.put(part)
    except Exception as exc:  # handed to the sender, which raises it: the response ends unfinished, never as a whole ZIP
        await queue.put(exc)
        return
    await queue.put(None)


async def _zip_parts(store: ObjectStore, case_file: CaseFile) -> AsyncIterator[bytes]:
    """The ZIP's bytes, member by member; manifest.json last, with what was really sent."""
    outbox = _Outbox()
    archive = zipfile.ZipFile(outbox, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
    try:
        async for part in _members(store, case_file, archive, outbox):
            yield part
    except BaseException:
        archive.fp = None  # an unfinished archive stays unfinished: never closed into a valid, shorter ZIP
        raise


async def _members(store: ObjectStore, case_file: CaseFile, archive: zipfile.ZipFile, outbox: _Outbox) -> AsyncIterator[bytes]:
    listed: list[dict[str, Any]] = []
    for member in case_file.members:
        info = zipfile.ZipInfo(member.path, _zip_time(member.at))
        if member.data is not None:
            archive.writestr(info, member.data)
            size, sha256 = len(member.data), hashlib.sha256(member.data).hexdigest()
        else:
            assert member.object_key is not None and member.sha256 is not None
            info.file_size = member.size  # lets zipfile choose ZIP64 for a large original
            writer = archive.open(info, "w", force_zip64=member.size > 2**31)
            size, sha256 = 0, member.sha256
            async for chunk in _read_ahead(await store.open(member.object_key, chunk_size=CHUNK)):
                # the CRC, here: ~0.2 ms for a 1 MiB chunk, less than handing it to a worker thread and back costs
                writer.write(chunk)
                size += len(chunk)
                for part in outbox.take():
                    yield part
            writer.close()
        listed.append({"path": member.path, "sha256": sha256, "size": size})
        for part in outbox.take():
            yield part
    manifest = {
        "case_id": str(case_file.case_id),
        "chain_head": case_file.chain_head,
        "chain_length": case_file.chain_length,
        "generated_at": now().astimezone(agency_zone()).isoformat(),
        "files": listed,
    }
    archive.writestr(zipfile.ZipInfo(MANIFEST, _zip_time(now())), json.dumps(manifest, ensure_ascii=False, indent=2).encode())
    archive.close()
    for part in outbox.take():
        yield part


# --- 案卷.pdf ----------------------------------------------------------------------------------------------------

_BODY = ParagraphStyle("case-file-body", fontName=FONT, fontSize=10.5, leading=16, wordWrap="CJK")
_SMALL = ParagraphStyle("case-file-small", parent=_BODY, fontSize=7.5, leading=10)
_HASH = ParagraphStyle("case-file-hash", parent=_SMALL, fontSize=6.5, leading=8.5, wordWrap="CJK")
_HEADING = ParagraphStyle("case-file-heading", parent=_BODY, fontSize=16, leading=26, alignment=1, spaceAfter=8)
_COVER = ParagraphStyle("case-file-cover", parent=_BODY, fontSize=28, leading=40, alignment=1, spaceBefore=60, spaceAfter=40)
_COVER_LINE = ParagraphStyle("case-file-cover-line", parent=_BODY, fontSize=13, leading=24)
_GRID = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.black),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.92, 0.92, 0.92)),
    ]
)


def _p(text: str, style: ParagraphStyle = _BODY) -> Paragraph:
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def _pdf(story: list[Flowable], title: str) -> bytes:
    buffer = io.BytesIO()
    SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=18 * mm, bottomMargin=18 * mm, title=title, invariant=1
    ).build(story)
    return buffer.getvalue()


def _pages(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


def _front(facts: VolumeFacts, contents: list[tuple[str, str, str, str]]) -> bytes:
    """Cover and 卷内目录 (no., title, 文号, date, first page)."""
    case = facts.case
    cover: list[Flowable] = [
        _p(facts.agency_name, _HEADING),
        _p("行政执法案卷", _COVER),
        *[
            _p(f"{label}：{value}", _COVER_LINE)
            for label, value in (
                ("案件名称", case.title),
                ("当事人", facts.enterprise_name),
                ("统一社会信用代码", facts.credit_code),
                ("立案日期", chinese_date(case.opened_at)),
                ("决定日期", chinese_date(case.decided_at) if case.decided_at else "—"),
                ("案件状态", CASE_STATUS_NAMES.get(case.status, case.status)),
                ("卷内文件", f"文书 {len(facts.documents)} 件，记录 {len(facts.records)} 条，证据 {len(facts.evidence)} 件"),
                ("记录链头哈希", case.head_hash),
                ("组卷日期", chinese_date(now())),
            )
        ],
        PageBreak(),
        _p("卷内目录", _HEADING),
    ]
    rows = [[_p(h) for h in ("序号", "文件名称", "文号", "日期", "页号")]]
    rows += [
        [_p(str(n)), _p(title), _p(number, _SMALL), _p(day, _SMALL), _p(page)] for n, (title, number, day, page) in enumerate(contents, 1)
    ]
    table = Table(rows, colWidths=[12 * mm, 52 * mm, 58 * mm, 34 * mm, 18 * mm], repeatRows=1)
    table.setStyle(_GRID)
    return _pdf([*cover, table], f"{case.title} 案卷")


def _chain(facts: VolumeFacts) -> bytes:
    """The record chain, every record with its hashes, and the list of evidence with its digests."""
    story: list[Flowable] = [
        _p("执法全过程记录（哈希链）", _HEADING),
        _p(
            f"共 {len(facts.records)} 条记录。每条记录的哈希覆盖前一条的哈希、记录内容及所附证据的 sha256；链头：{facts.case.head_hash}",
            _SMALL,
        ),
        Spacer(1, 6),
    ]
    rows: list[list[Flowable]] = [[_p(h, _SMALL) for h in ("序号", "类别", "时间", "内容及证据", "前一哈希 / 本条哈希")]]
    for record in facts.records:
        evidence = "".join(f"\n证据 {e['id']}\nsha256 {e['sha256']}" for e in record.evidence)
        at = record.occurred_at.astimezone(agency_zone()).strftime("%Y-%m-%d %H:%M")
        rows.append(
            [
                _p(str(record.seq), _SMALL),
                _p(RECORD_KIND_NAMES.get(record.kind, record.kind), _SMALL),
                _p(at, _SMALL),
                _p(record.description + evidence, _SMALL),
                _p(f"{record.prev_hash}\n{record.hash}", _HASH),
            ]
        )
    table = Table(rows, colWidths=[10 * mm, 18 * mm, 22 * mm, 70 * mm, 54 * mm], repeatRows=1)
    table.setStyle(_GRID)
    story += [table, Spacer(1, 12), _p("证据清单", _HEADING)]
    listed = [[_p(h, _SMALL) for h in ("文件", "类型", "大小（字节）", "sha256")]]
    listed += [
        [_p(path, _SMALL), _p(e.content_type, _SMALL), _p(str(e.size), _SMALL), _p(e.sha256 or "", _HASH)] for path, e in facts.evidence
    ]
    evidence_table = Table(listed, colWidths=[62 * mm, 26 * mm, 24 * mm, 62 * mm], repeatRows=1)
    evidence_table.setStyle(_GRID)
    return _pdf([*story, evidence_table], "执法全过程记录")


def build_volume(facts: VolumeFacts) -> bytes:
    """案卷.pdf: cover, 卷内目录 with page numbers, the issued PDFs as issued, the chain (under the render lock)."""
    chain = _chain(facts)
    document_pages = [_pages(pdf) for _, pdf in facts.documents]

    def contents(front_pages: int) -> list[tuple[str, str, str, str]]:
        page = front_pages + 1
        out = []
        for (document, _), pages in zip(facts.documents, document_pages, strict=True):
            out.append((f"《{document_title(document)}》", document.number, chinese_date(document.issued_at), str(page)))
            page += pages
        out.append(("执法全过程记录（哈希链）及证据清单", "—", chinese_date(now()), str(page)))
        return out

    front = _front(facts, contents(2))
    front_pages = _pages(front)
    if front_pages != 2:  # a long table of contents: number again with its real length
        front = _front(facts, contents(front_pages))
    writer = PdfWriter()
    for part in (front, *(pdf for _, pdf in facts.documents), chain):
        writer.append(PdfReader(io.BytesIO(part)))
    writer.add_metadata({"/Title": f"{facts.case.title} 案卷", "/Author": facts.agency_name})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
