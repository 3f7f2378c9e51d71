"""What a penalty decision amounts to: its targets (处罚到人), the hearing right its measures give (行政处罚法
第六十三条), the fines each target owes with the 加处罚款 (第七十二条), and the case's deadlines. Pure figures from
the procedure's rows, shared by the procedure's steps, the case's detail and the documents."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from backend.clock import local_date
from backend.enforcement.models import (
    DEADLINE_COLUMNS,
    Case,
    CaseApproval,
    CaseDelivery,
    CaseDiscussion,
    CaseHearing,
    CasePayment,
    CaseStatement,
    CaseStatementReply,
    Decision,
)
from backend.enforcement.schemas import DeadlineOut, FineAccount
from backend.settings import Settings
from backend.vocabulary import MeasureType, OverdueStep, TargetKind

ENTERPRISE_TARGET = "enterprise"
SURCHARGE_PERCENT_A_DAY = 3  # 第七十二条(一): 每日按罚款数额的百分之三加处罚款，加处罚款的数额不得超出罚款的数额
# 第六十三条: measures that give the party the right to a hearing whatever the amount. 暂扣许可证件 is counted among
# 其他较重的行政处罚 (五); the proposals are the closure and revocation the party faces.
HEARING_MEASURES = {
    MeasureType.suspend_production: "责令停产停业（行政处罚法第六十三条第一款第四项）",
    MeasureType.close: "责令关闭（第六十三条第一款第四项）",
    MeasureType.propose_closure: "提请关闭（第六十三条第一款第四项）",
    MeasureType.revoke_license: "吊销许可证件（第六十三条第一款第三项）",
    MeasureType.propose_revocation: "提请吊销许可证件（第六十三条第一款第三项）",
    MeasureType.suspend_license: "暂扣许可证件（第六十三条第一款第五项，其他较重的行政处罚）",
}


def target_key(measure: dict[str, Any]) -> str:
    """`enterprise`, or the person's name: how a target is named in documents, deliveries and payments."""
    target = measure.get("target")
    return ENTERPRISE_TARGET if not target or target["kind"] == TargetKind.enterprise else target["name"]


def targets_of(measures: Iterable[dict[str, Any]]) -> list[str]:
    """The targets of a decision, in the order first named: each gets its own 行政处罚决定书."""
    return list(dict.fromkeys(target_key(m) for m in measures))


def target_kind(key: str) -> TargetKind:
    return TargetKind.enterprise if key == ENTERPRISE_TARGET else TargetKind.person


def fines_by_target(measures: Iterable[dict[str, Any]]) -> dict[str, int]:
    fines: dict[str, int] = {}
    for m in measures:
        if m["type"] == MeasureType.fine and m.get("amount"):
            fines[target_key(m)] = fines.get(target_key(m), 0) + m["amount"]
    return fines


def hearing_grounds(measures: list[dict[str, Any]], settings: Settings) -> list[str]:
    """Why the party may request a hearing (行政处罚法 第六十三条), from the measures and the 较大数额 settings."""
    grounds: list[str] = []
    for kind, label in ((MeasureType.fine, "罚款"), (MeasureType.confiscate, "没收违法所得")):
        totals: dict[str, int] = {}
        for m in measures:
            if m["type"] == kind and m.get("amount"):
                totals[target_key(m)] = totals.get(target_key(m), 0) + m["amount"]
        for key, total in totals.items():
            threshold = settings.hearing_fine_unit if key == ENTERPRISE_TARGET else settings.hearing_fine_person
            if total >= threshold:
                whom = "单位" if key == ENTERPRISE_TARGET else f"个人（{key}）"
                grounds.append(f"较大数额{label}：对{whom}{total}元，达到{threshold}元（行政处罚法第六十三条）")
    grounds += list(dict.fromkeys(HEARING_MEASURES[MeasureType(m["type"])] for m in measures if m["type"] in HEARING_MEASURES))
    return grounds


def surcharge(fine: int, due: datetime | None, payments: list[CasePayment], at: datetime) -> int:
    """加处罚款 (第七十二条(一)): 3% of the fine for each day after `due` until the fine itself is paid (payments go
    to the fine first), never above the fine. Whole yuan, rounded down. Days are calendar days in the agencies' zone."""
    if due is None or fine <= 0:
        return 0
    paid, settled_on = 0, None
    for payment in sorted(payments, key=lambda p: p.paid_at):
        paid += payment.amount
        if paid >= fine:
            settled_on = local_date(payment.paid_at)
            break
    days = max(0, ((settled_on or local_date(at)) - local_date(due)).days)
    return min(fine, fine * SURCHARGE_PERCENT_A_DAY * days // 100)


@dataclass
class Procedure:
    """What the procedure's rows say about one case at one moment: the figures `GET /cases/{id}` shows."""

    case: Case
    decision: Decision | None
    statements: list[CaseStatement]
    replies: dict[uuid.UUID, CaseStatementReply]
    hearing: CaseHearing | None
    discussions: list[CaseDiscussion]
    approvals: list[CaseApproval]
    deliveries: list[CaseDelivery]
    payments: list[CasePayment]

    def fine_accounts(self, at: datetime) -> list[FineAccount]:
        fines = fines_by_target(self.decision.measures) if self.decision and self.case.decided_at else {}
        accounts = []
        for key, fine in fines.items():
            due = self.payment_due(key)
            payments = [p for p in self.payments if p.target == key]
            extra = surcharge(fine, due, payments, at)
            paid = sum(p.amount for p in payments)
            accounts.append(
                FineAccount(target=key, fine=fine, payment_due=due, surcharge=extra, paid=paid, outstanding=max(0, fine + extra - paid))
            )
        return accounts

    def payment_due(self, key: str) -> datetime | None:
        """Fifteen days from the first delivery of the target's decision (第六十七条)."""
        dues = [d.payment_due for d in self.deliveries if d.document_type == "penalty_decision" and d.target == key and d.payment_due]
        return min(dues) if dues else None

    def undelivered(self) -> list[str]:
        delivered = {d.target for d in self.deliveries if d.document_type == "penalty_decision"}
        return [key for key in targets_of(self.decision.measures if self.decision else []) if key not in delivered]

    def deadlines(self, at: datetime) -> list[DeadlineOut]:
        """Each deadline with when it was met; overdue while the step is still to be taken and its day has passed."""
        case = self.case
        out = []
        for step, (due_column, met_column, pending) in DEADLINE_COLUMNS.items():
            if step == OverdueStep.payment:
                continue
            due, met = getattr(case, due_column), getattr(case, met_column)
            if due is not None:
                overdue = met is None and case.status in pending and due < at
                out.append(DeadlineOut(step=OverdueStep(step), due_at=due, met_at=met, overdue=overdue))
        paying = case.status in DEADLINE_COLUMNS[OverdueStep.payment][2]
        for account in self.fine_accounts(at):
            if account.payment_due is not None:
                paid = [p.paid_at for p in self.payments if p.target == account.target]
                met = max(paid) if account.outstanding == 0 and paid else None
                overdue = paying and met is None and account.payment_due < at
                out.append(
                    DeadlineOut(step=OverdueStep.payment, due_at=account.payment_due, met_at=met, overdue=overdue, target=account.target)
                )
        return out


async def load_procedure(session: Any, case: Case, decision: Decision | None) -> Procedure:
    async def rows(model: Any, order: Any) -> list[Any]:
        return list((await session.execute(select(model).where(model.case_id == case.id).order_by(order))).scalars())

    statements = await rows(CaseStatement, col(CaseStatement.created_at))
    replies = {r.statement_id: r for r in await rows(CaseStatementReply, col(CaseStatementReply.created_at))}
    hearings = await rows(CaseHearing, col(CaseHearing.created_at))
    return Procedure(
        case=case,
        decision=decision,
        statements=statements,
        replies=replies,
        hearing=hearings[-1] if hearings else None,
        discussions=await rows(CaseDiscussion, col(CaseDiscussion.created_at)),
        approvals=await rows(CaseApproval, col(CaseApproval.created_at)),
        deliveries=await rows(CaseDelivery, col(CaseDelivery.delivered_at)),
        payments=await rows(CasePayment, col(CasePayment.paid_at)),
    )
