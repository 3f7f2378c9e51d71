"""Issuing the enforcement documents: numbered once per agency, year and type, rendered, stored, and chained.

A document is issued the first time a handler asks for it (the penalty decision when the case is decided); every
later request serves the stored PDF, whose sha256 stands in the case's hash chain so a printed copy can be checked.
The PDF is kept in the database with its row (documents issued before that was so are read from the object store)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from backend import audit
from backend.accounts.models import User
from backend.enforcement.discretion import discretion_table
from backend.enforcement.documents import TITLES, DocumentContent
from backend.enforcement.models import Case, CaseHandler, IssuedDocument
from backend.enforcement.records import RecordService
from backend.enforcement.register import first_issued, issue, issued_for, numbered_content, pdf_of
from backend.enforcement.service import CaseAccess
from backend.errors import Conflict, ErrorCode
from backend.idempotency import fingerprint
from backend.inspections.documents import INSPECTION_DOCUMENTS, InspectionDocuments, submitted
from backend.inspections.models import Inspection
from backend.unit_of_work import flush
from backend.vocabulary import Role


class DocumentIssuer(CaseAccess):
    async def document(self, case_id: uuid.UUID, doc_type: str) -> tuple[IssuedDocument, bytes]:
        case = await self._case(case_id)
        issued = await self._issued(case, doc_type)
        if issued is None:
            if doc_type == "penalty_decision":
                raise Conflict("the penalty decision is issued when the case is decided", code=ErrorCode.NOT_DECIDED)
            if self.actor.role != Role.inspector or self.actor.user_id not in await self._handler_ids(case_id):
                raise Conflict(f"{TITLES[doc_type]} has not been issued yet; a handler issues it", code=ErrorCode.DOCUMENT_NOT_ISSUED)
            case = await self._as_handler(case_id)
            issued = await self._issued(case, doc_type)  # issued meanwhile, while this request waited for the lock
            if issued is None:
                issued = await self.issue(case, doc_type)
                await flush(self.session)
        return issued, await pdf_of(self.session, self.store, issued)

    async def _issued(self, case: Case, doc_type: str) -> IssuedDocument | None:
        return await first_issued(self.session, doc_type, issued_for(case))

    async def issue(self, case: Case, doc_type: str) -> IssuedDocument:
        """Number and render the PDF once and keep it with its row; its sha256 goes into the hash chain. No store call:
        the caller holds the case row locked. Rendering (reportlab, CPU work) runs in a worker thread."""
        assert self.actor.user_id is not None  # documents are issued by a case's handlers, never by a system actor
        if doc_type in INSPECTION_DOCUMENTS:
            inspection = submitted(await self.session.get(Inspection, case.inspection_id) if case.inspection_id else None)
            documents = InspectionDocuments(self.session, self.actor, self.store, self.settings)
            issued = await documents.issue(inspection, doc_type, case_id=case.id, agency_id=case.agency_id)
        else:
            issued = await issue(self.session, await self._document_content(case, doc_type), issued_by=self.actor.user_id, case_id=case.id)
            done = {"type": doc_type, "number": issued.number, "sha256": issued.sha256}
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

    async def _document_content(self, case: Case, doc_type: str) -> DocumentContent:
        content = await numbered_content(self.session, doc_type, case.agency_id, case.enterprise_id)
        handlers = (
            await self.session.execute(
                select(col(User.display_name), col(CaseHandler.certificate_no))
                .join(CaseHandler, col(CaseHandler.user_id) == col(User.id))
                .where(col(CaseHandler.case_id) == case.id)
            )
        ).all()
        content.lines.append(("执法人员及执法证号", "、".join(f"{name}（{cert}）" for name, cert in handlers)))
        decision = await self._latest_decision(case.id)
        if decision is None:
            raise Conflict("draft the decision first", code=ErrorCode.DECISION_REQUIRED)
        content.sections = [
            ("违法事实：", [decision.facts]),
            ("处罚理由及依据：", [decision.reasoning]),
            ("行政处罚：", [self._measure_text(m) for m in decision.measures]),
            ("履行方式和期限：", ["罚款自收到本决定书之日起十五日内缴纳（《中华人民共和国行政处罚法》第六十七条）。"]),
            ("救济途径：", ["如不服本决定，可以依法申请行政复议或者提起行政诉讼。"]),
        ]
        return content

    @staticmethod
    def _measure_text(measure: dict[str, Any]) -> str:
        basis = discretion_table()[measure["basis_id"]]
        names = {
            "warning": "警告",
            "fine": "罚款",
            "confiscate": "没收违法所得",
            "order_rectification": "责令限期改正",
            "suspend_production": "责令停产停业整顿",
            "suspend_license": "暂扣许可证件",
            "revoke_license": "吊销许可证件",
            "close": "提请关闭",
        }
        amount = f"人民币{measure['amount']}元" if measure.get("amount") is not None else ""
        return f"{names[measure['type']]}{amount}（依据《{basis.law}》{basis.article}{basis.item or ''}）"
