"""The rules of a field inspection: who may take part, results per checklist item, and a submit that is complete,
evidenced, idempotent and turns each hazard result into exactly one hazard."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlmodel import col

from backend import audit, scope
from backend.accounts.models import Enterprise
from backend.audit import Actor
from backend.checklists.models import Checklist, ChecklistItem
from backend.checklists.schemas import CombinationRule
from backend.checklists.service import ChecklistService
from backend.clock import deadline_after, local_today, now
from backend.db import rel
from backend.errors import Conflict, ErrorCode, Forbidden, ValidationFailed
from backend.evidence.models import Evidence
from backend.hazards.models import Hazard
from backend.hazards.service import open_hazard
from backend.idempotency import find_retry, fingerprint
from backend.inspections.models import Inspection, InspectionChecklist, InspectionInspector, InspectionResult
from backend.inspections.schemas import (
    REQUIRED_ATTENDEES,
    Attendee,
    HazardDraftOut,
    InspectionIn,
    InspectionOut,
    NoticeIn,
    ResultIn,
    ResultOut,
    ResultsIn,
    SubmitIn,
    TeamMember,
)
from backend.pagination import Page, keyset, page_of
from backend.planning import tasks
from backend.sync.service import register_serializer
from backend.unit_of_work import concurrent_change, feed_of_enterprise, insert_once, track
from backend.vocabulary import EvidenceKind, EvidenceStatus, HazardSource, HazardStatus, InspectionKind, InspectionStatus, Role
from backend.workflow import Move, Workflow

INSPECTORS = frozenset({Role.inspector})
INSPECTION_WORKFLOW = Workflow(
    "inspection",
    None,
    "inspection_id",
    {
        InspectionStatus.in_progress: {
            "notice_given": Move(InspectionStatus.in_progress, INSPECTORS),  # 执法告知
            "results_recorded": Move(InspectionStatus.in_progress, INSPECTORS),  # 现场检查
            "submitted": Move(InspectionStatus.submitted, INSPECTORS),  # 交流反馈, then hazards are opened
        }
    },
)
track(Inspection, "inspection", feed=feed_of_enterprise)


def hazard_id_for(inspection_id: uuid.UUID, checklist_id: uuid.UUID, item_code: str) -> uuid.UUID:
    """One hazard per hazard result, with an id every retry of the submit derives the same way."""
    return uuid.uuid5(inspection_id, f"{checklist_id}:{item_code}")


def inspection_out(inspection: Inspection) -> InspectionOut:
    results = sorted(inspection.results, key=lambda r: (str(r.checklist_id), r.item_code))
    return InspectionOut(
        **{
            k: getattr(inspection, k)
            for k in (
                "id",
                "enterprise_id",
                "kind",
                "with_experts",
                "inspection_date",
                "site_types",
                "status",
                "notice_given_at",
                "notice_note",
                "started_at",
                "feedback_at",
                "feedback",
                "submitted_at",
                "created_at",
                "updated_at",
            )
        },
        attendees=[Attendee.model_validate(a) for a in inspection.attendees],
        checklist_ids=sorted(c.checklist_id for c in inspection.checklists),
        inspector_ids=sorted(i.user_id for i in inspection.inspectors),
        inspectors=[TeamMember(user_id=i.user_id, certificate_no=i.certificate_no) for i in inspection.inspectors],
        results=[
            ResultOut(
                checklist_id=r.checklist_id,
                item_code=r.item_code,
                outcome=r.outcome,  # type: ignore[arg-type]
                note=r.note,
                evidence_ids=[uuid.UUID(e) for e in r.evidence_ids],
                hazard=HazardDraftOut.model_validate(r.hazard) if r.hazard else None,
                updated_at=r.updated_at,
            )
            for r in results
        ],
        hazard_ids=sorted(hazard_id_for(inspection.id, r.checklist_id, r.item_code) for r in results if r.outcome == "hazard")
        if inspection.status == "submitted"
        else [],
    )


def _loaded() -> Any:
    return (selectinload(rel(Inspection.checklists)), selectinload(rel(Inspection.inspectors)), selectinload(rel(Inspection.results)))


class InspectionService:
    def __init__(self, session: AsyncSession, actor: Actor) -> None:
        self.session = session
        self.actor = actor

    async def get(self, inspection_id: uuid.UUID) -> Inspection:
        return await scope.one(self.session, self.actor, Inspection, inspection_id, options=_loaded())

    async def _lock(self, inspection_id: uuid.UUID) -> Inspection:
        """The inspection, row-locked for this transaction so results and submit never interleave."""
        await scope.one(self.session, self.actor, Inspection, inspection_id, lock=True)
        inspection = await self.get(inspection_id)
        if self.actor.user_id not in {i.user_id for i in inspection.inspectors}:
            raise Forbidden("only the inspection's own team records it", code=ErrorCode.NOT_ON_TEAM)
        return inspection

    # --- create -----------------------------------------------------------------------------------------------

    async def create(self, data: InspectionIn) -> tuple[Inspection, bool]:
        inspection_id = data.id or uuid.uuid4()
        checklist_ids = sorted(set(data.checklist_ids))
        assert self.actor.user_id is not None  # only an inspector (guarded) starts an inspection
        inspector_ids = sorted(set(data.inspector_ids) | {self.actor.user_id})
        content: dict[str, Any] = {
            "enterprise_id": data.enterprise_id,
            "kind": data.kind,
            "with_experts": data.with_experts,
            "checklist_ids": checklist_ids,
            "inspector_ids": inspector_ids,
        }
        if data.inspection_date is not None or data.site_types:  # inspections sent without them keep their fingerprint
            content |= {"inspection_date": data.inspection_date, "site_types": sorted(set(data.site_types))}
        if data.task_id is not None:
            content["task_id"] = data.task_id
        digest = fingerprint(content)
        existing = await self._existing(inspection_id, digest)
        if existing is not None:
            return existing, False

        enterprise = await scope.one(self.session, self.actor, Enterprise, data.enterprise_id, field="enterprise_id")
        checklists = await scope.many(self.session, self.actor, Checklist, checklist_ids, field="checklist_ids")
        inspection_date = data.inspection_date or local_today()
        await self._require_in_force(checklist_ids, inspection_date)
        site_types = sorted(set(data.site_types))
        known_site_types = {rule["site_type"] for c in checklists for rule in c.combination_rules}
        unknown = [t for t in site_types if t not in known_site_types]
        if unknown:
            raise ValidationFailed(
                f"site types {unknown} name no comprehensive-judgement rule of these checklists (known: {sorted(known_site_types)})",
                code=ErrorCode.UNKNOWN_SITE_TYPE,
                field="site_types",
            )
        team = await scope.supervising_officers(
            self.session,
            inspector_ids,
            enterprise.id,
            field="inspector_ids",
            certified_at_least=scope.MIN_OFFICERS if data.kind == InspectionKind.enforcement else 0,
        )
        task = await tasks.claim(self.session, self.actor, data.task_id, enterprise.id, inspector_ids) if data.task_id else None
        at = now()
        inspection = Inspection(
            id=inspection_id,
            status=InspectionStatus.in_progress,
            created_by=self.actor.user_id,
            client_fingerprint=digest,
            attendees=[],
            created_at=at,
            updated_at=at,
            inspection_date=inspection_date,
            site_types=site_types,
            **{k: content[k] for k in ("enterprise_id", "kind", "with_experts")},
        )
        created = await insert_once(
            self.session,
            inspection,
            audit.entry(self.actor, "inspection.create", "inspection", inspection_id, content),
            *[InspectionChecklist(inspection_id=inspection_id, checklist_id=c) for c in checklist_ids],
            *[InspectionInspector(inspection_id=inspection_id, user_id=u.id, certificate_no=u.certificate_no) for u in team],
        )
        if not created:  # a concurrent retry created it first
            existing = await self._existing(inspection_id, digest)
            if existing is None:
                raise concurrent_change()
            return existing, False
        if task is not None:
            tasks.started(self.session, self.actor, task, inspection_id)
        return await self.get(inspection_id), True

    async def _require_in_force(self, checklist_ids: list[uuid.UUID], on: date) -> None:
        """An inspection uses the versions in force on its date: an older window gets the older version."""
        stale = await ChecklistService(self.session).not_in_force(checklist_ids, on)
        if stale:
            named = ", ".join(f"{c.code}@{c.version} ({c.id})" for c in stale)
            raise ValidationFailed(
                f"not the version in force on {on}: {named}; take the versions from GET /checklists?date={on}",
                code=ErrorCode.CHECKLIST_NOT_IN_FORCE,
                field="checklist_ids",
            )

    async def _existing(self, inspection_id: uuid.UUID, digest: str) -> Inspection | None:
        if await find_retry(self.session, scope.readable(self.actor, Inspection), Inspection, inspection_id, digest) is None:
            return None
        return await self.get(inspection_id)

    # --- 执法告知 ----------------------------------------------------------------------------------------------

    async def give_notice(self, inspection_id: uuid.UUID, data: NoticeIn) -> Inspection:
        inspection = await self._lock(inspection_id)
        given_at = data.given_at or now()
        if inspection.notice_given_at is not None:
            if (data.given_at is not None and data.given_at != inspection.notice_given_at) or data.note != inspection.notice_note:
                raise Conflict("the notice (执法告知) is already recorded and cannot change", code=ErrorCode.NOTICE_RECORDED)
            return inspection
        if inspection.status != InspectionStatus.in_progress:
            raise Conflict("the inspection is submitted", code=ErrorCode.INSPECTION_SUBMITTED)
        inspection.notice_given_at, inspection.notice_note = given_at, data.note
        INSPECTION_WORKFLOW.transition(self.session, inspection, "notice_given", self.actor, note=data.note, data={"given_at": given_at})
        return inspection

    # --- results ----------------------------------------------------------------------------------------------

    async def put_results(self, inspection_id: uuid.UUID, data: ResultsIn) -> Inspection:
        inspection = await self._lock(inspection_id)
        items = await self._items(inspection)
        incoming: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}
        for index, result in enumerate(data.results):
            key = (result.checklist_id, result.item_code)
            if key in incoming:
                raise ValidationFailed(f"item {result.item_code} appears twice in one batch", field=f"results[{index}].item_code")
            incoming[key] = self._normalised(index, result, items)
        # Evidence ids are kept as given: a phone records results before its photos are uploaded. Only photos
        # stored for this inspection count at submit, so an id of someone else's evidence is just one that never
        # arrives, answered exactly like an id that does not exist.

        stored = {(r.checklist_id, r.item_code): r for r in inspection.results}
        changed = [key for key, row in incoming.items() if key not in stored or self._row_of(stored[key]) != row]
        if not changed:
            return inspection  # a retry of a batch already recorded changes nothing
        if inspection.status != InspectionStatus.in_progress:
            raise Conflict("the inspection is submitted and accepts no further results", code=ErrorCode.INSPECTION_SUBMITTED)
        at = now()
        for key in changed:
            row = incoming[key]
            if key in stored:
                current = stored[key]
                current.outcome, current.note, current.evidence_ids, current.hazard = (
                    row["outcome"],
                    row["note"],
                    row["evidence_ids"],
                    row["hazard"],
                )
                current.updated_at = at
            else:
                self.session.add(InspectionResult(inspection_id=inspection.id, checklist_id=key[0], item_code=key[1], updated_at=at, **row))
        inspection.started_at = inspection.started_at or at
        inspection.updated_at = at
        INSPECTION_WORKFLOW.transition(
            self.session,
            inspection,
            "results_recorded",
            self.actor,
            data={"changed": [{"checklist_id": k[0], "item_code": k[1], **incoming[k]} for k in changed]},
        )
        return await self.get(inspection.id)

    async def _items(self, inspection: Inspection) -> dict[tuple[uuid.UUID, str], ChecklistItem]:
        ids = [c.checklist_id for c in inspection.checklists]
        rows = (await self.session.execute(select(ChecklistItem).where(col(ChecklistItem.checklist_id).in_(ids)))).scalars()
        return {(i.checklist_id, i.code): i for i in rows}

    @staticmethod
    def _normalised(index: int, result: ResultIn, items: dict[tuple[uuid.UUID, str], ChecklistItem]) -> dict[str, Any]:
        item = items.get((result.checklist_id, result.item_code))
        if item is None:
            known_checklist = any(cid == result.checklist_id for cid, _ in items)
            field = f"results[{index}].item_code" if known_checklist else f"results[{index}].checklist_id"
            what = f"item {result.item_code}" if known_checklist else f"checklist {result.checklist_id}"
            raise ValidationFailed(f"{what} is not part of this inspection", code=ErrorCode.UNKNOWN_ITEM, field=field)
        hazard = None
        if result.outcome == "hazard":
            draft = result.hazard
            hazard = {
                "level": draft.level if draft else ("major" if item.major_hazard else "general"),
                "description": draft.description if draft else None,
                "rectify_days": draft.rectify_days if draft and draft.rectify_days is not None else item.rectify_days,
            }
        return {
            "outcome": result.outcome,
            "note": result.note,
            "evidence_ids": sorted({str(e) for e in result.evidence_ids}),
            "hazard": hazard,
        }

    @staticmethod
    def _row_of(result: InspectionResult) -> dict[str, Any]:
        return {"outcome": result.outcome, "note": result.note, "evidence_ids": result.evidence_ids, "hazard": result.hazard}

    # --- submit -----------------------------------------------------------------------------------------------

    async def submit(self, inspection_id: uuid.UUID, data: SubmitIn) -> tuple[Inspection, list[uuid.UUID]]:
        inspection = await self._lock(inspection_id)
        content = {"attendees": sorted((a.role, a.name) for a in data.attendees), "feedback": data.feedback}
        digest = fingerprint(content)
        if inspection.status == InspectionStatus.submitted:
            if inspection.submit_fingerprint != digest:
                raise Conflict("the inspection was submitted with other attendees or feedback", code=ErrorCode.INSPECTION_SUBMITTED)
            return inspection, inspection_out(inspection).hazard_ids

        items = await self._items(inspection)
        results = {(r.checklist_id, r.item_code): r for r in inspection.results}
        missing = sorted(code for key, code in ((k, k[1]) for k in items) if key not in results)
        if missing:
            raise ValidationFailed(
                f"{len(missing)} checklist items have no result yet: {missing[:20]}", code=ErrorCode.RESULTS_INCOMPLETE, field="results"
            )
        if inspection.kind == InspectionKind.enforcement and inspection.notice_given_at is None:
            raise ValidationFailed(
                "an enforcement inspection starts with the notice (执法告知)",
                code=ErrorCode.NOTICE_REQUIRED,
                field="notice",
            )
        present = {a.role for a in data.attendees}
        required = set(REQUIRED_ATTENDEES) | ({"expert"} if inspection.with_experts else set())
        if not required <= present:
            raise ValidationFailed(
                f"attendees must include {sorted(required - present)} (主要负责人、安全管理人员、岗位操作人员全过程在场)",
                code=ErrorCode.ATTENDEES_INCOMPLETE,
                field="attendees",
            )
        hazard_results = [r for r in inspection.results if r.outcome == "hazard"]
        await self._require_photos(inspection, hazard_results, items)

        at = now()
        checklists = {
            c.id: c for c in (await self.session.execute(select(Checklist).where(col(Checklist.id).in_({k[0] for k in items})))).scalars()
        }
        combined = combined_major(checklists.values(), inspection.site_types, hazard_results)
        hazard_ids = []
        for result in hazard_results:
            draft = result.hazard or {}
            item = items[(result.checklist_id, result.item_code)]
            determination = combined.get((result.checklist_id, result.item_code))
            immediately = draft["rectify_days"] == 0
            hazard = Hazard(
                id=hazard_id_for(inspection.id, result.checklist_id, result.item_code),
                status=HazardStatus.rectifying,
                enterprise_id=inspection.enterprise_id,
                topic=checklists[result.checklist_id].topic,
                level="major" if determination else draft["level"],
                description=draft.get("description") or result.note or item.text,
                note=result.note,
                item_text=item.text,
                source=HazardSource.inspection,
                inspection_id=inspection.id,
                checklist_id=result.checklist_id,
                item_code=result.item_code,
                evidence_ids=result.evidence_ids,
                deadline=deadline_after(at, draft["rectify_days"]),
                client_fingerprint=fingerprint({"inspection_id": inspection.id, "item": result.item_code}),
            )
            note = f"检查发现（{result.item_code}），{'责令立即排除' if immediately else '责令限期整改'}"
            await open_hazard(self.session, self.actor, hazard, f"{note}；{determination}" if determination else note)
            hazard_ids.append(hazard.id)
        inspection.attendees = [a.model_dump() for a in data.attendees]
        inspection.feedback, inspection.feedback_at = data.feedback, at
        inspection.submit_fingerprint, inspection.submitted_at = digest, at
        INSPECTION_WORKFLOW.transition(
            self.session, inspection, "submitted", self.actor, note=data.feedback, data={"hazards": len(hazard_ids)}
        )
        await tasks.completed(self.session, self.actor, inspection.id)
        return await self.get(inspection.id), sorted(hazard_ids)

    async def _require_photos(
        self, inspection: Inspection, hazard_results: list[InspectionResult], items: dict[tuple[uuid.UUID, str], ChecklistItem]
    ) -> None:
        referenced = {e for r in hazard_results for e in r.evidence_ids}
        photos: set[str] = set()
        if referenced:
            query = select(col(Evidence.id)).where(
                col(Evidence.id).in_([uuid.UUID(e) for e in referenced]),
                col(Evidence.inspection_id) == inspection.id,
                col(Evidence.kind) == EvidenceKind.photo,
                col(Evidence.status) == EvidenceStatus.stored,
            )
            photos = {str(e) for e in (await self.session.execute(query)).scalars()}
        lacking = [
            r.item_code
            for r in hazard_results
            if len(photos.intersection(r.evidence_ids)) < max(1, items[(r.checklist_id, r.item_code)].min_photos)
        ]
        if lacking:
            raise ValidationFailed(
                f"hazard findings need their photos uploaded first: {sorted(lacking)}", code=ErrorCode.EVIDENCE_REQUIRED, field="results"
            )

    # --- lists ------------------------------------------------------------------------------------------------

    async def list(
        self, enterprise_id: uuid.UUID | None, status: InspectionStatus | None, cursor: str | None, limit: int
    ) -> Page[InspectionOut]:
        query = scope.readable(self.actor, Inspection).options(*_loaded())
        if enterprise_id:
            query = query.where(col(Inspection.enterprise_id) == enterprise_id)
        if status:
            query = query.where(col(Inspection.status) == status)
        rows = list((await self.session.execute(keyset(query, Inspection.created_at, Inspection.id, cursor, limit))).scalars())
        return page_of(rows, limit, inspection_out)


def combined_major(
    checklists: Iterable[Checklist], site_types: list[str], hazard_results: list[InspectionResult]
) -> dict[tuple[uuid.UUID, str], str]:
    """The comprehensive judgement (综合判定, GB 35181): the findings that together make a major hazard, each with the
    reason. Only enabled rules for the inspection's site types count; below the threshold the findings stay as found."""
    found: dict[tuple[uuid.UUID, str], str] = {}
    for checklist in checklists:
        for rule in (CombinationRule.model_validate(r) for r in checklist.combination_rules):
            if not rule.enabled or rule.site_type not in site_types:
                continue
            hits = sorted(r.item_code for r in hazard_results if r.checklist_id == checklist.id and r.item_code in rule.elements)
            if len(hits) >= rule.threshold:
                reason = (
                    f"综合判定：{rule.applies_to}存在综合判定要素 {len(hits)} 项（{'、'.join(hits)}），"
                    f"达到 {rule.threshold} 项，判定为重大事故隐患（{checklist.document_number}）"
                )
                for code in hits:
                    found.setdefault((checklist.id, code), reason)
    return found


async def _serialize(session: AsyncSession, ids: list[str]) -> dict[str, dict[str, Any]]:
    query = select(Inspection).options(*_loaded()).where(col(Inspection.id).in_([uuid.UUID(i) for i in ids]))
    return {str(i.id): inspection_out(i).model_dump(mode="json") for i in (await session.execute(query)).scalars()}


register_serializer("inspection", _serialize)
