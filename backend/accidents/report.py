"""The 评估报告 (事故整改和防范措施落实情况评估报告) as a numbered PDF, and its publication (及时向社会公开评估结果)
with personal ID numbers, mobile numbers and the enterprise's people's names masked.

The PDF is numbered per agency, year and type and rendered off the event loop by the document register
(`backend.enforcement.register`), like every other document; it is kept with its accident (`AccidentReport`)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.accidents.models import Accident, AccidentFinding, AccidentMeasure, AccidentReport
from backend.accidents.schemas import AccountabilityOut, PublicEvaluation, PublicMeasureOut
from backend.accidents.service import STATUTE, latest_findings, rows_of
from backend.accounts.models import Agency, Enterprise
from backend.enforcement.documents import chinese_date
from backend.enforcement.publication import mask_text
from backend.enforcement.register import numbered_content, render_off_loop
from backend.pagination import Page, check_limit, decode_cursor, encode_cursor
from backend.vocabulary import AccidentLevel, AccidentStatus, FindingOutcome

REPORT_TYPE = "evaluation_report"
LEVELS = {
    AccidentLevel.general: "一般事故",
    AccidentLevel.larger: "较大事故",
    AccidentLevel.major: "重大事故",
    AccidentLevel.especially_major: "特别重大事故",
}
OUTCOMES = {FindingOutcome.done: "已落实", FindingOutcome.partly: "部分落实", FindingOutcome.not_done: "未落实"}


@dataclass(frozen=True)
class IssuedReport:
    number: str
    pdf: bytes
    sha256: str


async def evaluation_report(
    session: AsyncSession, accident: Accident, measures: Sequence[AccidentMeasure], findings: dict[uuid.UUID, AccidentFinding]
) -> IssuedReport:
    """Number the report in the caller's transaction and render it in a worker thread."""
    assert accident.approved_at is not None and accident.evaluation_started_at is not None
    content = await numbered_content(session, REPORT_TYPE, accident.agency_id, accident.enterprise_id)
    lines = []
    for m in measures:
        finding = findings[m.id]
        due = f"；完成期限：{chinese_date(m.due_at)}" if m.due_at else ""
        followed = "；已作为事故隐患责令限期整改" if finding.hazard_id else ""
        outcome = OUTCOMES[FindingOutcome(finding.outcome)]
        lines.append(f"{m.seq}. {m.text}（责任单位或责任人：{m.responsible}{due}）评估：{outcome}。{finding.note}{followed}")
    accountability = [f"{n}. {a['unit_or_person']}：{a['reason']}" for n, a in enumerate(accident.accountability, start=1)]
    content.header = [
        ("事故单位", content.enterprise_name),
        ("统一社会信用代码", content.credit_code),
        ("地址", content.address),
        ("事故发生时间", chinese_date(accident.occurred_at)),
        ("事故等级", LEVELS[AccidentLevel(accident.level)]),
        ("伤亡和损失", f"死亡{accident.deaths}人，受伤{accident.injuries}人，直接经济损失{accident.direct_loss}元"),
        ("事故调查报告批复", f"{accident.approved_by}（{accident.document_no}），{chinese_date(accident.approved_at)}"),
        ("评估时间", f"{chinese_date(accident.evaluation_started_at)}至{chinese_date(content.issued_at)}"),
    ]
    content.sections = [
        ("事故概况：", [accident.summary]),
        ("整改和防范措施落实情况：", lines),
        ("评估结论：", [accident.conclusion or ""]),
        ("责任追究：", accountability or ["无。"]),
        ("评估依据：", [STATUTE]),
    ]
    pdf = await render_off_loop(content)
    return IssuedReport(number=content.number, pdf=pdf, sha256=hashlib.sha256(pdf).hexdigest())


async def public_evaluations(session: AsyncSession, cursor: str | None, limit: int) -> Page[PublicEvaluation]:
    """The published evaluations, newest first; no personal ID number, mobile number or the enterprise's people's names."""
    query = (
        select(Accident, Enterprise, Agency, col(AccidentReport.number))
        .join(Enterprise, col(Enterprise.id) == col(Accident.enterprise_id))
        .join(Agency, col(Agency.id) == col(Accident.agency_id))
        .join(AccidentReport, col(AccidentReport.accident_id) == col(Accident.id))
        .where(col(Accident.status) == AccidentStatus.evaluated)
    )
    if cursor:
        at, accident_id = decode_cursor(cursor)
        query = query.where(tuple_(col(Accident.evaluated_at), col(Accident.id)) < tuple_(at, accident_id))
    query = query.order_by(col(Accident.evaluated_at).desc(), col(Accident.id).desc()).limit(check_limit(limit) + 1)
    rows = (await session.execute(query)).all()
    shown = rows[:limit]
    ids = [row[0].id for row in shown]
    measures = await rows_of(session, AccidentMeasure, ids, [col(AccidentMeasure.seq)])
    findings = latest_findings(await rows_of(session, AccidentFinding, ids, [col(AccidentFinding.created_at)]))
    items = []
    for accident, enterprise, agency, number in shown:
        names = [enterprise.principal or "", enterprise.safety_manager or ""]

        def masked(text: str, names: list[str] = names) -> str:
            return mask_text(text, names)

        assert accident.approved_at is not None and accident.evaluated_at is not None
        items.append(
            PublicEvaluation(
                report_number=number,
                enterprise_name=enterprise.name,
                credit_code=enterprise.credit_code,
                agency_name=agency.name,
                level=AccidentLevel(accident.level),
                occurred_at=accident.occurred_at,
                deaths=accident.deaths,
                injuries=accident.injuries,
                direct_loss=accident.direct_loss,
                approved_by=accident.approved_by or "",
                document_no=accident.document_no or "",
                approved_at=accident.approved_at,
                evaluated_at=accident.evaluated_at,
                summary=masked(accident.summary),
                measures=[
                    PublicMeasureOut(
                        seq=m.seq, text=masked(m.text), responsible=masked(m.responsible), outcome=FindingOutcome(findings[m.id].outcome)
                    )
                    for m in measures
                    if m.accident_id == accident.id
                ],
                conclusion=masked(accident.conclusion or ""),
                accountability=[
                    AccountabilityOut(unit_or_person=masked(a["unit_or_person"]), reason=masked(a["reason"]))
                    for a in accident.accountability
                ],
            )
        )
    last = shown[-1][0] if len(rows) > limit and shown else None
    next_cursor = encode_cursor(last.evaluated_at, last.id) if last is not None and last.evaluated_at else None
    return Page[PublicEvaluation](items=items, next_cursor=next_cursor)
