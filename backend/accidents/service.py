"""Accidents and the look-back of their rectification measures (事故整改和防范措施落实情况评估).

安全生产法 第八十六条第三款 (verified, docs: PROCEDURE.md §B4): within one year after the investigation report is
approved, the measures it orders are evaluated and the result is published; those whose failure left a measure
undone are held to account. So the report's approval date fixes `evaluation_due` (+1 year); how many days an
evaluation may take once started is `ACCIDENT_EVALUATION_DAYS` (provincial practice, default 60).

Every step locks the accident, answers a replay of itself as the first time, and moves through ACCIDENT_WORKFLOW.
Progress reports and findings are new rows; a measure found not done opens a hazard on the enterprise (rectifying,
linked to the accident), and from then on the hazard workflow with its own look-back takes over."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend import audit, scope
from backend.accidents.models import Accident, AccidentEvent, AccidentFinding, AccidentMeasure, AccidentProgress, AccidentReport
from backend.accidents.schemas import (
    AccidentDetail,
    AccidentIn,
    AccidentMeasureOut,
    AccidentOut,
    AccountabilityOut,
    CompleteIn,
    EvaluationStartIn,
    FindingIn,
    FindingOut,
    ProgressIn,
    ProgressOut,
    ReportIn,
)
from backend.accounts.models import Enterprise
from backend.audit import Actor
from backend.clock import agency_zone, deadline_after, end_of_local_day, local_date, now
from backend.errors import Conflict, ErrorCode, NotFound, ValidationFailed
from backend.evidence.models import Evidence
from backend.hazards.models import Hazard
from backend.hazards.service import deadline_instant, first_topic, open_hazard
from backend.idempotency import ensure_same, find_retry, fingerprint
from backend.pagination import Page, check_limit, decode_cursor, encode_cursor, keyset, page_of
from backend.settings import Settings
from backend.sync.service import register_serializer
from backend.unit_of_work import concurrent_change, feed_of_enterprise, flush, insert_once, track
from backend.vocabulary import (
    AccidentLevel,
    AccidentStatus,
    EvidenceKind,
    EvidenceStatus,
    FindingOutcome,
    HazardLevel,
    HazardSource,
    HazardStatus,
    Role,
)
from backend.wire import ActionIn
from backend.workflow import ActionRequest, Move, TimelineEntry, TimelineEntryOut, Workflow

S = AccidentStatus
INSPECTOR = frozenset({Role.inspector})
STAFF = frozenset({Role.inspector, Role.admin})
REPORTERS = frozenset({Role.inspector, Role.enterprise})
ACCIDENT_WORKFLOW = Workflow(
    "accident",
    AccidentEvent,
    "accident_id",
    {
        S.recorded: {"report_approved": Move(S.report_approved, STAFF)},  # 事故调查报告已批复
        S.report_approved: {
            "progress_reported": Move(S.report_approved, REPORTERS),
            "evaluation_started": Move(S.evaluating, INSPECTOR),
        },
        S.evaluating: {
            "progress_reported": Move(S.evaluating, REPORTERS),
            "finding_recorded": Move(S.evaluating, INSPECTOR),
            "evaluation_completed": Move(S.evaluated, INSPECTOR),
        },
    },
)
OPEN = (S.report_approved, S.evaluating)  # awaiting (or under) evaluation
DUE_NOTICE = timedelta(days=60)  # GET /evaluations/due lists evaluations due within this, in advance
STATUTE = (
    "《中华人民共和国安全生产法》第八十六条第三款：负责事故调查处理的国务院有关部门和地方人民政府应当在批复事故调查报告后一年内，"
    "组织有关部门对事故整改和防范措施落实情况进行评估，并及时向社会公开评估结果；对不履行职责导致事故整改和防范措施没有落实的"
    "有关单位和人员，应当按照有关规定追究责任。"
)

track(Accident, "accident", feed=feed_of_enterprise)


def one_year_after(day: date) -> date:
    """The same calendar day a year later (29 February: the 28th)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


def approval_instant(value: date | datetime) -> datetime:
    """A date of approval is the start of that day in the agencies' zone."""
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time.min, tzinfo=agency_zone())


def is_evaluation_overdue(accident: Accident, at: datetime | None = None) -> bool:
    return accident.status in OPEN and accident.evaluation_due is not None and accident.evaluation_due < (at or now())


def accident_out(accident: Accident, report_number: str | None = None) -> AccidentOut:
    fields = {k: getattr(accident, k) for k in AccidentOut.model_fields if k not in ("evaluation_overdue", "report_number")}
    return AccidentOut(**fields, evaluation_overdue=is_evaluation_overdue(accident), report_number=report_number)


def latest_findings(findings: Sequence[AccidentFinding]) -> dict[uuid.UUID, AccidentFinding]:
    """The finding that counts for each measure: its latest."""
    latest: dict[uuid.UUID, AccidentFinding] = {}
    for finding in sorted(findings, key=lambda f: (f.created_at, str(f.id))):
        latest[finding.measure_id] = finding
    return latest


def _ids(values: Sequence[Any]) -> list[uuid.UUID]:
    return [uuid.UUID(str(v)) for v in values]


async def rows_of(session: AsyncSession, model: Any, accident_ids: Sequence[uuid.UUID], order: Sequence[Any]) -> list[Any]:
    if not accident_ids:
        return []
    return list((await session.execute(select(model).where(model.accident_id.in_(accident_ids)).order_by(*order))).scalars())


async def accident_details(session: AsyncSession, accidents: Sequence[Accident]) -> list[AccidentDetail]:
    """The accidents with their measures, progress, findings, timeline and report number, loaded in a few queries."""
    ids = [a.id for a in accidents]
    measures = await rows_of(session, AccidentMeasure, ids, [col(AccidentMeasure.seq)])
    progress = await rows_of(session, AccidentProgress, ids, [col(AccidentProgress.created_at), col(AccidentProgress.id)])
    findings = await rows_of(session, AccidentFinding, ids, [col(AccidentFinding.created_at), col(AccidentFinding.id)])
    events = await rows_of(session, AccidentEvent, ids, [col(AccidentEvent.at), col(AccidentEvent.id)])
    reports = select(col(AccidentReport.accident_id), col(AccidentReport.number)).where(col(AccidentReport.accident_id).in_(ids))
    numbers: dict[uuid.UUID, str] = {accident_id: number for accident_id, number in (await session.execute(reports)).all()}
    latest = latest_findings(findings)

    def measure_out(m: AccidentMeasure) -> AccidentMeasureOut:
        last = latest.get(m.id)
        return AccidentMeasureOut(
            id=m.id,
            seq=m.seq,
            text=m.text,
            responsible=m.responsible,
            due_at=m.due_at,
            outcome=FindingOutcome(last.outcome) if last else None,
            hazard_id=last.hazard_id if last else None,
            progress=[progress_out(p) for p in progress if p.measure_id == m.id],
            findings=[finding_out(f) for f in findings if f.measure_id == m.id],
        )

    return [
        AccidentDetail(
            **dict(accident_out(a, numbers.get(a.id))),
            report_evidence_ids=_ids(a.report_evidence_ids),
            measures=[measure_out(m) for m in measures if m.accident_id == a.id],
            conclusion=a.conclusion,
            accountability=[AccountabilityOut(**item) for item in a.accountability],
            timeline=[TimelineEntryOut.model_validate(e, from_attributes=True) for e in events if e.accident_id == a.id],
        )
        for a in accidents
    ]


def progress_out(p: AccidentProgress) -> ProgressOut:
    return ProgressOut(
        id=p.id,
        measure_id=p.measure_id,
        description=p.description,
        evidence_ids=_ids(p.evidence_ids),
        by_enterprise=p.by_enterprise,
        created_at=p.created_at,
    )


def finding_out(f: AccidentFinding) -> FindingOut:
    return FindingOut(
        id=f.id,
        measure_id=f.measure_id,
        outcome=FindingOutcome(f.outcome),
        note=f.note,
        evidence_ids=_ids(f.evidence_ids),
        hazard_id=f.hazard_id,
        created_at=f.created_at,
    )


class AccidentService:
    def __init__(self, session: AsyncSession, actor: Actor, settings: Settings) -> None:
        self.session = session
        self.actor = actor
        self.settings = settings

    def _user_id(self) -> uuid.UUID:
        assert self.actor.user_id is not None  # steps on accidents are taken by people, never by a system actor
        return self.actor.user_id

    # --- reading ----------------------------------------------------------------------------------------------

    async def get(self, accident_id: uuid.UUID) -> Accident:
        return await scope.one(self.session, self.actor, Accident, accident_id)

    async def detail(self, accident_id: uuid.UUID) -> AccidentDetail:
        return (await accident_details(self.session, [await self.get(accident_id)]))[0]

    async def listing(
        self, *, enterprise_id: uuid.UUID | None, level: AccidentLevel | None, status: AccidentStatus | None, cursor: str | None, limit: int
    ) -> Page[AccidentOut]:
        query = scope.readable(self.actor, Accident)
        if enterprise_id:
            query = query.where(col(Accident.enterprise_id) == enterprise_id)
        if level:
            query = query.where(col(Accident.level) == level)
        if status:
            query = query.where(col(Accident.status) == status)
        rows = list((await self.session.execute(keyset(query, Accident.created_at, Accident.id, cursor, limit))).scalars())
        return page_of(rows, limit, accident_out)

    async def due(self, cursor: str | None, limit: int) -> Page[AccidentOut]:
        """Evaluations due within 60 days or overdue, soonest first, in the caller's scope."""
        query = scope.readable(self.actor, Accident).where(
            col(Accident.status).in_(OPEN), col(Accident.evaluation_due) <= now() + DUE_NOTICE
        )
        if cursor:
            at, row_id = decode_cursor(cursor)
            query = query.where(tuple_(col(Accident.evaluation_due), col(Accident.id)) > tuple_(at, row_id))
        query = query.order_by(col(Accident.evaluation_due), col(Accident.id)).limit(check_limit(limit) + 1)
        rows: list[Accident] = list((await self.session.execute(query)).scalars())
        more, rows = len(rows) > limit, rows[:limit]
        last = rows[-1] if more and rows else None
        next_cursor = encode_cursor(last.evaluation_due, last.id) if last and last.evaluation_due else None
        return Page[AccidentOut](items=[accident_out(a) for a in rows], next_cursor=next_cursor)

    async def report_pdf(self, accident_id: uuid.UUID) -> AccidentReport:
        accident = await self.get(accident_id)
        report = await self.session.get(AccidentReport, accident.id)
        if report is None:
            raise Conflict("the 评估报告 is issued when the evaluation is completed", code=ErrorCode.DOCUMENT_UNAVAILABLE)
        return report

    # --- recording --------------------------------------------------------------------------------------------

    async def create(self, data: AccidentIn) -> tuple[Accident, bool]:
        """Record an accident; a retry with the same id and content returns the first one (created=False)."""
        accident_id = data.id or uuid.uuid4()
        content = data.model_dump(mode="json", exclude={"id"})
        digest = fingerprint(content)
        existing = await find_retry(self.session, scope.readable(self.actor, Accident), Accident, accident_id, digest)
        if existing is not None:
            return existing, False
        enterprise = await scope.one(self.session, self.actor, Enterprise, data.enterprise_id, field="enterprise_id")
        at = now()
        accident = Accident(
            id=accident_id,
            **data.model_dump(exclude={"id"}),
            agency_id=self.actor.agency_id if self.actor.role == Role.inspector and self.actor.agency_id else enterprise.agency_id,
            status=S.recorded,
            client_fingerprint=digest,
            recorded_by=self.actor.user_id,
            created_at=at,
            updated_at=at,
        )
        if not await insert_once(self.session, accident, *ACCIDENT_WORKFLOW.creation_rows(accident, self.actor, "事故登记", content)):
            existing = await find_retry(self.session, scope.readable(self.actor, Accident), Accident, accident_id, digest)
            if existing is None:
                raise concurrent_change()
            return existing, False
        return accident, True

    async def _step(self, accident_id: uuid.UUID, operation: str, body: ActionIn) -> tuple[Accident, ActionRequest, TimelineEntry | None]:
        """The accident, locked, and the step an earlier send of this same request already took, if any."""
        accident = await scope.one(self.session, self.actor, Accident, accident_id, lock=True)
        request = ActionRequest.of(operation, body)
        return accident, request, await ACCIDENT_WORKFLOW.replayed(self.session, accident, self.actor, request)

    async def _move(
        self, accident: Accident, action: str, note: str | None, data: dict[str, Any], request: ActionRequest | None = None
    ) -> None:
        accident.updated_at = now()  # a step that keeps the status still changes the accident phones sync
        ACCIDENT_WORKFLOW.transition(self.session, accident, action, self.actor, note=note, data=data, request=request)
        await flush(self.session)

    async def _evidence(self, accident: Accident, ids: list[uuid.UUID], *, kinds: Sequence[str] | None = None) -> list[Evidence]:
        """The given evidence, stored and of the accident's enterprise, in the order given; 422 for any other id."""
        where: list[Any] = [Evidence.enterprise_id == accident.enterprise_id, Evidence.status == EvidenceStatus.stored]
        if kinds is not None:
            where.append(col(Evidence.kind).in_(kinds))
        return await scope.many(self.session, self.actor, Evidence, ids, field="evidence_ids", where=where)

    async def report(self, accident_id: uuid.UUID, data: ReportIn) -> tuple[Accident, bool]:
        """The approved investigation report with its measures: the evaluation falls due a year after approval."""
        accident, request, earlier = await self._step(accident_id, "report", data)
        if earlier is not None:
            return accident, False
        ACCIDENT_WORKFLOW.check(accident.status, "report_approved", self.actor.role)
        approved_at = approval_instant(data.approved_at)
        if approved_at > now():
            raise ValidationFailed("the report cannot be approved in the future", field="approved_at")
        if approved_at < accident.occurred_at - timedelta(days=1):
            raise ValidationFailed("the report is approved after the accident it investigates", field="approved_at")
        if not data.measures:
            raise ValidationFailed("the report orders at least one measure", field="measures")
        for n, measure in enumerate(data.measures):
            if not measure.text:
                raise ValidationFailed("a measure needs its text", field=f"measures[{n}].text")
        await self._fresh_measure_ids(data)
        evidence = await self._evidence(accident, data.evidence_ids)
        accident.approved_at, accident.approved_by, accident.document_no = approved_at, data.approved_by, data.document_no
        accident.report_evidence_ids = [str(e.id) for e in evidence]
        accident.evaluation_due = end_of_local_day(one_year_after(local_date(approved_at)))
        accident.evaluation_window_days = self.settings.accident_evaluation_days
        for n, m in enumerate(data.measures, start=1):
            self.session.add(
                AccidentMeasure(
                    id=m.id or uuid.uuid4(),
                    accident_id=accident.id,
                    seq=n,
                    text=m.text,
                    responsible=m.responsible,
                    due_at=deadline_instant(m.due_at),
                )
            )
        recorded = {
            "approved_at": approved_at,
            "approved_by": data.approved_by,
            "document_no": data.document_no,
            "measures": [m.model_dump(mode="json") for m in data.measures],
            "evaluation_due": accident.evaluation_due,
            "evaluation_window_days": accident.evaluation_window_days,
        }
        await self._move(accident, "report_approved", f"事故调查报告已批复（{data.document_no}）", recorded, request)
        return accident, True

    async def _fresh_measure_ids(self, data: ReportIn) -> None:
        given = [m.id for m in data.measures if m.id is not None]
        if len(set(given)) != len(given):
            n = next(i for i, m in enumerate(data.measures) if m.id is not None and given.count(m.id) > 1)
            raise ValidationFailed("two measures share one id", field=f"measures[{n}].id")
        if not given:
            return
        taken = set((await self.session.execute(select(col(AccidentMeasure.id)).where(col(AccidentMeasure.id).in_(given)))).scalars())
        if taken:
            n = next(i for i, m in enumerate(data.measures) if m.id in taken)
            raise Conflict(f"measure id {data.measures[n].id} is taken", code=ErrorCode.DUPLICATE_CONFLICT, field=f"measures[{n}].id")

    async def _measure(self, accident: Accident, measure_id: uuid.UUID, *, field: str | None = None) -> AccidentMeasure:
        measure = await self.session.get(AccidentMeasure, measure_id)
        if measure is None or measure.accident_id != accident.id:
            if field:
                raise ValidationFailed(f"the accident has no measure {measure_id}", code=ErrorCode.MEASURE_NOT_FOUND, field=field)
            raise NotFound(f"measure {measure_id} not found", code=ErrorCode.MEASURE_NOT_FOUND)
        return measure

    async def _earlier(self, model: Any, row_id: uuid.UUID, accident: Accident, digest: str) -> Any | None:
        """The row an earlier send of this create (same client id) made on this accident; the id taken by other
        content or on another accident is `409 duplicate_conflict`."""
        existing = await self.session.get(model, row_id)
        if existing is not None:
            ensure_same(existing.client_fingerprint if existing.accident_id == accident.id else None, digest, model.__tablename__, row_id)
        return existing

    async def progress(self, accident_id: uuid.UUID, measure_id: uuid.UUID, data: ProgressIn) -> tuple[AccidentProgress, bool]:
        """The enterprise's report of what it did on a measure, with at least one photo or document."""
        accident = await scope.one(self.session, self.actor, Accident, accident_id, lock=True)
        measure = await self._measure(accident, measure_id)
        progress_id = data.id or uuid.uuid4()
        digest = fingerprint(
            {"measure_id": measure.id, "description": data.description, "evidence_ids": sorted(map(str, data.evidence_ids))}
        )
        existing = await self._earlier(AccidentProgress, progress_id, accident, digest)
        if existing is not None:
            return existing, False
        ACCIDENT_WORKFLOW.check(accident.status, "progress_reported", self.actor.role)
        evidence = await self._evidence(accident, data.evidence_ids, kinds=(EvidenceKind.photo, EvidenceKind.document))
        row = AccidentProgress(
            id=progress_id,
            accident_id=accident.id,
            measure_id=measure.id,
            description=data.description,
            evidence_ids=[str(e.id) for e in evidence],
            by_enterprise=self.actor.role == Role.enterprise,
            submitted_by=self._user_id(),
            client_fingerprint=digest,
        )
        self.session.add(row)
        await self._move(
            accident,
            "progress_reported",
            data.description,
            {"progress_id": progress_id, "measure_id": measure.id, "evidence_ids": row.evidence_ids},
        )
        return row, True

    async def start(self, accident_id: uuid.UUID, data: EvaluationStartIn) -> Accident:
        accident, request, earlier = await self._step(accident_id, "evaluation", data)
        if earlier is not None:
            return accident
        ACCIDENT_WORKFLOW.check(accident.status, "evaluation_started", self.actor.role)
        assert accident.approved_at is not None and accident.evaluation_window_days is not None  # set with the report
        if data.started_at < accident.approved_at:
            raise ValidationFailed("the evaluation starts after the report's approval", field="started_at")
        accident.evaluation_started_at = data.started_at
        accident.evaluation_finish_by = deadline_after(data.started_at, accident.evaluation_window_days)
        started = {"started_at": data.started_at, "finish_by": accident.evaluation_finish_by}
        await self._move(accident, "evaluation_started", "启动整改和防范措施落实情况评估", started, request)
        return accident

    async def finding(self, accident_id: uuid.UUID, data: FindingIn) -> tuple[AccidentFinding, bool]:
        """What the evaluation found of one measure; not done opens (or keeps) a linked hazard on the enterprise."""
        accident = await scope.one(self.session, self.actor, Accident, accident_id, lock=True)
        finding_id = data.id or uuid.uuid4()
        digest = fingerprint(
            {k: v for k, v in data.model_dump(mode="json").items() if k != "id"} | {"evidence_ids": sorted(map(str, data.evidence_ids))}
        )
        existing = await self._earlier(AccidentFinding, finding_id, accident, digest)
        if existing is not None:
            return existing, False
        ACCIDENT_WORKFLOW.check(accident.status, "finding_recorded", self.actor.role)
        measure = await self._measure(accident, data.measure_id, field="measure_id")
        evidence = await self._evidence(accident, data.evidence_ids)
        hazard_id = None
        if data.outcome == FindingOutcome.not_done:
            hazard_id = await self._hazard_for(accident, measure, finding_id, data, evidence)
        finding = AccidentFinding(
            id=finding_id,
            accident_id=accident.id,
            measure_id=measure.id,
            outcome=data.outcome,
            note=data.note,
            evidence_ids=[str(e.id) for e in evidence],
            hazard_id=hazard_id,
            evaluated_by=self._user_id(),
            client_fingerprint=digest,
        )
        self.session.add(finding)
        found = {"finding_id": finding_id, "measure_id": measure.id, "seq": measure.seq, "outcome": data.outcome, "hazard_id": hazard_id}
        await self._move(accident, "finding_recorded", data.note, found)
        return finding, True

    async def _hazard_for(
        self, accident: Accident, measure: AccidentMeasure, finding_id: uuid.UUID, data: FindingIn, evidence: list[Evidence]
    ) -> uuid.UUID:
        """The hazard a measure found not done is followed up as: the one an earlier finding of it opened while that
        is still open, else a new one, rectifying, with the inspector's deadline."""
        query = (
            select(Hazard)
            .join(AccidentFinding, col(AccidentFinding.hazard_id) == col(Hazard.id))
            .where(col(AccidentFinding.measure_id) == measure.id, col(Hazard.status) != HazardStatus.verified)
            .order_by(col(AccidentFinding.created_at).desc())
        )
        still_open = (await self.session.execute(query.limit(1))).scalars().first()
        if still_open is not None and still_open.status != HazardStatus.closed:
            return still_open.id
        at = now()
        hazard = Hazard(
            id=uuid.uuid5(finding_id, "hazard"),
            enterprise_id=accident.enterprise_id,
            topic=await first_topic(self.session, accident.enterprise_id),
            level=HazardLevel.general,
            description=f"事故整改和防范措施未落实：{measure.text}",
            note=data.note,
            status=HazardStatus.rectifying,
            source=HazardSource.accident_evaluation,
            evidence_ids=[str(e.id) for e in evidence if e.kind == EvidenceKind.photo],
            deadline=deadline_after(at, data.rectify_days),
            client_fingerprint=fingerprint({"finding_id": finding_id}),
            accident_id=accident.id,
        )
        note = f"事故整改评估发现第{measure.seq}项措施未落实（{accident.document_no}），责令限期整改"
        if not await open_hazard(self.session, self.actor, hazard, note):
            raise concurrent_change()
        return hazard.id

    async def complete(self, accident_id: uuid.UUID, data: CompleteIn) -> Accident:
        """Conclude the evaluation once every measure has a finding, and issue the numbered 评估报告."""
        accident, request, earlier = await self._step(accident_id, "complete", data)
        if earlier is not None:
            return accident
        ACCIDENT_WORKFLOW.check(accident.status, "evaluation_completed", self.actor.role)
        measures = await rows_of(self.session, AccidentMeasure, [accident.id], [col(AccidentMeasure.seq)])
        findings = latest_findings(await rows_of(self.session, AccidentFinding, [accident.id], [col(AccidentFinding.created_at)]))
        unevaluated = [str(m.id) for m in measures if m.id not in findings]
        if unevaluated:
            raise Conflict(
                f"every measure needs a finding before the evaluation is completed; {len(unevaluated)} have none",
                code=ErrorCode.MEASURE_UNEVALUATED,
                measure_ids=unevaluated,
            )
        accident.conclusion = data.conclusion
        accident.accountability = [a.model_dump() for a in data.accountability]
        accident.evaluated_at = now()
        outcomes = {str(m.id): findings[m.id].outcome for m in measures}
        concluded = {"conclusion": data.conclusion, "accountability": accident.accountability, "outcomes": outcomes}
        await self._move(accident, "evaluation_completed", data.conclusion, concluded, request)
        await self._issue_report(accident, measures, findings)
        return accident

    async def _issue_report(self, accident: Accident, measures: list[AccidentMeasure], findings: dict[uuid.UUID, AccidentFinding]) -> None:
        from backend.accidents.report import evaluation_report

        report = await evaluation_report(self.session, accident, measures, findings)
        self.session.add(
            AccidentReport(
                accident_id=accident.id,
                number=report.number,
                sha256=report.sha256,
                size=len(report.pdf),
                pdf=report.pdf,
                issued_by=self._user_id(),
            )
        )
        audit.record(
            self.session, self.actor, "accident.report_issued", "accident", accident.id, {"number": report.number, "sha256": report.sha256}
        )
        await flush(self.session)


async def _serialize(session: AsyncSession, ids: list[str]) -> dict[str, dict[str, Any]]:
    query = select(Accident).where(col(Accident.id).in_([uuid.UUID(i) for i in ids]))
    accidents = list((await session.execute(query)).scalars())
    return {str(d.id): d.model_dump(mode="json") for d in await accident_details(session, accidents)}


register_serializer("accident", _serialize)
