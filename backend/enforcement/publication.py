"""行政执法公示: decided cases for the public, with personal names, ID numbers and mobile numbers masked."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.accounts.models import Agency, Enterprise, User
from backend.enforcement.decisions import latest_decisions
from backend.enforcement.discretion import discretion_table
from backend.enforcement.models import Case, CaseHandler, IssuedDocument
from backend.enforcement.schemas import PublicDecision, PublicMeasure
from backend.pagination import Page, check_limit, decode_cursor, encode_cursor

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


def _decided_at(case: Case) -> datetime:
    assert case.decided_at is not None  # only decided cases are published, and deciding stamps the date
    return case.decided_at


# one entry per case, under the number of its first decision: the enterprise's where it has one (处罚到人 gives each
# person a decision of their own; their names are masked like every other)
_first_target = (
    select(func.min(IssuedDocument.target))
    .where(col(IssuedDocument.case_id) == col(Case.id), col(IssuedDocument.type) == "penalty_decision")
    .correlate(Case)
    .scalar_subquery()
)


async def public_decisions(session: AsyncSession, cursor: str | None, limit: int) -> Page[PublicDecision]:
    """行政执法公示: decided cases, newest first, with personal names and ID numbers masked."""
    query = (
        select(Case, Enterprise, Agency, IssuedDocument)
        .join(Enterprise, col(Enterprise.id) == col(Case.enterprise_id))
        .join(Agency, col(Agency.id) == col(Case.agency_id))
        .join(
            IssuedDocument,
            (col(IssuedDocument.case_id) == col(Case.id))
            & (col(IssuedDocument.type) == "penalty_decision")
            & (col(IssuedDocument.target) == _first_target),
        )
        .where(col(Case.decided_at).is_not(None))
    )
    if cursor:
        at, case_id = decode_cursor(cursor)
        query = query.where(tuple_(col(Case.decided_at), col(Case.id)) < tuple_(at, case_id))
    rows = (await session.execute(query.order_by(col(Case.decided_at).desc(), col(Case.id).desc()).limit(check_limit(limit) + 1))).all()
    items = []
    decisions = await latest_decisions(session, [row[0].id for row in rows[:limit]])
    for case, enterprise, agency, document in rows[:limit]:
        decision = decisions[case.id]
        handlers = list(
            (
                await session.execute(
                    select(col(User.display_name))
                    .join(CaseHandler, col(CaseHandler.user_id) == col(User.id))
                    .where(col(CaseHandler.case_id) == case.id)
                )
            ).scalars()
        )
        persons = [m["target"]["name"] for m in decision.measures if m.get("target") and m["target"]["kind"] == "person"]
        names = [*handlers, enterprise.principal or "", enterprise.safety_manager or "", *persons]
        items.append(
            PublicDecision(
                decision_number=document.number,
                enterprise_name=enterprise.name,
                credit_code=enterprise.credit_code,
                agency_name=agency.name,
                decided_at=_decided_at(case),
                measures=[
                    PublicMeasure(
                        type=m["type"],
                        amount=m.get("amount"),
                        law=discretion_table()[m["basis_id"]].law,
                        article=discretion_table()[m["basis_id"]].article,
                    )
                    for m in decision.measures
                ],
                facts=mask_text(decision.facts, names),
                handlers=[mask_name(h) for h in handlers],
            )
        )
    more = len(rows) > limit
    last = rows[limit - 1][0] if more else None
    return Page[PublicDecision](items=items, next_cursor=encode_cursor(_decided_at(last), last.id) if last else None)
