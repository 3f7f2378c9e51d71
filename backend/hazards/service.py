"""Hazards: how they are opened (by an inspection, an inspector, or the enterprise's own self-inspection) and read.
The rectification workflow that follows is in rectification.py; the figures in stats.py."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlmodel import col

from backend import scope
from backend.accounts.models import Enterprise, EnterpriseTopic
from backend.audit import Actor
from backend.checklists.models import Checklist, ChecklistItem
from backend.clock import end_of_local_day, now
from backend.db import rel
from backend.errors import ErrorCode, ValidationFailed
from backend.evidence.models import Evidence
from backend.hazards import tally
from backend.hazards.models import Hazard, HazardEvent
from backend.hazards.schemas import HazardDetail, HazardIn, HazardOut
from backend.idempotency import find_retry, fingerprint
from backend.integration.outbox import EventName
from backend.pagination import Page, keyset, page_of
from backend.sync.service import register_serializer
from backend.unit_of_work import concurrent_change, feed_of_enterprise, insert_once, track
from backend.vocabulary import EvidenceStatus, HazardLevel, HazardSource, HazardStatus, Role, Topic
from backend.workflow import Move, TimelineEntryOut, Workflow

INSPECTOR, ENTERPRISE = frozenset({Role.inspector}), frozenset({Role.enterprise})
S = HazardStatus
HAZARD_WORKFLOW = Workflow(
    "hazard",
    HazardEvent,
    "hazard_id",
    {
        S.reported: {
            "ordered": Move(S.rectifying, INSPECTOR),  # 责令限期整改
            "plan_submitted": Move(S.reported, ENTERPRISE),  # 重大事故隐患治理方案
        },
        S.rectifying: {
            "rectification_submitted": Move(S.pending_review, ENTERPRISE),
            "extended": Move(S.rectifying, INSPECTOR),  # a new order: the only way to extend the deadline
            "plan_submitted": Move(S.rectifying, ENTERPRISE),
        },
        # the enterprise reviews only its own self-found general hazards (checked in review())
        S.pending_review: {"accepted": Move(S.closed, INSPECTOR | ENTERPRISE), "rejected": Move(S.rectifying, INSPECTOR | ENTERPRISE)},
        S.closed: {"lookback_held": Move(S.verified, INSPECTOR), "lookback_recurred": Move(S.rectifying, INSPECTOR)},  # 回头看
    },
    events={"accepted": EventName.hazard_closed, "lookback_recurred": EventName.hazard_recurred},
    event_data=lambda hazard: hazard_out(hazard).model_dump(mode="json"),
)

track(Hazard, "hazard", feed=feed_of_enterprise, remembered=tally.COUNTED_BY).figures.append(tally.move)


class HazardFilters(NamedTuple):
    """The filters of GET /hazards (and of its exports)."""

    enterprise_id: uuid.UUID | None = None
    status: HazardStatus | None = None
    level: HazardLevel | None = None
    topic: Topic | None = None
    overdue: bool | None = None


def is_overdue(hazard: Hazard, at: datetime | None = None) -> bool:
    return hazard.status == S.rectifying and hazard.deadline is not None and hazard.deadline < (at or now())


def hazard_out(hazard: Hazard) -> HazardOut:
    return HazardOut(
        **{k: getattr(hazard, k) for k in HazardOut.model_fields if k not in ("overdue", "evidence_ids")},
        evidence_ids=[uuid.UUID(e) for e in hazard.evidence_ids],
        overdue=is_overdue(hazard),
    )


def hazard_detail(hazard: Hazard) -> HazardDetail:
    return HazardDetail(
        **dict(hazard_out(hazard)),
        timeline=[TimelineEntryOut.model_validate(e, from_attributes=True) for e in hazard.events],
    )


def deadline_instant(value: date | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return end_of_local_day(value)


async def first_topic(session: AsyncSession, enterprise_id: uuid.UUID) -> Topic:
    """The topic a hazard found outside any checklist is filed under: the enterprise's first."""
    query = (
        select(col(EnterpriseTopic.topic)).where(col(EnterpriseTopic.enterprise_id) == enterprise_id).order_by(col(EnterpriseTopic.topic))
    )
    return Topic((await session.execute(query.limit(1))).scalar_one())


async def open_hazard(session: AsyncSession, actor: Actor, hazard: Hazard, note: str) -> bool:
    """Insert a new hazard with its first timeline and audit rows, in the caller's unit of work. False when a
    hazard with this id already exists (a racing retry): the caller compares and answers as for a retry."""
    hazard.created_at = hazard.updated_at = now()
    hazard.reported_by = actor.user_id
    reported = {k: getattr(hazard, k) for k in ("enterprise_id", "level", "description", "deadline", "source", "item_code")}
    return await insert_once(session, hazard, *HAZARD_WORKFLOW.creation_rows(hazard, actor, note, reported))


class HazardService:
    def __init__(self, session: AsyncSession, actor: Actor) -> None:
        self.session = session
        self.actor = actor

    async def create(self, data: HazardIn) -> tuple[Hazard, bool]:
        """Report a hazard; a retry with the same id and content returns the first one (created=False)."""
        hazard_id = data.id or uuid.uuid4()
        deadline = deadline_instant(data.deadline)
        content: dict[str, Any] = {
            "enterprise_id": data.enterprise_id,
            "level": data.level,
            "description": data.description,
            "item_code": data.item_code,
            "checklist_id": data.checklist_id,
            "evidence_ids": sorted(str(e) for e in data.evidence_ids),
            "deadline": deadline,
        }
        digest = fingerprint(content)
        existing = await find_retry(self.session, scope.readable(self.actor, Hazard), Hazard, hazard_id, digest)
        if existing is not None:
            return existing, False

        enterprise = await scope.one(self.session, self.actor, Enterprise, data.enterprise_id, field="enterprise_id")
        self_inspection = self.actor.role == Role.enterprise
        if self_inspection and deadline is None:
            raise ValidationFailed("a self-reported hazard needs the deadline the enterprise sets for its fix", field="deadline")
        if deadline is not None and deadline <= now():
            raise ValidationFailed("the deadline must lie in the future", field="deadline")
        topic, item_text = await self._found_under(enterprise, data.checklist_id, data.item_code)
        await scope.many(
            self.session,
            self.actor,
            Evidence,
            data.evidence_ids,
            field="evidence_ids",
            where=[Evidence.enterprise_id == enterprise.id, Evidence.status == EvidenceStatus.stored],
        )
        hazard = Hazard(
            id=hazard_id,
            **{**content, "evidence_ids": [str(e) for e in dict.fromkeys(data.evidence_ids)]},
            topic=topic,
            item_text=item_text,
            client_fingerprint=digest,
            status=S.rectifying if self_inspection else S.reported,
            source=HazardSource.self_inspection if self_inspection else HazardSource.inspector,
        )
        if not await open_hazard(self.session, self.actor, hazard, "企业自查自报" if self_inspection else "执法人员报告"):
            existing = await find_retry(self.session, scope.readable(self.actor, Hazard), Hazard, hazard_id, digest)
            if existing is None:
                raise concurrent_change()
            return existing, False
        return hazard, True

    async def _found_under(self, enterprise: Enterprise, checklist_id: uuid.UUID | None, item_code: str | None) -> tuple[Topic, str | None]:
        """The hazard's topic (the checklist's, or the enterprise's first) and the item's text, if an item is named."""
        if checklist_id is None:
            if item_code is not None:
                raise ValidationFailed("item_code needs the checklist_id it belongs to", field="checklist_id")
            return await first_topic(self.session, enterprise.id), None
        checklist = await scope.one(self.session, self.actor, Checklist, checklist_id, field="checklist_id")
        if item_code is None:
            return Topic(checklist.topic), None
        query = select(col(ChecklistItem.text)).where(col(ChecklistItem.checklist_id) == checklist_id, col(ChecklistItem.code) == item_code)
        text = (await self.session.execute(query)).scalar_one_or_none()
        if text is None:
            raise ValidationFailed(
                f"checklist {checklist.code}@{checklist.version} has no item {item_code}", code=ErrorCode.UNKNOWN_ITEM, field="item_code"
            )
        return Topic(checklist.topic), text

    async def get(self, hazard_id: uuid.UUID) -> Hazard:
        return await scope.one(self.session, self.actor, Hazard, hazard_id, options=[selectinload(rel(Hazard.events))])

    async def list(self, filters: HazardFilters, cursor: str | None, limit: int) -> Page[HazardOut]:
        query = self.filtered(filters)
        rows = list((await self.session.execute(keyset(query, Hazard.created_at, Hazard.id, cursor, limit))).scalars())
        return page_of(rows, limit, hazard_out)

    def filtered(self, filters: HazardFilters) -> Select[Any]:
        """The hazards in the caller's scope that match the list's filters: GET /hazards and the exports read this."""
        enterprise_id, status, level, topic, overdue = filters
        query = scope.readable(self.actor, Hazard)
        if enterprise_id:
            query = query.where(col(Hazard.enterprise_id) == enterprise_id)
        if status:
            query = query.where(col(Hazard.status) == status)
        if level:
            query = query.where(col(Hazard.level) == level)
        if topic:
            query = query.where(col(Hazard.topic) == topic)
        if overdue is not None:
            late = (col(Hazard.status) == S.rectifying) & (col(Hazard.deadline) < now())
            query = query.where(late if overdue else ~late)
        return query

    async def due_lookbacks(self, cursor: str | None, limit: int) -> Page[HazardOut]:
        query = scope.readable(self.actor, Hazard).where(col(Hazard.status) == S.closed, col(Hazard.lookback_due_at) <= now())
        rows = list((await self.session.execute(keyset(query, Hazard.created_at, Hazard.id, cursor, limit))).scalars())
        return page_of(rows, limit, hazard_out)


async def _serialize(session: AsyncSession, ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = (await session.execute(select(Hazard).where(col(Hazard.id).in_([uuid.UUID(i) for i in ids])))).scalars()
    return {str(h.id): hazard_out(h).model_dump(mode="json") for h in rows}


register_serializer("hazard", _serialize)
