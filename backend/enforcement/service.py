"""Enforcement cases: the full-process record as a hash chain, decisions within the discretion table, legal review
of major decisions by someone outside the case, the documents, and publication (三项制度)."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from backend import audit
from backend.accounts.models import Agency, Enterprise, User
from backend.accounts.scope import MIN_OFFICERS, agency_path_of, agency_subtree_clause, require_enterprise, supervising_officers
from backend.audit import Actor
from backend.clock import now
from backend.db import insert_if_absent, is_postgres
from backend.enforcement.discretion import discretion_table
from backend.enforcement.documents import TITLES, DocumentContent, chinese_date, document_number, render
from backend.enforcement.models import (
    GENESIS_HASH,
    Case,
    CaseEvent,
    CaseHandler,
    CaseRecord,
    Decision,
    DocumentCounter,
    IssuedDocument,
    LegalReview,
)
from backend.enforcement.schemas import (
    CaseIn,
    CaseOut,
    DecisionIn,
    DecisionOut,
    DocumentOut,
    ExtensionIn,
    LegalReviewIn,
    LegalReviewOut,
    MeasureOut,
    PublicDecision,
    PublicMeasure,
    RecordIn,
    RecordOut,
    VerifyOut,
)
from backend.errors import Conflict, Forbidden, NotFound, ValidationFailed
from backend.evidence.models import Evidence
from backend.evidence.service import original_key
from backend.hazards.models import Hazard
from backend.hazards.service import deadline_instant
from backend.idempotency import ensure_same, find_retry, fingerprint
from backend.inspections.models import Inspection, InspectionInspector, InspectionResult
from backend.pagination import Page, check_limit, decode_cursor, encode_cursor
from backend.settings import Settings
from backend.storage import ObjectStore
from backend.sync.service import record_change, register_serializer
from backend.workflow import Move, TimelineEntryOut, Workflow, timeline_entry

INSPECTOR, LEGAL = frozenset({"inspector"}), frozenset({"legal_reviewer"})
DRAFTS = {"decision_drafted": Move("decision_draft", INSPECTOR), "major_decision_drafted": Move("legal_review", INSPECTOR)}
CASE_WORKFLOW = Workflow(
    "case",
    {
        "open": DRAFTS,
        "decision_draft": {**DRAFTS, "decided": Move("decided", INSPECTOR)},
        "legal_review": {"approved": Move("approved", LEGAL), "returned": Move("decision_draft", LEGAL)},  # 法制审核
        "approved": {"decided": Move("decided", INSPECTOR)},
    },
)
DECISION_TIME_LIMIT = timedelta(days=90)  # 行政处罚法 第六十条: 自立案之日起九十日内作出行政处罚决定
MAJOR_MEASURES = {
    "suspend_production": "责令停产停业",
    "suspend_license": "暂扣许可证件",
    "revoke_license": "吊销许可证件",
    "close": "责令关闭",
}
MAJOR_GROUNDS = {
    "public_interest": "涉及重大公共利益（行政处罚法第五十八条第一款第一项）",
    "major_rights_after_hearing": "直接关系当事人或者第三人重大权益，经过听证程序（第五十八条第一款第二项）",
    "complex_case": "案件情况疑难复杂、涉及多个法律关系（第五十八条第一款第三项）",
    "required_by_law": "法律、法规规定应当进行法制审核的其他情形（第五十八条第一款第四项）",
}


# --- the hash chain ---------------------------------------------------------------------------------------------


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_content(record: CaseRecord) -> dict[str, Any]:
    """The fields a record's hash covers, in a fixed form that survives upgrades of Python, the ORM or the driver."""
    return {
        "case_id": str(record.case_id),
        "seq": record.seq,
        "kind": record.kind,
        "occurred_at": _instant(record.occurred_at),
        "description": record.description,
        "location": {k: repr(float(v)) for k, v in sorted(record.location.items())} if record.location else None,
        "evidence": [{"id": str(e["id"]), "sha256": e["sha256"]} for e in record.evidence],
        "recorded_by": str(record.recorded_by),
        "recorded_at": _instant(record.recorded_at),
    }


def chain_hash(prev_hash: str, content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


# --- masking for publication ------------------------------------------------------------------------------------

_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def mask_name(name: str) -> str:
    return name[0] + "*" * (len(name) - 1) if len(name) > 1 else "*"


def mask_text(text: str, names: list[str]) -> str:
    """Personal names become 张*, 王**; ID numbers 110101********123X; mobile numbers 138****5678."""
    for name in sorted({n for n in names if n}, key=len, reverse=True):
        text = text.replace(name, mask_name(name))
    text = _ID_NUMBER.sub(lambda m: f"{m.group(1)}{'*' * 8}{m.group(2)}", text)
    return _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)


def measure_out(measure: dict[str, Any]) -> MeasureOut:
    basis = discretion_table()[measure["basis_id"]]
    position = None
    if measure.get("amount") is not None and basis.max_amount is not None:
        low, high = basis.min_amount or 0, basis.max_amount
        position = round((measure["amount"] - low) / (high - low), 4) if high > low else 1.0
    return MeasureOut(type=measure["type"], amount=measure.get("amount"), basis_id=measure["basis_id"], basis=basis, position_in_range=position)


def decision_out(decision: Decision, status: str) -> DecisionOut:
    return DecisionOut(
        id=decision.id, case_id=decision.case_id, status=status, measures=[measure_out(m) for m in decision.measures],
        facts=decision.facts, reasoning=decision.reasoning, major=decision.major, major_reasons=decision.major_reasons,
        created_at=decision.created_at,
    )


def record_out(record: CaseRecord) -> RecordOut:
    return RecordOut.model_validate(record, from_attributes=True)


class CaseService:
    def __init__(self, session: AsyncSession, actor: Actor, store: ObjectStore, settings: Settings) -> None:
        self.session = session
        self.actor = actor
        self.store = store
        self.settings = settings

    # --- scope ------------------------------------------------------------------------------------------------

    def _visible(self) -> Any:
        query = select(Case).join(Agency, Agency.id == Case.agency_id)
        if self.actor.role == "enterprise":
            return query.where(Case.enterprise_id == self.actor.enterprise_id)
        return query.where(agency_subtree_clause(self.actor))

    async def _case(self, case_id: uuid.UUID, *, lock: bool = False) -> Case:
        query = self._visible().where(Case.id == case_id).execution_options(populate_existing=True)
        if lock:
            query = query.with_for_update(of=Case)
        case = (await self.session.execute(query)).scalar_one_or_none()
        if case is None:
            raise NotFound(f"case {case_id} not found", code="case_not_found")
        return case

    async def _handlers(self, case_id: uuid.UUID) -> list[CaseHandler]:
        return list((await self.session.execute(select(CaseHandler).where(CaseHandler.case_id == case_id))).scalars())

    async def _as_handler(self, case_id: uuid.UUID) -> Case:
        case = await self._case(case_id, lock=True)
        if self.actor.user_id not in {h.user_id for h in await self._handlers(case_id)}:
            raise Forbidden("only the case's handlers act on it", code="not_a_handler")
        return case

    # --- opening a case ---------------------------------------------------------------------------------------

    async def create(self, data: CaseIn) -> tuple[Case, bool]:
        case_id = data.id or uuid.uuid4()
        handler_ids = sorted(set(data.handler_ids) | {self.actor.user_id})  # type: ignore[arg-type]
        content = {"enterprise_id": data.enterprise_id, "inspection_id": data.inspection_id, "title": data.title, "handler_ids": handler_ids}
        digest = fingerprint(content)
        existing = await self._existing(case_id, digest)
        if existing is not None:
            return existing, False
        enterprise = await require_enterprise(self.session, self.actor, data.enterprise_id, field="enterprise_id")
        if data.inspection_id is not None:
            inspection = await self.session.get(Inspection, data.inspection_id)
            if inspection is None or inspection.enterprise_id != enterprise.id:
                raise ValidationFailed("inspection not found for this enterprise", code="inspection_not_found", field="inspection_id")
        handlers = await supervising_officers(
            self.session, handler_ids, enterprise.id, field="handler_ids", certified_at_least=MIN_OFFICERS
        )
        uncertified = [str(u.id) for u in handlers if not u.certificate_no]
        if uncertified:
            raise ValidationFailed(f"every handler holds an enforcement certificate: {uncertified}", code="inspector_not_eligible", field="handler_ids")
        at = now()
        row = {
            "id": case_id, "enterprise_id": enterprise.id, "agency_id": self.actor.agency_id, "inspection_id": data.inspection_id,
            "title": data.title, "status": "open", "opened_at": at, "decide_by": at + DECISION_TIME_LIMIT, "record_count": 0,
            "head_hash": GENESIS_HASH, "version": 1, "client_fingerprint": digest, "created_by": self.actor.user_id,
            "created_at": at, "updated_at": at,
        }
        if not await insert_if_absent(self.session, Case, row, ["id"]):
            await self.session.rollback()
            existing = await self._existing(case_id, digest)
            assert existing is not None
            return existing, False
        self.session.add_all([CaseHandler(case_id=case_id, user_id=u.id, certificate_no=u.certificate_no or "") for u in handlers])
        self.session.add(self._event(case_id, "opened", None, "open", data.title, {"handler_ids": handler_ids}))
        audit.record(self.session, self.actor, "case.open", "case", case_id, content)
        await self._changed(case_id, enterprise.id)
        await self.session.commit()
        return await self._case(case_id), True

    async def _existing(self, case_id: uuid.UUID, digest: str) -> Case | None:
        return await find_retry(self.session, self._visible(), Case, case_id, digest)

    def _event(self, case_id: uuid.UUID, action: str, from_status: str | None, to_status: str, note: str | None, data: dict[str, Any]) -> CaseEvent:
        return timeline_entry(CaseEvent, self.actor, {"case_id": case_id}, action, from_status, to_status, note, data)

    async def _changed(self, case_id: uuid.UUID, enterprise_id: uuid.UUID) -> None:
        record_change(
            self.session, "case", case_id, "update", enterprise_id=enterprise_id,
            agency_path=await agency_path_of(self.session, enterprise_id),
        )

    async def _commit(self) -> None:
        try:
            await self.session.commit()
        except (StaleDataError, IntegrityError) as exc:  # a concurrent request changed the case first
            await self.session.rollback()
            raise Conflict("the case changed at the same moment; send the request again", code="concurrent_change") from exc

    # --- the full-process record ------------------------------------------------------------------------------

    async def add_record(self, case_id: uuid.UUID, data: RecordIn) -> tuple[CaseRecord, bool]:
        record_id = data.id or uuid.uuid4()
        digest = fingerprint({
            "kind": data.kind, "occurred_at": data.occurred_at.astimezone(UTC), "description": data.description,
            "evidence_ids": sorted(str(e) for e in data.evidence_ids), "location": data.location,
        })
        case = await self._as_handler(case_id)
        existing = await self.session.get(CaseRecord, record_id)
        if existing is not None:
            ensure_same(existing.client_fingerprint if existing.case_id == case_id else None, digest, "record", record_id)
            return existing, False
        evidence = await self._stored_evidence(case_id, [str(e) for e in data.evidence_ids])
        record = CaseRecord(
            id=record_id, case_id=case_id, seq=case.record_count + 1, kind=data.kind, occurred_at=data.occurred_at,
            description=data.description, location=data.location.model_dump() if data.location else None, evidence=evidence,
            recorded_by=self.actor.user_id, recorded_at=now(), prev_hash=case.head_hash, hash="", client_fingerprint=digest,
        )
        self._append(case, record)
        await self._changed(case.id, case.enterprise_id)
        await self._commit()
        return record, True

    def _append(self, case: Case, record: CaseRecord) -> None:
        """Chain the record onto the case; the case row's version and the unique (case_id, seq) stop a fork."""
        record.hash = chain_hash(record.prev_hash, record_content(record))
        self.session.add(record)
        case.record_count, case.head_hash, case.updated_at = record.seq, record.hash, now()
        audit.record(self.session, self.actor, "case.record", "case", case.id, {"seq": record.seq, "kind": record.kind, "hash": record.hash})

    async def _stored_evidence(self, case_id: uuid.UUID, evidence_ids: list[str]) -> list[dict[str, str]]:
        if not evidence_ids:
            return []
        query = select(Evidence.id, Evidence.sha256).where(
            Evidence.id.in_([uuid.UUID(e) for e in evidence_ids]), Evidence.case_id == case_id, Evidence.status == "stored"
        )
        found = {str(i): sha for i, sha in (await self.session.execute(query)).all()}
        missing = [e for e in evidence_ids if e not in found]
        if missing:
            raise ValidationFailed(f"not stored evidence of this case: {missing}", code="evidence_not_found", field="evidence_ids")
        return [{"id": e, "sha256": found[e]} for e in dict.fromkeys(evidence_ids)]

    async def records(self, case_id: uuid.UUID) -> list[CaseRecord]:
        await self._case(case_id)
        query = select(CaseRecord).where(CaseRecord.case_id == case_id).order_by(CaseRecord.seq)
        return list((await self.session.execute(query)).scalars())

    async def verify(self, case_id: uuid.UUID) -> VerifyOut:
        """Recompute the chain from the stored rows and re-hash every evidence object in the store."""
        case = await self._case(case_id)
        records = await self.records(case_id)
        prev = GENESIS_HASH
        for position, record in enumerate(records, start=1):
            problem = None
            if record.seq != position or record.prev_hash != prev:
                problem = "the record is out of its place in the chain"
            elif chain_hash(prev, record_content(record)) != record.hash:
                problem = "the record's content does not match its hash"
            else:
                problem = await self._evidence_problem(record)
            if problem:
                return VerifyOut(valid=False, length=len(records), head=case.head_hash, first_invalid_seq=record.seq, problem=problem)
            prev = record.hash
        if case.head_hash != prev or case.record_count != len(records):
            return VerifyOut(valid=False, length=len(records), head=case.head_hash, first_invalid_seq=len(records) + 1,
                             problem="the case's head does not match its last record")
        return VerifyOut(valid=True, length=len(records), head=prev)

    async def _evidence_problem(self, record: CaseRecord) -> str | None:
        for item in record.evidence:
            digest = hashlib.sha256()
            try:
                async for chunk in self.store.stream(original_key(item["sha256"])):
                    digest.update(chunk)
            except Exception:  # a missing or unreadable object is a broken chain, not a server error
                return f"evidence {item['id']} is missing from the store"
            if digest.hexdigest() != item["sha256"]:
                return f"evidence {item['id']} was altered in the store"
        return None

    # --- decisions and legal review ---------------------------------------------------------------------------

    async def draft_decision(self, case_id: uuid.UUID, data: DecisionIn) -> Decision:
        case = await self._as_handler(case_id)
        measures, reasons = self._checked_measures(data)
        if data.major:
            reasons += [MAJOR_GROUNDS[g] for g in data.major_grounds] or ["承办人认定为重大执法决定"]
        major = bool(reasons)
        action = "major_decision_drafted" if major else "decision_drafted"
        CASE_WORKFLOW.check(case.status, action, self.actor.role)
        decision = Decision(
            case_id=case_id, measures=measures, facts=data.facts, reasoning=data.reasoning, major=major,
            major_reasons=reasons, drafted_by=self.actor.user_id,
        )
        self.session.add(decision)
        await self._move(case, action, data.reasoning, {"decision_id": decision.id, "major": major, "major_reasons": reasons})
        return decision

    def _checked_measures(self, data: DecisionIn) -> tuple[list[dict[str, Any]], list[str]]:
        table = discretion_table()
        reasons: list[str] = []
        for index, measure in enumerate(data.measures):
            basis = table.get(measure.basis_id)
            if basis is None:
                raise ValidationFailed(f"no discretion entry {measure.basis_id}", code="unknown_basis", field=f"measures[{index}].basis_id")
            if measure.type not in basis.measures:
                raise ValidationFailed(
                    f"{basis.article}{basis.item or ''} allows {basis.measures}, not {measure.type}",
                    code="measure_not_allowed", field=f"measures[{index}].type",
                )
            if measure.type in ("fine", "confiscate") and measure.amount is None:
                raise ValidationFailed("a fine needs its amount in yuan", field=f"measures[{index}].amount")
            if measure.type == "fine" and basis.max_amount is not None:
                low = basis.min_amount or 0
                if not low <= measure.amount <= basis.max_amount:  # type: ignore[operator]
                    raise ValidationFailed(
                        f"{measure.amount} yuan lies outside {basis.article}{basis.item or ''}'s range {low}–{basis.max_amount} yuan",
                        code="outside_discretion", field=f"measures[{index}].amount",
                    )
            if measure.type == "fine" and measure.amount >= self.settings.major_fine_threshold:  # type: ignore[operator]
                reasons.append(f"较大数额罚款：{measure.amount}元，达到{self.settings.major_fine_threshold}元")
            if measure.type in MAJOR_MEASURES:
                reasons.append(MAJOR_MEASURES[measure.type])
        return [m.model_dump() for m in data.measures], reasons

    async def _latest_decision(self, case_id: uuid.UUID) -> Decision | None:
        query = select(Decision).where(Decision.case_id == case_id).order_by(Decision.created_at.desc(), Decision.id.desc())
        return (await self.session.execute(query.limit(1))).scalar_one_or_none()

    async def legal_review(self, case_id: uuid.UUID, data: LegalReviewIn) -> LegalReview:
        case = (
            await self.session.execute(
                select(Case).where(Case.id == case_id).with_for_update().execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if case is None:
            raise NotFound(f"case {case_id} not found", code="case_not_found")
        case_path = (await self.session.execute(select(Agency.path).where(Agency.id == case.agency_id))).scalar_one()
        if self.actor.role != "legal_reviewer" or not self.actor.agency_path or not case_path.startswith(self.actor.agency_path):
            raise Forbidden("only legal reviewers of the case's agency or a parent agency review it", code="outside_agency")
        if self.actor.user_id in {h.user_id for h in await self._handlers(case_id)}:
            raise Forbidden("a handler never reviews their own case", code="handler_cannot_review")
        action = "approved" if data.decision == "approve" else "returned"
        CASE_WORKFLOW.check(case.status, action, self.actor.role)
        decision = await self._latest_decision(case_id)
        assert decision is not None  # a case in legal_review has a draft
        review = LegalReview(case_id=case_id, decision_id=decision.id, reviewer_id=self.actor.user_id, outcome=data.decision, opinion=data.opinion)
        self.session.add(review)
        await self._move(case, action, data.opinion, {"decision_id": decision.id, "review_id": review.id})
        return review

    async def decide(self, case_id: uuid.UUID) -> Case:
        case = await self._as_handler(case_id)
        decision = await self._latest_decision(case_id)
        if decision is None:
            raise Conflict("draft the decision first", code="decision_required")
        if decision.major and case.status != "approved":
            raise Conflict(
                "a major decision (重大执法决定) needs the legal review's approval first (行政处罚法 第五十八条)", code="legal_review_required"
            )
        CASE_WORKFLOW.check(case.status, "decided", self.actor.role)
        if now() > case.decide_by:
            raise Conflict(
                f"the time limit for a decision ended on {chinese_date(case.decide_by)} (行政处罚法 第六十条); record an extension first",
                code="decision_deadline_passed",
            )
        case.decided_at = now()
        await self._issue(case, "penalty_decision", commit=False)
        await self._move(case, "decided", None, {"decision_id": decision.id})
        return await self._case(case_id)

    async def extend(self, case_id: uuid.UUID, data: ExtensionIn) -> Case:
        case = await self._as_handler(case_id)
        until = deadline_instant(data.until)
        if case.status == "decided":
            raise Conflict("the case is decided", code="invalid_transition")
        if until <= case.decide_by:  # type: ignore[operator]
            raise ValidationFailed("an extension moves the time limit later", field="until")
        self.session.add(
            self._event(case_id, "time_limit_extended", case.status, case.status, data.reason,
                        {"from": case.decide_by, "until": until, "approved_by": data.approved_by})
        )
        audit.record(self.session, self.actor, "case.extend", "case", case_id, {"until": until, **data.model_dump()})
        case.decide_by, case.updated_at = until, now()  # type: ignore[assignment]
        await self._changed(case.id, case.enterprise_id)
        await self._commit()
        return await self._case(case_id)

    async def _move(self, case: Case, action: str, note: str | None, data: dict[str, Any]) -> None:
        CASE_WORKFLOW.transition(
            self.session, case, action, self.actor, note,
            lambda act, from_status, to_status: self._event(case.id, act, from_status, to_status, note, data), data,
        )
        case.updated_at = now()
        await self._changed(case.id, case.enterprise_id)
        await self._commit()

    # --- documents --------------------------------------------------------------------------------------------

    async def document(self, case_id: uuid.UUID, doc_type: str) -> tuple[IssuedDocument, bytes]:
        case = await self._case(case_id)
        issued = await self._issued(case_id, doc_type)
        if issued is None:
            if doc_type == "penalty_decision":
                raise Conflict("the penalty decision is issued when the case is decided", code="not_decided")
            if self.actor.role != "inspector" or self.actor.user_id not in {h.user_id for h in await self._handlers(case_id)}:
                raise NotFound(f"{TITLES[doc_type]} has not been issued yet", code="document_not_issued")
            case = await self._as_handler(case_id)
            issued = await self._issue(case, doc_type, commit=True)
        return issued, await self.store.get_bytes(issued.object_key)

    async def _issued(self, case_id: uuid.UUID, doc_type: str) -> IssuedDocument | None:
        query = select(IssuedDocument).where(IssuedDocument.case_id == case_id, IssuedDocument.type == doc_type)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def _issue(self, case: Case, doc_type: str, *, commit: bool) -> IssuedDocument:
        """Number, render and store the PDF once; its sha256 goes into the document row and the hash chain."""
        content = await self._document_content(case, doc_type)
        pdf = render(content)
        sha = hashlib.sha256(pdf).hexdigest()
        key = f"documents/{case.id}/{doc_type}-{sha}.pdf"
        await self.store.put_bytes(key, pdf, "application/pdf")
        issued = IssuedDocument(case_id=case.id, type=doc_type, number=content.number, sha256=sha, size=len(pdf), object_key=key, issued_by=self.actor.user_id)
        self.session.add(issued)
        record = CaseRecord(
            case_id=case.id, seq=case.record_count + 1, kind="note", occurred_at=content.issued_at,
            description=f"签发《{TITLES[doc_type]}》{content.number}，PDF sha256 {sha}", evidence=[],
            recorded_by=self.actor.user_id, recorded_at=now(), prev_hash=case.head_hash, hash="",
            client_fingerprint=fingerprint({"document": doc_type, "sha256": sha}),
        )
        self._append(case, record)
        audit.record(self.session, self.actor, "case.document", "case", case.id, {"type": doc_type, "number": content.number, "sha256": sha})
        if commit:
            await self._changed(case.id, case.enterprise_id)
            await self._commit()
        return issued

    async def _next_number(self, agency_id: uuid.UUID, doc_type: str, year: int) -> int:
        if is_postgres(self.session):
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        statement = (
            insert(DocumentCounter)
            .values(agency_id=agency_id, year=year, type=doc_type, last=1)
            .on_conflict_do_update(index_elements=["agency_id", "year", "type"], set_={"last": DocumentCounter.last + 1})
            .returning(DocumentCounter.last)
        )
        return (await self.session.execute(statement)).scalar_one()

    async def _document_content(self, case: Case, doc_type: str) -> DocumentContent:
        enterprise = await self.session.get(Enterprise, case.enterprise_id)
        agency = await self.session.get(Agency, case.agency_id)
        assert enterprise is not None and agency is not None
        issued_at = now()
        number = document_number(agency.name, doc_type, issued_at.year, await self._next_number(agency.id, doc_type, issued_at.year))
        content = DocumentContent(
            type=doc_type, number=number, agency_name=agency.name, enterprise_name=enterprise.name,
            credit_code=enterprise.credit_code, address=enterprise.address, principal=enterprise.principal, issued_at=issued_at,
        )
        handlers = (await self.session.execute(
            select(User.display_name, CaseHandler.certificate_no).join(CaseHandler, CaseHandler.user_id == User.id).where(CaseHandler.case_id == case.id)
        )).all()
        content.lines.append(("执法人员及执法证号", "、".join(f"{name}（{cert}）" for name, cert in handlers)))
        if doc_type == "penalty_decision":
            decision = await self._latest_decision(case.id)
            if decision is None:
                raise Conflict("draft the decision first", code="decision_required")
            content.sections = [
                ("违法事实：", [decision.facts]),
                ("处罚理由及依据：", [decision.reasoning]),
                ("行政处罚：", [self._measure_text(m) for m in decision.measures]),
                ("履行方式和期限：", ["罚款自收到本决定书之日起十五日内缴纳（《中华人民共和国行政处罚法》第六十七条）。"]),
                ("救济途径：", ["如不服本决定，可以依法申请行政复议或者提起行政诉讼。"]),
            ]
            return content
        inspection = await self._inspection_of(case)
        if doc_type == "inspection_record":
            team = (await self.session.execute(
                select(User.display_name, InspectionInspector.certificate_no).join(InspectionInspector, InspectionInspector.user_id == User.id)
                .where(InspectionInspector.inspection_id == inspection.id)
            )).all()
            results = list((await self.session.execute(select(InspectionResult).where(InspectionResult.inspection_id == inspection.id))).scalars())
            findings = [f"{r.item_code}：{(r.hazard or {}).get('description', '')}" for r in results if r.outcome == "hazard"]
            content.lines += [
                ("检查时间", f"{chinese_date(inspection.started_at or inspection.created_at)}"),
                ("检查人员", "、".join(f"{name}（{cert or '—'}）" for name, cert in team)),
                ("在场人员", "、".join(f"{a['name']}" for a in inspection.attendees) or "—"),
            ]
            content.sections = [
                ("检查情况：", [f"共检查 {len(results)} 项，发现隐患 {len(findings)} 项。"]),
                ("发现的问题：", findings or ["未发现问题。"]),
                ("交流反馈：", [inspection.feedback or "—"]),
            ]
            return content
        hazards = list((await self.session.execute(
            select(Hazard).where(Hazard.inspection_id == inspection.id).order_by(Hazard.item_code)
        )).scalars())
        if not hazards:
            raise Conflict("the inspection found no hazard to order rectified", code="document_unavailable")
        content.sections = [
            ("经查，你单位存在下列事故隐患：", [
                f"{n}. {h.description}（{'重大' if h.level == 'major' else '一般'}事故隐患；整改期限：{chinese_date(h.deadline) if h.deadline else '立即'}）"
                for n, h in enumerate(hazards, start=1)
            ]),
            ("整改要求：", ["依据《中华人民共和国安全生产法》第六十五条，责令你单位在上述期限内整改完毕，并将整改情况书面报告。"]),
        ]
        return content

    async def _inspection_of(self, case: Case) -> Inspection:
        inspection = await self.session.get(Inspection, case.inspection_id) if case.inspection_id else None
        if inspection is None or inspection.status != "submitted":
            raise Conflict("this document is made from the case's submitted inspection", code="document_unavailable")
        return inspection

    @staticmethod
    def _measure_text(measure: dict[str, Any]) -> str:
        basis = discretion_table()[measure["basis_id"]]
        names = {
            "warning": "警告", "fine": "罚款", "confiscate": "没收违法所得", "order_rectification": "责令限期改正",
            "suspend_production": "责令停产停业整顿", "suspend_license": "暂扣许可证件", "revoke_license": "吊销许可证件", "close": "提请关闭",
        }
        amount = f"人民币{measure['amount']}元" if measure.get("amount") is not None else ""
        return f"{names[measure['type']]}{amount}（依据《{basis.law}》{basis.article}{basis.item or ''}）"

    # --- reading ----------------------------------------------------------------------------------------------

    async def detail(self, case_id: uuid.UUID) -> CaseOut:
        case = await self._case(case_id)
        decision = await self._latest_decision(case_id)
        reviews = (await self.session.execute(select(LegalReview).where(LegalReview.case_id == case_id).order_by(LegalReview.created_at))).scalars()
        events = (await self.session.execute(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.at))).scalars()
        documents = (await self.session.execute(select(IssuedDocument).where(IssuedDocument.case_id == case_id).order_by(IssuedDocument.issued_at))).scalars()
        return CaseOut(
            **{k: getattr(case, k) for k in (
                "id", "enterprise_id", "agency_id", "inspection_id", "title", "status", "opened_at", "decide_by",
                "record_count", "head_hash", "decided_at",
            )},
            handler_ids=sorted(h.user_id for h in await self._handlers(case_id)),
            decision=decision_out(decision, case.status) if decision else None,
            reviews=[LegalReviewOut.model_validate(r, from_attributes=True) for r in reviews],
            history=[TimelineEntryOut.model_validate(e, from_attributes=True) for e in events],
            documents=[DocumentOut.model_validate(d, from_attributes=True) for d in documents],
        )


async def public_decisions(session: AsyncSession, cursor: str | None, limit: int) -> Page[PublicDecision]:
    """行政执法公示: decided cases, newest first, with personal names and ID numbers masked."""
    query = (
        select(Case, Enterprise, Agency, IssuedDocument)
        .join(Enterprise, Enterprise.id == Case.enterprise_id)
        .join(Agency, Agency.id == Case.agency_id)
        .join(IssuedDocument, (IssuedDocument.case_id == Case.id) & (IssuedDocument.type == "penalty_decision"))
        .where(Case.status == "decided")
    )
    if cursor:
        at, case_id = decode_cursor(cursor)
        query = query.where(tuple_(Case.decided_at, Case.id) < tuple_(at, case_id))
    rows = (await session.execute(query.order_by(Case.decided_at.desc(), Case.id.desc()).limit(check_limit(limit) + 1))).all()
    items = []
    for case, enterprise, agency, document in rows[:limit]:
        decision = (await session.execute(
            select(Decision).where(Decision.case_id == case.id).order_by(Decision.created_at.desc(), Decision.id.desc()).limit(1)
        )).scalar_one()
        handlers = list((await session.execute(
            select(User.display_name).join(CaseHandler, CaseHandler.user_id == User.id).where(CaseHandler.case_id == case.id)
        )).scalars())
        names = [*handlers, enterprise.principal or "", enterprise.safety_manager or ""]
        items.append(PublicDecision(
            decision_number=document.number, enterprise_name=enterprise.name, credit_code=enterprise.credit_code,
            agency_name=agency.name, decided_at=case.decided_at,  # type: ignore[arg-type]
            measures=[PublicMeasure(type=m["type"], amount=m.get("amount"), law=discretion_table()[m["basis_id"]].law,
                                    article=discretion_table()[m["basis_id"]].article) for m in decision.measures],
            facts=mask_text(decision.facts, names), handlers=[mask_name(h) for h in handlers],
        ))
    more = len(rows) > limit
    last = rows[limit - 1][0] if more else None
    return Page[PublicDecision](items=items, next_cursor=encode_cursor(last.decided_at, last.id) if last else None)


async def _serialize(session: AsyncSession, ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = (await session.execute(select(Case).where(Case.id.in_([uuid.UUID(i) for i in ids])))).scalars()
    return {
        str(c.id): {k: to_jsonable_python(getattr(c, k)) for k in ("id", "enterprise_id", "title", "status", "record_count", "head_hash", "decided_at")}
        for c in rows
    }


register_serializer("case", _serialize)
