"""Hazards: how they are opened (by an inspection, an inspector, or the enterprise's own self-inspection) and read."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from backend import audit
from backend.accounts.models import Agency, Enterprise, EnterpriseTopic
from backend.accounts.scope import enterprise_clause, require_enterprise
from backend.audit import Actor
from backend.checklists.models import Checklist, ChecklistItem
from backend.clock import end_of_local_day, now
from backend.db import insert_if_absent
from backend.errors import NotFound, ValidationFailed
from backend.hazards.models import Hazard, HazardEvent
from backend.hazards.schemas import HazardDetail, HazardEventOut, HazardIn, HazardOut
from backend.idempotency import ensure_same, fingerprint
from backend.pagination import Page, keyset, page_of
from backend.sync.service import record_change, register_serializer
from backend.workflow import Workflow

INSPECTOR, ENTERPRISE = frozenset({"inspector"}), frozenset({"enterprise"})

HAZARD_WORKFLOW = Workflow(
    "hazard",
    {
        "reported": {"rectifying": INSPECTOR},  # 责令限期整改
        "rectifying": {"pending_review": ENTERPRISE},  # rectification proof submitted
        "pending_review": {"closed": INSPECTOR | ENTERPRISE, "rectifying": INSPECTOR | ENTERPRISE},  # accept / reject
        "closed": {"verified": INSPECTOR, "rectifying": INSPECTOR},  # look-back held / recurred
    },
)


def is_overdue(hazard: Hazard, at: datetime | None = None) -> bool:
    return hazard.status == "rectifying" and hazard.deadline is not None and hazard.deadline < (at or now())


def hazard_out(hazard: Hazard) -> HazardOut:
    return HazardOut(
        **{k: getattr(hazard, k) for k in HazardOut.model_fields if k not in ("overdue", "evidence_ids")},
        evidence_ids=[uuid.UUID(e) for e in hazard.evidence_ids],
        overdue=is_overdue(hazard),
    )


def hazard_detail(hazard: Hazard) -> HazardDetail:
    return HazardDetail(
        **hazard_out(hazard).model_dump(),
        timeline=[HazardEventOut.model_validate(e, from_attributes=True) for e in hazard.events],
    )


def deadline_instant(value: date | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return end_of_local_day(value)


async def open_hazard(
    session: AsyncSession,
    actor: Actor,
    *,
    hazard_id: uuid.UUID,
    status: str,
    note: str,
    agency_path: str,
    values: dict[str, Any],
) -> Hazard | None:
    """Insert a new hazard with its first timeline row, audit row and feed row, in the caller's transaction.

    None when a hazard with this id already exists (a racing retry): the caller compares and answers as for a retry.
    """
    at = now()
    row = {
        "id": hazard_id,
        "status": status,
        "reported_by": actor.user_id,
        "recurrence_count": 0,
        "version": 1,
        "created_at": at,
        "updated_at": at,
        **values,
    }
    if not await insert_if_absent(session, Hazard, row, ["id"]):
        return None
    session.add(HazardEvent(hazard_id=hazard_id, actor_id=actor.user_id, actor=actor.username, action="created", to_status=status, note=note, at=at))
    audit.record(session, actor, "hazard.create", "hazard", hazard_id, {"status": status, **values})
    record_change(session, "hazard", hazard_id, "create", enterprise_id=values["enterprise_id"], agency_path=agency_path)
    return await session.get(Hazard, hazard_id)


def visible_hazards(actor: Actor) -> Any:
    return (
        select(Hazard)
        .join(Enterprise, Enterprise.id == Hazard.enterprise_id)
        .join(Agency, Agency.id == Enterprise.agency_id)
        .where(enterprise_clause(actor))
    )


async def agency_path_of(session: AsyncSession, enterprise_id: uuid.UUID) -> str:
    query = select(Agency.path).join(Enterprise, Enterprise.agency_id == Agency.id).where(Enterprise.id == enterprise_id)
    return (await session.execute(query)).scalar_one()


class HazardService:
    def __init__(self, session: AsyncSession, actor: Actor) -> None:
        self.session = session
        self.actor = actor

    async def create(self, data: HazardIn) -> tuple[Hazard, bool]:
        """Report a hazard; a retry with the same id and content returns the first one (created=False)."""
        hazard_id = data.id or uuid.uuid4()
        deadline = deadline_instant(data.deadline)
        content = {
            "enterprise_id": data.enterprise_id,
            "level": data.level,
            "description": data.description,
            "item_code": data.item_code,
            "checklist_id": data.checklist_id,
            "evidence_ids": sorted(str(e) for e in data.evidence_ids),
            "deadline": deadline,
        }
        digest = fingerprint(content)
        existing = await self._find(hazard_id)
        if existing is not None:
            ensure_same(existing.client_fingerprint, digest, "hazard", hazard_id)
            return existing, False

        enterprise = await require_enterprise(self.session, self.actor, data.enterprise_id, field="enterprise_id")
        self_inspection = self.actor.role == "enterprise"
        if self_inspection and deadline is None:
            raise ValidationFailed("a self-reported hazard needs the deadline the enterprise sets for its fix", field="deadline")
        if deadline is not None and deadline <= now():
            raise ValidationFailed("the deadline must lie in the future", field="deadline")
        topic = await self._topic(enterprise, data.checklist_id, data.item_code)
        values = {
            **content,
            "topic": topic,
            "source": "self_inspection" if self_inspection else "inspector",
            "client_fingerprint": digest,
        }
        hazard = await open_hazard(
            self.session,
            self.actor,
            hazard_id=hazard_id,
            status="rectifying" if self_inspection else "reported",
            note="企业自查自报" if self_inspection else "执法人员报告",
            agency_path=await agency_path_of(self.session, enterprise.id),
            values=values,
        )
        if hazard is None:  # a concurrent retry won the race: answer as that one did
            await self.session.rollback()
            existing = await self._find(hazard_id)
            assert existing is not None
            ensure_same(existing.client_fingerprint, digest, "hazard", hazard_id)
            return existing, False
        await self.session.commit()
        return hazard, True

    async def _topic(self, enterprise: Enterprise, checklist_id: uuid.UUID | None, item_code: str | None) -> str:
        if checklist_id is None:
            if item_code is not None:
                raise ValidationFailed("item_code needs the checklist_id it belongs to", field="checklist_id")
            topics = (
                await self.session.execute(
                    select(EnterpriseTopic.topic).where(EnterpriseTopic.enterprise_id == enterprise.id).order_by(EnterpriseTopic.topic)
                )
            ).scalars().first()
            return topics or "other"
        checklist = await self.session.get(Checklist, checklist_id)
        if checklist is None:
            raise ValidationFailed(f"checklist {checklist_id} is not published", code="checklist_not_found", field="checklist_id")
        if item_code is not None:
            item = (
                await self.session.execute(
                    select(ChecklistItem.id).where(ChecklistItem.checklist_id == checklist_id, ChecklistItem.code == item_code)
                )
            ).first()
            if item is None:
                raise ValidationFailed(f"checklist {checklist.code}@{checklist.version} has no item {item_code}", field="item_code")
        return checklist.topic

    async def _find(self, hazard_id: uuid.UUID) -> Hazard | None:
        """The hazard if it exists; one outside the caller's scope is a conflict of ids, never a leak of content."""
        hazard = await self.session.get(Hazard, hazard_id)
        if hazard is None:
            return None
        visible = (await self.session.execute(visible_hazards(self.actor).where(Hazard.id == hazard_id))).first()
        if visible is None:
            ensure_same(None, "", "hazard", hazard_id)
        return hazard

    async def get(self, hazard_id: uuid.UUID) -> Hazard:
        query = visible_hazards(self.actor).options(selectinload(Hazard.events)).where(Hazard.id == hazard_id)
        hazard = (await self.session.execute(query)).scalar_one_or_none()
        if hazard is None:
            raise NotFound(f"hazard {hazard_id} not found", code="hazard_not_found")
        return hazard

    async def list(
        self,
        *,
        enterprise_id: uuid.UUID | None,
        status: str | None,
        level: str | None,
        topic: str | None,
        overdue: bool | None,
        cursor: str | None,
        limit: int,
    ) -> Page[HazardOut]:
        query = visible_hazards(self.actor)
        if enterprise_id:
            query = query.where(Hazard.enterprise_id == enterprise_id)
        if status:
            query = query.where(Hazard.status == status)
        if level:
            query = query.where(Hazard.level == level)
        if topic:
            query = query.where(Hazard.topic == topic)
        if overdue is not None:
            late = (Hazard.status == "rectifying") & (Hazard.deadline < now())
            query = query.where(late if overdue else ~late)
        rows = list((await self.session.execute(keyset(query, Hazard.created_at, Hazard.id, cursor, limit))).scalars())
        return page_of(rows, limit, hazard_out)


async def _serialize(session: AsyncSession, ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = (await session.execute(select(Hazard).where(Hazard.id.in_([uuid.UUID(i) for i in ids])))).scalars()
    return {str(h.id): hazard_out(h).model_dump(mode="json") for h in rows}


register_serializer("hazard", _serialize)
