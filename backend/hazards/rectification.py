"""The rectification workflow (整改): orders, governance plans, proof of the fix, reviews and the look-back (回头看).

Every step locks the hazard, answers a replay of itself as the first time, moves through HAZARD_WORKFLOW, and is
flushed so a lost race answers 409 inside the request."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend import scope
from backend.audit import Actor
from backend.clock import now
from backend.errors import Conflict, ErrorCode, Forbidden, ValidationFailed
from backend.evidence.models import Evidence
from backend.hazards.models import Hazard, HazardEvent
from backend.hazards.schemas import GovernancePlanIn, LookbackIn, OrderIn, RectificationIn, ReviewIn
from backend.hazards.service import HAZARD_WORKFLOW, deadline_instant
from backend.settings import Settings
from backend.unit_of_work import flush
from backend.vocabulary import EvidenceKind, EvidenceStatus, HazardLevel, HazardSource, HazardStatus, Role
from backend.wire import ActionIn
from backend.workflow import ActionRequest, TimelineEntry


def lookback_sampled(hazard_id: uuid.UUID, rate: float) -> bool:
    """Whether a closed general hazard gets a look-back: a fixed function of its id, so an audit can re-derive the
    sample from the ids and the rate alone."""
    draw = int.from_bytes(hashlib.sha256(f"lookback:{hazard_id}".encode()).digest()[:8], "big") / 2**64
    return draw < rate


class RectificationService:
    def __init__(self, session: AsyncSession, actor: Actor, settings: Settings) -> None:
        self.session = session
        self.actor = actor
        self.settings = settings

    async def _step(self, hazard_id: uuid.UUID, operation: str, body: ActionIn) -> tuple[Hazard, ActionRequest, TimelineEntry | None]:
        """The hazard, locked, and the step an earlier send of this same request already took, if any."""
        hazard = await scope.one(self.session, self.actor, Hazard, hazard_id, lock=True)
        request = ActionRequest.of(operation, body)
        return hazard, request, await HAZARD_WORKFLOW.replayed(self.session, hazard, self.actor, request)

    async def _move(self, hazard: Hazard, action: str, request: ActionRequest, note: str | None, data: dict[str, Any]) -> TimelineEntry:
        event = HAZARD_WORKFLOW.transition(self.session, hazard, action, self.actor, note=note, data=data, request=request)
        await flush(self.session)
        assert event is not None
        return event

    async def order(self, hazard_id: uuid.UUID, data: OrderIn) -> Hazard:
        hazard, request, earlier = await self._step(hazard_id, "order", data)
        if earlier is not None:
            return hazard
        action = "extended" if hazard.status == HazardStatus.rectifying else "ordered"
        HAZARD_WORKFLOW.check(hazard.status, action, self.actor.role)
        deadline = deadline_instant(data.deadline)
        assert deadline is not None
        if deadline <= now():
            raise ValidationFailed("the deadline must lie in the future", field="deadline")
        if action == "extended" and hazard.deadline is not None and deadline <= hazard.deadline:
            raise ValidationFailed("a new order extends the deadline; it cannot shorten it", field="deadline")
        hazard.deadline = deadline
        await self._move(hazard, action, request, data.measures, {"deadline": deadline, "measures": data.measures})
        return hazard

    async def add_plan(self, hazard_id: uuid.UUID, data: GovernancePlanIn) -> tuple[HazardEvent, bool]:
        """The governance plan as a timeline step; a replay returns the plan recorded the first time."""
        hazard, request, earlier = await self._step(hazard_id, "governance_plan", data)
        if earlier is not None:
            return earlier, False  # type: ignore[return-value]
        HAZARD_WORKFLOW.check(hazard.status, "plan_submitted", self.actor.role)
        if hazard.level != HazardLevel.major:
            raise Conflict("a governance plan (治理方案) is for major hazards", code=ErrorCode.NOT_MAJOR)
        plan = {**data.model_dump(exclude={"id"}), "deadline": deadline_instant(data.deadline)}
        return await self._move(hazard, "plan_submitted", request, data.objective, plan), True  # type: ignore[return-value]

    async def submit_proof(self, hazard_id: uuid.UUID, data: RectificationIn) -> Hazard:
        hazard, request, earlier = await self._step(hazard_id, "rectification", data)
        if earlier is not None:
            return hazard
        HAZARD_WORKFLOW.check(hazard.status, "rectification_submitted", self.actor.role)
        if hazard.level == HazardLevel.major and not await self._has_plan(hazard.id):
            raise Conflict("a major hazard needs its governance plan (治理方案) before review", code=ErrorCode.PLAN_REQUIRED)
        photos = [str(e.id) for e in await self._stored_evidence(hazard, data.evidence_ids, photos_only=True)]
        if len(photos) < len(hazard.evidence_ids):
            raise ValidationFailed(
                f"the finding had {len(hazard.evidence_ids)} photos: send an after-photo for each",
                code=ErrorCode.EVIDENCE_REQUIRED,
                field="evidence_ids",
            )
        pairs = [{"before": b, "after": a} for b, a in zip(hazard.evidence_ids, photos, strict=False)]
        proof = {"description": data.description, "evidence_ids": photos, "pairs": pairs}
        await self._move(hazard, "rectification_submitted", request, data.description, proof)
        return hazard

    async def review(self, hazard_id: uuid.UUID, data: ReviewIn) -> Hazard:
        hazard, request, earlier = await self._step(hazard_id, "review", data)
        if earlier is not None:
            return hazard
        action = "accepted" if data.decision == "accept" else "rejected"
        HAZARD_WORKFLOW.check(hazard.status, action, self.actor.role)
        if self.actor.role == Role.enterprise and (hazard.source != HazardSource.self_inspection or hazard.level != HazardLevel.general):
            raise Forbidden(
                "an enterprise accepts only its own self-found general hazards; this one needs the agency",
                code=ErrorCode.AGENCY_REVIEW_REQUIRED,
            )
        review: dict[str, Any] = {"decision": data.decision, "opinion": data.opinion}
        if action == "accepted":
            at = now()
            hazard.closed_at = at
            rate = self.settings.lookback_sample_rate
            chosen = hazard.level == HazardLevel.major or lookback_sampled(hazard.id, rate)
            hazard.lookback_due_at = at + timedelta(days=self.settings.lookback_delay_days) if chosen else None
            review |= {"lookback": chosen, "lookback_rate": rate, "lookback_due_at": hazard.lookback_due_at}
        await self._move(hazard, action, request, data.opinion, review)
        return hazard

    async def lookback(self, hazard_id: uuid.UUID, data: LookbackIn) -> Hazard:
        hazard, request, earlier = await self._step(hazard_id, "lookback", data)
        if earlier is not None:
            return hazard
        action = f"lookback_{data.outcome}"
        HAZARD_WORKFLOW.check(hazard.status, action, self.actor.role)
        if hazard.lookback_due_at is None:
            raise Conflict("this hazard was not chosen for a look-back", code=ErrorCode.LOOKBACK_NOT_SELECTED)
        if hazard.lookback_due_at > now():
            raise Conflict(f"the look-back is due from {hazard.lookback_due_at.isoformat()}", code=ErrorCode.LOOKBACK_NOT_DUE)
        evidence = [str(e.id) for e in await self._stored_evidence(hazard, data.evidence_ids, photos_only=False)]
        found: dict[str, Any] = {"outcome": data.outcome, "evidence_ids": evidence}
        if data.outcome == "recurred":
            first_period = (hazard.deadline or hazard.created_at) - hazard.created_at
            hazard.deadline = deadline_instant(data.deadline) or now() + max(first_period, timedelta(days=1))
            hazard.recurrence_count += 1
            hazard.lookback_due_at = None
            hazard.closed_at = None
            found |= {"deadline": hazard.deadline, "recurrence_count": hazard.recurrence_count}
        await self._move(hazard, action, request, data.note, found)
        return hazard

    async def _has_plan(self, hazard_id: uuid.UUID) -> bool:
        query = select(col(HazardEvent.id)).where(col(HazardEvent.hazard_id) == hazard_id, col(HazardEvent.action) == "plan_submitted")
        return (await self.session.execute(query.limit(1))).first() is not None

    async def _stored_evidence(self, hazard: Hazard, evidence_ids: list[uuid.UUID], *, photos_only: bool) -> list[Evidence]:
        """The given evidence, stored and of this hazard's enterprise, in the order given; 422 for any other id."""
        where = [Evidence.enterprise_id == hazard.enterprise_id, Evidence.status == EvidenceStatus.stored]
        if photos_only:
            where.append(Evidence.kind == EvidenceKind.photo)
        return await scope.many(self.session, self.actor, Evidence, evidence_ids, field="evidence_ids", where=where)
