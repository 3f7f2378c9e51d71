"""Hazards: how they are opened (by an inspection, an inspector, or the enterprise's own self-inspection) and read."""

from __future__ import annotations

import hashlib
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import StaleDataError

from backend import audit
from backend.accounts.models import Agency, Enterprise, EnterpriseTopic
from backend.accounts.scope import agency_path_of, enterprise_clause, in_enterprise_scope, require_enterprise
from backend.audit import Actor
from backend.checklists.models import Checklist, ChecklistItem
from backend.clock import end_of_local_day, now
from backend.db import insert_if_absent
from backend.errors import Conflict, Forbidden, NotFound, ValidationFailed
from backend.evidence.models import Evidence
from backend.hazards import tally
from backend.hazards.models import Hazard, HazardEvent, HazardTally
from backend.hazards.schemas import (
    GovernancePlanIn,
    HazardDetail,
    HazardIn,
    HazardOut,
    LookbackIn,
    OrderIn,
    RectificationIn,
    ReviewIn,
    StatsRow,
)
from backend.idempotency import find_retry, fingerprint
from backend.pagination import Page, keyset, page_of
from backend.settings import Settings, get_settings
from backend.sync.service import record_change, register_serializer
from backend.workflow import Move, TimelineEntryOut, Workflow, timeline_entry

INSPECTOR, ENTERPRISE = frozenset({"inspector"}), frozenset({"enterprise"})

HAZARD_WORKFLOW = Workflow(
    "hazard",
    {
        "reported": {"ordered": Move("rectifying", INSPECTOR)},  # 责令限期整改
        "rectifying": {
            "rectification_submitted": Move("pending_review", ENTERPRISE),
            "extended": Move("rectifying", INSPECTOR),  # a new order: the only way to extend the deadline
        },
        # the enterprise reviews only its own self-found general hazards (checked in review())
        "pending_review": {"accepted": Move("closed", INSPECTOR | ENTERPRISE), "rejected": Move("rectifying", INSPECTOR | ENTERPRISE)},
        "closed": {"lookback_held": Move("verified", INSPECTOR), "lookback_recurred": Move("rectifying", INSPECTOR)},  # 回头看
    },
)
PLAN_STATUSES = ("reported", "rectifying")
HAZARD_STATUSES = ("reported", "rectifying", "pending_review", "closed", "verified")


def lookback_sampled(hazard_id: uuid.UUID, rate: float) -> bool:
    """Whether a closed general hazard gets a look-back: a fixed function of its id, so an audit can re-derive the
    sample from the ids and the rate alone."""
    draw = int.from_bytes(hashlib.sha256(f"lookback:{hazard_id}".encode()).digest()[:8], "big") / 2**64
    return draw < rate


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
        timeline=[TimelineEntryOut.model_validate(e, from_attributes=True) for e in hazard.events],
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
    session.add(timeline_entry(HazardEvent, actor, {"hazard_id": hazard_id}, "created", None, status, note, at=at))
    audit.record(session, actor, "hazard.create", "hazard", hazard_id, {"status": status, **values})
    record_change(session, "hazard", hazard_id, "create", enterprise_id=values["enterprise_id"], agency_path=agency_path)
    hazard = await session.get(Hazard, hazard_id)
    assert hazard is not None
    await tally.move(session, None, hazard)
    return hazard


def visible_hazards(actor: Actor) -> Any:
    return in_enterprise_scope(Hazard, actor)




class HazardService:
    def __init__(self, session: AsyncSession, actor: Actor, settings: Settings | None = None) -> None:
        self.session = session
        self.actor = actor
        self.settings = settings or get_settings()
        self._counted_as: dict[uuid.UUID, tally.TallyKey] = {}  # where each locked hazard stands in the tally

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
        existing = await find_retry(self.session, visible_hazards(self.actor), Hazard, hazard_id, digest)
        if existing is not None:
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
            existing = await find_retry(self.session, visible_hazards(self.actor), Hazard, hazard_id, digest)
            assert existing is not None
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

    async def get(self, hazard_id: uuid.UUID) -> Hazard:
        query = visible_hazards(self.actor).options(selectinload(Hazard.events)).where(Hazard.id == hazard_id)
        hazard = (await self.session.execute(query)).scalar_one_or_none()
        if hazard is None:
            raise NotFound(f"hazard {hazard_id} not found", code="hazard_not_found")
        return hazard

    # --- the rectification workflow -------------------------------------------------------------------------

    async def _locked(self, hazard_id: uuid.UUID) -> Hazard:
        """The hazard, row-locked (PostgreSQL) and with its version noted, so a concurrent move cannot also win."""
        query = visible_hazards(self.actor).where(Hazard.id == hazard_id).with_for_update(of=Hazard)
        hazard = (await self.session.execute(query.execution_options(populate_existing=True))).scalar_one_or_none()
        if hazard is None:
            raise NotFound(f"hazard {hazard_id} not found", code="hazard_not_found")
        self._counted_as[hazard.id] = tally.TallyKey.of(hazard)
        return hazard

    def _event(self, hazard: Hazard, note: str | None, data: dict[str, Any]) -> Any:
        def make(action: str, from_status: str | None, to_status: str) -> HazardEvent:
            return timeline_entry(HazardEvent, self.actor, {"hazard_id": hazard.id}, action, from_status, to_status, note, data)

        return make

    async def _move(self, hazard: Hazard, action: str, note: str | None, data: dict[str, Any]) -> Hazard:
        HAZARD_WORKFLOW.transition(self.session, hazard, action, self.actor, note, self._event(hazard, note, data), data)
        return await self._save(hazard)

    async def _save(self, hazard: Hazard) -> Hazard:
        hazard.updated_at = now()
        await tally.move(self.session, self._counted_as.pop(hazard.id, None), hazard)
        record_change(
            self.session, "hazard", hazard.id, "update",
            enterprise_id=hazard.enterprise_id, agency_path=await agency_path_of(self.session, hazard.enterprise_id),
        )
        try:
            await self.session.commit()
        except StaleDataError as exc:  # another request moved this hazard first
            await self.session.rollback()
            raise Conflict("the hazard was changed by someone else at the same moment; reload it", code="invalid_transition") from exc
        return await self.get(hazard.id)

    async def order(self, hazard_id: uuid.UUID, data: OrderIn) -> Hazard:
        hazard = await self._locked(hazard_id)
        action = "extended" if hazard.status == "rectifying" else "ordered"
        HAZARD_WORKFLOW.check(hazard.status, action, self.actor.role)
        deadline = deadline_instant(data.deadline)
        if deadline <= now():  # type: ignore[operator]
            raise ValidationFailed("the deadline must lie in the future", field="deadline")
        if action == "extended" and hazard.deadline is not None and deadline <= hazard.deadline:  # type: ignore[operator]
            raise ValidationFailed("a new order extends the deadline; it cannot shorten it", field="deadline")
        hazard.deadline = deadline
        return await self._move(hazard, action, data.measures, {"deadline": deadline, "measures": data.measures})

    async def add_plan(self, hazard_id: uuid.UUID, data: GovernancePlanIn) -> HazardEvent:
        hazard = await self._locked(hazard_id)
        if self.actor.role != "enterprise":
            raise Forbidden("the enterprise draws up its governance plan", code="role_forbidden")
        if hazard.level != "major":
            raise Conflict("a governance plan (治理方案) is for major hazards", code="not_major")
        if hazard.status not in PLAN_STATUSES:
            raise Conflict(f"a plan cannot be added to a hazard in status {hazard.status}", code="invalid_transition")
        deadline = deadline_instant(data.deadline)
        content = {**data.model_dump(), "deadline": deadline}
        event = self._event(hazard, data.objective, content)("plan_submitted", hazard.status, hazard.status)
        self.session.add(event)
        audit.record(self.session, self.actor, "hazard.plan", "hazard", hazard.id, content)
        await self._save(hazard)
        return event

    async def submit_rectification(self, hazard_id: uuid.UUID, data: RectificationIn) -> Hazard:
        hazard = await self._locked(hazard_id)
        HAZARD_WORKFLOW.check(hazard.status, "rectification_submitted", self.actor.role)
        if hazard.level == "major" and not await self._has_plan(hazard.id):
            raise Conflict("a major hazard needs its governance plan (治理方案) before review", code="plan_required")
        photos = await self._photos_of(hazard, [str(e) for e in data.evidence_ids])
        if not photos:
            raise ValidationFailed("the proof needs at least one photo of the fix", code="evidence_required", field="evidence_ids")
        if len(photos) < len(hazard.evidence_ids):
            raise ValidationFailed(
                f"the finding had {len(hazard.evidence_ids)} photos: send an after-photo for each", code="evidence_required", field="evidence_ids"
            )
        pairs = [{"before": b, "after": a} for b, a in zip(hazard.evidence_ids, photos, strict=False)]
        proof = {"description": data.description, "evidence_ids": photos, "pairs": pairs}
        return await self._move(hazard, "rectification_submitted", data.description, proof)

    async def review(self, hazard_id: uuid.UUID, data: ReviewIn) -> Hazard:
        hazard = await self._locked(hazard_id)
        action = "accepted" if data.decision == "accept" else "rejected"
        HAZARD_WORKFLOW.check(hazard.status, action, self.actor.role)
        if self.actor.role == "enterprise" and (hazard.source != "self_inspection" or hazard.level != "general"):
            raise Forbidden(
                "an enterprise accepts only its own self-found general hazards; this one needs the agency", code="agency_review_required"
            )
        review = {"decision": data.decision, "opinion": data.opinion}
        if action == "accepted":
            at = now()
            hazard.closed_at = at
            rate = self.settings.lookback_sample_rate
            chosen = hazard.level == "major" or lookback_sampled(hazard.id, rate)
            hazard.lookback_due_at = at + timedelta(days=self.settings.lookback_delay_days) if chosen else None
            review |= {"lookback": chosen, "lookback_rate": rate, "lookback_due_at": hazard.lookback_due_at}
        return await self._move(hazard, action, data.opinion, review)

    async def lookback(self, hazard_id: uuid.UUID, data: LookbackIn) -> Hazard:
        hazard = await self._locked(hazard_id)
        action = f"lookback_{data.outcome}"
        HAZARD_WORKFLOW.check(hazard.status, action, self.actor.role)
        if hazard.lookback_due_at is None:
            raise Conflict("this hazard was not chosen for a look-back", code="lookback_not_selected")
        if hazard.lookback_due_at > now():
            raise Conflict(f"the look-back is due from {hazard.lookback_due_at.isoformat()}", code="lookback_not_due")
        evidence = [str(e) for e in data.evidence_ids]
        found = {"outcome": data.outcome, "evidence_ids": evidence}
        if data.outcome == "recurred":
            first_period = (hazard.deadline or hazard.created_at) - hazard.created_at
            hazard.deadline = deadline_instant(data.deadline) or now() + max(first_period, timedelta(days=1))
            hazard.recurrence_count += 1
            hazard.lookback_due_at = None
            hazard.closed_at = None
            found |= {"deadline": hazard.deadline, "recurrence_count": hazard.recurrence_count}
        return await self._move(hazard, action, data.note, found)

    async def due_lookbacks(self, cursor: str | None, limit: int) -> Page[HazardOut]:
        query = visible_hazards(self.actor).where(Hazard.status == "closed", Hazard.lookback_due_at <= now())
        rows = list((await self.session.execute(keyset(query, Hazard.created_at, Hazard.id, cursor, limit))).scalars())
        return page_of(rows, limit, hazard_out)

    async def _has_plan(self, hazard_id: uuid.UUID) -> bool:
        query = select(HazardEvent.id).where(HazardEvent.hazard_id == hazard_id, HazardEvent.action == "plan_submitted")
        return (await self.session.execute(query.limit(1))).first() is not None

    async def _photos_of(self, hazard: Hazard, evidence_ids: list[str]) -> list[str]:
        """The given ids that are stored photos of this hazard's enterprise, in the order given."""
        query = select(Evidence.id).where(
            Evidence.id.in_([uuid.UUID(e) for e in evidence_ids]),
            Evidence.enterprise_id == hazard.enterprise_id,
            Evidence.kind == "photo",
            Evidence.status == "stored",
        )
        stored = {str(e) for e in (await self.session.execute(query)).scalars()}
        unknown = [e for e in evidence_ids if e not in stored]
        if unknown:
            raise ValidationFailed(f"not stored photos of this enterprise: {unknown}", code="evidence_not_found", field="evidence_ids")
        return list(dict.fromkeys(evidence_ids))

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


GROUPS = ("topic", "level", "status", "agency", "enterprise")


def _visible_enterprise_ids(actor: Actor) -> Any:
    return select(Enterprise.id).join(Agency, Agency.id == Enterprise.agency_id).where(enterprise_clause(actor))


def _group_key(table: Any, group_by: str) -> Any:
    return Enterprise.agency_id if group_by == "agency" else getattr(table, {"enterprise": "enterprise_id"}.get(group_by, group_by))


def _figures_query(table: Any, actor: Actor, group_by: str, *columns: Any) -> Any:
    """SELECT key, *columns FROM table in the actor's scope (joined with the enterprise when grouping by agency)."""
    query = select(_group_key(table, group_by).label("key"), *columns).select_from(table)
    if group_by == "agency":
        query = query.join(Enterprise, Enterprise.id == table.enterprise_id)
    if actor.role != "admin":
        query = query.where(table.enterprise_id.in_(_visible_enterprise_ids(actor)))
    return query


async def hazard_stats(session: AsyncSession, actor: Actor, group_by: str) -> list[StatsRow]:
    """Counts by status, overdue, look-back outcomes and median days to close per group, in the caller's scope.

    Counts and medians come from the running tally (a few rows per enterprise); only "overdue", which changes with
    the clock, is counted from the hazards themselves, through a partial index on the open ones."""
    t = HazardTally
    per_status = [func.sum(case((t.status == status, t.hazards), else_=0)).label(status) for status in HAZARD_STATUSES]
    counts = _figures_query(
        t, actor, group_by, *per_status,
        func.sum(t.recurrences).label("recurrences"), func.sum(case((t.recurred, t.hazards), else_=0)).label("recurred"),
    ).group_by(text("key"))
    overdue = _figures_query(Hazard, actor, group_by, func.count().label("n")).where(
        Hazard.status == "rectifying", Hazard.deadline < now()
    ).group_by(text("key"))
    # the exact median of whole days to close, from the tally's histogram: the lower and upper middle values
    days = _figures_query(t, actor, group_by, t.close_days.label("d"), func.sum(t.hazards).label("n")).where(
        t.close_days >= 0
    ).group_by(text("key"), t.close_days).subquery()
    running = select(
        days.c.key, days.c.d,
        func.sum(days.c.n).over(partition_by=days.c.key, order_by=days.c.d).label("cum"),
        func.sum(days.c.n).over(partition_by=days.c.key).label("total"),
    ).where(days.c.n > 0).subquery()
    medians = select(
        running.c.key,
        func.min(case((running.c.cum * 2 >= running.c.total, running.c.d))).label("lower"),
        func.min(case((running.c.cum * 2 > running.c.total, running.c.d))).label("upper"),
    ).group_by(running.c.key)

    groups: dict[str, StatsRow] = {}
    for row in (await session.execute(counts)).all():
        by_status = {status: int(getattr(row, status) or 0) for status in HAZARD_STATUSES}
        by_status = {status: n for status, n in by_status.items() if n}
        if not by_status:
            continue
        groups[str(row.key)] = StatsRow(
            key=str(row.key), total=sum(by_status.values()), by_status=by_status, overdue=0, median_days_to_close=None,
            lookbacks_held=by_status.get("verified", 0), lookbacks_recurred=int(row.recurrences or 0),
            hazards_recurred=int(row.recurred or 0),
        )
    for key, n in (await session.execute(overdue)).all():
        if str(key) in groups:
            groups[str(key)].overdue = int(n)
    for key, lower, upper in (await session.execute(medians)).all():
        if str(key) in groups and lower is not None:
            groups[str(key)].median_days_to_close = (lower + upper) / 2
    names = {"agency": Agency, "enterprise": Enterprise}.get(group_by)
    if names is not None and groups:
        query = select(names.id, names.name).where(names.id.in_([uuid.UUID(k) for k in groups]))
        for row_id, name in (await session.execute(query)).all():
            groups[str(row_id)].name = name
    return sorted(groups.values(), key=lambda g: (-g.total, g.key or ""))


async def _serialize(session: AsyncSession, ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = (await session.execute(select(Hazard).where(Hazard.id.in_([uuid.UUID(i) for i in ids])))).scalars()
    return {str(h.id): hazard_out(h).model_dump(mode="json") for h in rows}


register_serializer("hazard", _serialize)
