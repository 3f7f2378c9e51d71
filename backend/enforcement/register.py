"""The register of issued documents (文书登记): what every document shares, whoever issues it — a case's handlers,
an inspection's team, a hazard's reviewer.

- The 文号, numbered per agency, year and type in one counter (`DocumentCounter`), so a 责令限期整改指令书 issued
  for a routine inspection and one issued through a case share the agency's sequence.
- Rendering (reportlab: CPU work, and module-level state that is not thread-safe) in a worker thread, one at a time;
  the 评估报告 of an accident (`backend.accidents.report`) is numbered and rendered here too, and kept with its accident.
- The row kept once with the PDF's bytes and sha256 (`IssuedDocument`, append-only), and the response that serves it.
  A case's document is identified by (case, type, target, edition): one 行政处罚决定书 per target, and a notice issued
  again after the draft changed is a new edition of it; an inspection's by (inspection, type); a review's opinion by
  (review, type).
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from litestar import Response
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.accounts.models import Agency, Enterprise
from backend.clock import now
from backend.db import upsert_into
from backend.enforcement.documents import DocumentContent, document_number, render
from backend.enforcement.models import Case, DocumentCounter, IssuedDocument
from backend.http import content_disposition, header_value
from backend.storage import ObjectStore
from backend.unit_of_work import end_reads

_RENDERING = threading.Lock()


def render_alone(content: DocumentContent) -> bytes:
    """reportlab keeps module-level state and does not promise thread safety: one PDF at a time (they are rare)."""
    return run_alone(render, content)


def run_alone(build: Callable[..., bytes], *args: Any) -> bytes:
    """Run a reportlab build under the one rendering lock (call it in a worker thread)."""
    with _RENDERING:
        return build(*args)


async def render_off_loop(content: DocumentContent) -> bytes:
    """The PDF, rendered in a worker thread (reportlab is CPU work), one at a time."""
    return await anyio.to_thread.run_sync(render_alone, content)


async def next_number(session: AsyncSession, agency_id: uuid.UUID, doc_type: str, year: int) -> int:
    """The next sequence number of `doc_type` for the agency in `year`, taken in the caller's transaction."""
    statement = (
        upsert_into(session.get_bind().dialect.name, DocumentCounter)
        .values(agency_id=agency_id, year=year, type=doc_type, last=1)
        .on_conflict_do_update(index_elements=["agency_id", "year", "type"], set_={"last": col(DocumentCounter.last) + 1})
        .returning(col(DocumentCounter.last))
    )
    return (await session.execute(statement)).scalar_one()


async def numbered_content(session: AsyncSession, doc_type: str, agency_id: uuid.UUID, enterprise_id: uuid.UUID) -> DocumentContent:
    """A document's header: the issuing agency, the addressed enterprise, the 文号 just taken and the issue time."""
    enterprise = await session.get(Enterprise, enterprise_id)
    agency = await session.get(Agency, agency_id)
    assert enterprise is not None and agency is not None
    issued_at = now()
    return DocumentContent(
        type=doc_type,
        number=document_number(agency.name, doc_type, issued_at.year, await next_number(session, agency.id, doc_type, issued_at.year)),
        agency_name=agency.name,
        enterprise_name=enterprise.name,
        credit_code=enterprise.credit_code,
        address=enterprise.address,
        principal=enterprise.principal,
        issued_at=issued_at,
    )


async def issue(
    session: AsyncSession,
    content: DocumentContent,
    *,
    issued_by: uuid.UUID,
    case_id: uuid.UUID | None = None,
    inspection_id: uuid.UUID | None = None,
    hazard_id: uuid.UUID | None = None,
    hazard_event_id: uuid.UUID | None = None,
    target: str = "",
) -> IssuedDocument:
    """Render the PDF (in a worker thread) and keep it with its row, owned by a case, an inspection or a hazard's
    review. No store call: callers hold their aggregate locked. The caller audits (and chains). A case's document is
    addressed to `target` ("" where the case has one addressee); issued again for it, it is the next edition."""
    pdf = await render_off_loop(content)
    edition = 1
    if case_id is not None:
        editions = select(func.count()).where(
            col(IssuedDocument.case_id) == case_id, col(IssuedDocument.type) == content.type, col(IssuedDocument.target) == target
        )
        edition = (await session.execute(editions)).scalar_one() + 1
    issued = IssuedDocument(
        type=content.type,
        target=target,
        edition=edition,
        number=content.number,
        sha256=hashlib.sha256(pdf).hexdigest(),
        size=len(pdf),
        pdf=pdf,
        issued_by=issued_by,
        issued_at=content.issued_at,
        case_id=case_id,
        inspection_id=inspection_id,
        hazard_id=hazard_id,
        hazard_event_id=hazard_event_id,
    )
    session.add(issued)
    return issued


def issued_for(case: Case) -> Any:
    """Which documents were issued for a case: its own, and its inspection's (现场检查记录 and 责令限期整改指令书, one
    文号 each, whether the inspection or the case asked first)."""
    owner = col(IssuedDocument.case_id) == case.id
    if case.inspection_id is not None:
        return or_(owner, col(IssuedDocument.inspection_id) == case.inspection_id)
    return owner


async def first_issued(session: AsyncSession, doc_type: str, *owners: Any) -> IssuedDocument | None:
    """The document of `doc_type` owned as any of `owners` says (conditions on IssuedDocument), if issued."""
    query = select(IssuedDocument).where(col(IssuedDocument.type) == doc_type, *owners).order_by(col(IssuedDocument.issued_at))
    return (await session.execute(query.limit(1))).scalar_one_or_none()


async def pdf_of(session: AsyncSession, store: ObjectStore, issued: IssuedDocument) -> bytes:
    """The PDF's bytes: from the row, or (issued before PDFs were kept in the database) from the store, with no
    transaction open."""
    if issued.pdf is not None:
        return issued.pdf
    assert issued.object_key is not None
    await end_reads(session)
    return await store.get_bytes(issued.object_key)


def pdf_response(issued: IssuedDocument, pdf: bytes) -> Response[bytes]:
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "X-Document-Number": header_value(issued.number),
            "X-Content-SHA256": issued.sha256,
            "Content-Disposition": content_disposition(f"{issued.type}.pdf", inline=True),
        },
    )
