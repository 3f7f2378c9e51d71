"""Hazards: how they are opened (by an inspection, an inspector, or the enterprise's own self-inspection) and read."""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, text, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import StaleDataError
from pydantic_core import to_jsonable_python

from backend import audit
from backend.accounts.models import Agency, Enterprise, EnterpriseTopic
from backend.accounts.scope import enterprise_clause, require_enterprise
from backend.audit import Actor
from backend.checklists.models import Checklist, ChecklistItem
from backend.clock import end_of_local_day, now
from backend.db import insert_if_absent, is_postgres
from backend.errors import Conflict, Forbidden, NotFound, ValidationFailed
from backend.evidence.models import Evidence
from backend.hazards.models import Hazard, HazardEvent
from backend.hazards.schemas import (
    GovernancePlanIn,
    HazardDetail,
    HazardEventOut,
    HazardIn,
    HazardOut,
    LookbackIn,
    OrderIn,
    RectificationIn,
    ReviewIn,
    StatsRow,
)
from backend.idempotency import ensure_same, fingerprint
from backend.pagination import Page, keyset, page_of
from backend.settings import Settings, get_settings
from backend.sync.service import record_change, register_serializer
from backend.workflow import Move, Workflow

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
    def __init__(self, session: AsyncSession, actor: Actor, settings: Settings | None = None) -> None:
        self.session = session
        self.actor = actor
        self.settings = settings or get_settings()

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

    # --- the rectification workflow -------------------------------------------------------------------------

    async def _locked(self, hazard_id: uuid.UUID) -> Hazard:
        """The hazard, row-locked (PostgreSQL) and with its version noted, so a concurrent move cannot also win."""
        query = visible_hazards(self.actor).where(Hazard.id == hazard_id).with_for_update(of=Hazard)
        hazard = (await self.session.execute(query.execution_options(populate_existing=True))).scalar_one_or_none()
        if hazard is None:
            raise NotFound(f"hazard {hazard_id} not found", code="hazard_not_found")
        return hazard

    def _event(self, hazard: Hazard, note: str | None, data: dict[str, Any]) -> Any:
        def make(action: str, from_status: str | None, to_status: str) -> HazardEvent:
            return HazardEvent(
                hazard_id=hazard.id, actor_id=self.actor.user_id, actor=self.actor.username, action=action,
                from_status=from_status, to_status=to_status, note=note, data=to_jsonable_python(data),
            )

        return make

    async def _move(self, hazard: Hazard, action: str, note: str | None, data: dict[str, Any]) -> Hazard:
        HAZARD_WORKFLOW.transition(self.session, hazard, action, self.actor, note, self._event(hazard, note, data), data)
        return await self._save(hazard)

    async def _save(self, hazard: Hazard) -> Hazard:
        hazard.updated_at = now()
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


def _in_scope(actor: Actor) -> Any:
    """Scope on the hazard table alone: the enterprises the actor sees, as a semi-join on a few thousand ids."""
    if actor.role == "admin":
        return true()
    visible = select(Enterprise.id).join(Agency, Agency.id == Enterprise.agency_id).where(enterprise_clause(actor))
    return Hazard.enterprise_id.in_(visible)


def _group_key(group_by: str) -> Any:
    return {
        "topic": Hazard.topic,
        "level": Hazard.level,
        "status": Hazard.status,
        "agency": Enterprise.agency_id,
        "enterprise": Hazard.enterprise_id,
    }[group_by]


def _grouped(query: Any, group_by: str) -> Any:
    return query.select_from(Hazard).join(Enterprise, Enterprise.id == Hazard.enterprise_id) if group_by == "agency" else query


async def _counts(session: AsyncSession, actor: Actor, group_by: str) -> list[Any]:
    key, at = _group_key(group_by), now()
    query = select(
        key.label("key"),
        Hazard.status,
        func.count().label("n"),
        func.sum(case(((Hazard.status == "rectifying") & (Hazard.deadline < at), 1), else_=0)).label("overdue"),
        func.sum(Hazard.recurrence_count).label("recurrences"),
        func.sum(case((Hazard.recurrence_count > 0, 1), else_=0)).label("recurred"),
    ).where(_in_scope(actor)).group_by(key, Hazard.status)
    return list((await session.execute(_grouped(query, group_by))).all())


async def _medians(session: AsyncSession, actor: Actor, group_by: str) -> dict[str, float]:
    """Median days from report to close per group, over the hazards closed at the moment (closed or verified)."""
    key = _group_key(group_by)
    scope = (_in_scope(actor), Hazard.closed_at.is_not(None))
    if is_postgres(session):
        await session.execute(text("SET LOCAL work_mem = '64MB'"))  # sort the durations in memory
        days = func.extract("epoch", Hazard.closed_at - Hazard.created_at) / 86400.0
        query = _grouped(select(key, func.percentile_cont(0.5).within_group(days)), group_by).where(*scope).group_by(key)
        return {str(k): round(float(v), 2) for k, v in (await session.execute(query)).all()}
    # SQLite, the embedded default, has no percentile function: the median is taken here.
    query = _grouped(select(key, Hazard.created_at, Hazard.closed_at), group_by).where(*scope)
    spans: dict[str, list[float]] = {}
    for k, created, closed in (await session.execute(query)).all():
        spans.setdefault(str(k), []).append((closed - created).total_seconds() / 86400)
    return {k: round(statistics.median(v), 2) for k, v in spans.items()}


async def hazard_stats(sessionmaker: async_sessionmaker[AsyncSession], actor: Actor, group_by: str) -> list[StatsRow]:
    """Counts by status, overdue, look-back outcomes and median days to close per group, in the caller's scope.

    The counts and the medians are two scans; on PostgreSQL they run side by side on two connections."""

    async def run(work: Any) -> Any:
        async with sessionmaker() as session:
            return await work(session, actor, group_by)

    async with sessionmaker() as probe:
        concurrent = is_postgres(probe)
    if concurrent:
        counts, medians = await asyncio.gather(run(_counts), run(_medians))
    else:  # SQLite: one connection at a time is what it does best
        counts, medians = await run(_counts), await run(_medians)
    groups: dict[str, StatsRow] = {}
    for row in counts:
        group = groups.setdefault(
            str(row.key),
            StatsRow(key=str(row.key), total=0, by_status={}, overdue=0, median_days_to_close=medians.get(str(row.key)),
                     lookbacks_held=0, lookbacks_recurred=0, hazards_recurred=0),
        )
        group.total += row.n
        group.by_status[row.status] = row.n
        group.overdue += int(row.overdue or 0)
        group.lookbacks_recurred += int(row.recurrences or 0)
        group.hazards_recurred += int(row.recurred or 0)
        if row.status == "verified":
            group.lookbacks_held += row.n
    names = {"agency": Agency, "enterprise": Enterprise}.get(group_by)
    if names is not None and groups:
        async with sessionmaker() as session:
            query = select(names.id, names.name).where(names.id.in_([uuid.UUID(k) for k in groups]))
            for row_id, name in (await session.execute(query)).all():
                groups[str(row_id)].name = name
    return sorted(groups.values(), key=lambda g: (-g.total, g.key or ""))


async def _serialize(session: AsyncSession, ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = (await session.execute(select(Hazard).where(Hazard.id.in_([uuid.UUID(i) for i in ids])))).scalars()
    return {str(h.id): hazard_out(h).model_dump(mode="json") for h in rows}


register_serializer("hazard", _serialize)
