"""Issuing the enforcement documents: numbered once per agency, year and type, rendered, stored, and chained.

A document is issued the first time a handler asks for it (the procedure's documents at their steps: 告知, hearing,
decision, delivery, closing); every later request serves the stored PDF, whose sha256 stands in the case's hash chain
so a printed copy can be checked. Numbering, rendering and keeping are the register's (`backend.enforcement.register`),
shared with the documents of inspections and hazard reviews; a case opened from an inspection serves that
inspection's 现场检查记录 and 责令限期整改指令书 (`backend.inspections.documents`)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from backend import audit
from backend.accounts.models import Agency, Enterprise, User
from backend.enforcement.documents import TITLES, DocumentContent
from backend.enforcement.models import Case, CaseHandler, IssuedDocument
from backend.enforcement.procedure_documents import ProcedureDocuments
from backend.enforcement.records import RecordService
from backend.enforcement.register import issue, issued_for, numbered_content, pdf_of
from backend.enforcement.service import CaseAccess
from backend.errors import Conflict, ErrorCode, ValidationFailed
from backend.idempotency import fingerprint
from backend.inspections.documents import INSPECTION_DOCUMENTS, InspectionDocuments, submitted
from backend.inspections.models import Inspection
from backend.unit_of_work import flush
from backend.vocabulary import Role


class DocumentIssuer(CaseAccess):
    async def document(self, case_id: uuid.UUID, doc_type: str, target: str | None = None) -> tuple[IssuedDocument, bytes]:
        case = await self._case(case_id)
        issued = await self.latest(case, doc_type, target)
        if issued is None:
            if doc_type not in INSPECTION_DOCUMENTS:  # the inspection's documents are issued when a handler first asks
                raise Conflict(f"the case has not reached the step that issues the {TITLES[doc_type]}", code=ErrorCode.DOCUMENT_UNAVAILABLE)
            if self.actor.role != Role.inspector or self.actor.user_id not in await self._handler_ids(case_id):
                raise Conflict(f"{TITLES[doc_type]} has not been issued yet; a handler issues it", code=ErrorCode.DOCUMENT_NOT_ISSUED)
            case = await self._as_handler(case_id)
            issued = await self.latest(case, doc_type, target)  # issued meanwhile, while this request waited for the lock
            if issued is None:
                issued = await self.issue(case, doc_type)
                await flush(self.session)
        return issued, await pdf_of(self.session, self.store, issued)

    async def latest(self, case: Case, doc_type: str, target: str | None) -> IssuedDocument | None:
        """The latest edition of the case's document for `target` (its own, or its inspection's). Without a target: the
        only target's, or the latest issued when the type is not per target; a penalty decision of several targets
        needs `target` (422)."""
        query = select(IssuedDocument).where(issued_for(case), col(IssuedDocument.type) == doc_type)
        rows = list((await self.session.execute(query.order_by(col(IssuedDocument.issued_at), col(IssuedDocument.edition)))).scalars())
        targets = list(dict.fromkeys(r.target for r in rows))
        if target is not None:
            rows = [r for r in rows if r.target == target]
            if not rows and targets:
                raise ValidationFailed(f"target: the {TITLES[doc_type]} of this case is addressed to {targets}", field="target")
        elif doc_type == "penalty_decision" and len(targets) > 1:
            raise ValidationFailed(f"target: this case has one {TITLES[doc_type]} per target, name one of {targets}", field="target")
        return rows[-1] if rows else None

    async def issue(self, case: Case, doc_type: str, *, target: str = "", subject: Any = None) -> IssuedDocument:
        """Number and render the PDF once and keep it with its row (the register); its sha256 goes into the hash chain.
        No store call: the caller holds the case row locked. `target` names whom it is addressed to (one 行政处罚决定书
        per target); issued again for the same target, it is a new edition. `subject` is what the document records (a
        delivery, the closing). The inspection's documents are issued as the inspection's, in the case's agency."""
        assert self.actor.user_id is not None  # documents are issued by a case's staff, never by a system actor
        if doc_type in INSPECTION_DOCUMENTS:
            inspection = submitted(await self.session.get(Inspection, case.inspection_id) if case.inspection_id else None)
            documents = InspectionDocuments(self.session, self.actor, self.store, self.settings)
            issued = await documents.issue(inspection, doc_type, case_id=case.id, agency_id=case.agency_id)
        else:
            content = await self._document_content(case, doc_type, target, subject)
            issued = await issue(self.session, content, issued_by=self.actor.user_id, case_id=case.id, target=target)
            done = {"type": doc_type, "target": target, "number": issued.number, "sha256": issued.sha256}
            audit.record(self.session, self.actor, "case.document", "case", case.id, done)
        RecordService(self.session, self.actor, self.store, self.settings).append(
            case,
            kind="note",
            occurred_at=issued.issued_at,
            evidence=[],
            description=f"签发《{TITLES[doc_type]}》{issued.number}，PDF sha256 {issued.sha256}",
            client_fingerprint=fingerprint({"document": doc_type, "sha256": issued.sha256}),
        )
        return issued

    async def _document_content(self, case: Case, doc_type: str, target: str, subject: Any) -> DocumentContent:
        content = await numbered_content(self.session, doc_type, case.agency_id, case.enterprise_id)
        enterprise = await self.session.get(Enterprise, case.enterprise_id)
        agency = await self.session.get(Agency, case.agency_id)
        assert enterprise is not None and agency is not None
        handlers = (
            await self.session.execute(
                select(col(User.display_name), col(CaseHandler.certificate_no))
                .join(CaseHandler, col(CaseHandler.user_id) == col(User.id))
                .where(col(CaseHandler.case_id) == case.id)
            )
        ).all()
        content.lines.append(("执法人员及执法证号", "、".join(f"{name}（{cert}）" for name, cert in handlers)))
        return await ProcedureDocuments(self, case, content, enterprise, agency).build(doc_type, target, subject)
