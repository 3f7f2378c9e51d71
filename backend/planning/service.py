"""The rules of planning: 分类分级 with history, annual plans approved by a leader and never changed afterwards,
双随机 draws that anyone can recompute, the tasks they make, their progress, and the public list (一公开).

Sources (mobile_api_spec/API.md "Planning"): 安全生产法 第六十二条 (分类分级监督管理, 年度监督检查计划, inspect by the
plan); 安监总政法〔2017〕150号 第五条 (inspect by the approved plan), 第六条 (统筹兼顾、分类分级、突出重点 ...), 第七条
(the plan weighs the inspectors' number and the enterprises'); 双随机、一公开 = 随机抽取检查对象，随机选派执法检查人员，
抽查情况及查处结果及时向社会公开 (secondary source). What no source fixed (classes, frequencies, sample rates,
publication delay) is a rule of the plan or a setting.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from backend import audit, scope
from backend.accounts.models import Agency, Enterprise, EnterpriseTopic, User
from backend.audit import Actor
from backend.clock import end_of_local_day, local_today, now
from backend.errors import Conflict, ErrorCode, Forbidden, ValidationFailed
from backend.hazards.models import Hazard
from backend.idempotency import ensure_same, find_retry, fingerprint
from backend.inspections.models import Inspection
from backend.integration.outbox import EventName, emit_all
from backend.pagination import Page, check_limit, decode_cursor, encode_cursor, keyset, page_of
from backend.planning import draw as drawing
from backend.planning.models import Draw, EnterpriseClassification, InspectorConflict, Plan, Task, TaskInspector
from backend.planning.schemas import (
    AnnualPlanEditIn,
    AnnualPlanIn,
    AnnualPlanOut,
    ClassificationIn,
    ClassificationOut,
    ConflictIn,
    ConflictOut,
    DrawIn,
    DrawOut,
    DrawVerifyOut,
    PlanRule,
    ProgressOut,
    PublicDraw,
    PublicVisit,
    RuleProgress,
    SnapshotOut,
    TaskOut,
)
from backend.planning.tasks import task_out
from backend.settings import Settings
from backend.unit_of_work import concurrent_change, insert_once
from backend.vocabulary import Category, PlanStatus, Role, TaskStatus, Topic
from backend.workflow import Move, Workflow

PLAN_WORKFLOW = Workflow(
    "plan",
    None,
    "plan_id",
    {
        PlanStatus.draft: {
            "edited": Move(PlanStatus.draft, frozenset({Role.inspector, Role.admin})),
            "approved": Move(PlanStatus.approved, frozenset({Role.leader})),
        },
        PlanStatus.approved: {"superseded": Move(PlanStatus.superseded, frozenset({Role.leader}))},
    },
)


def plan_out(plan: Plan) -> AnnualPlanOut:
    return AnnualPlanOut(
        id=plan.id,
        agency_id=plan.agency_id,
        year=plan.year,
        version=plan.version,
        title=plan.title,
        rules=[PlanRule.model_validate(r) for r in plan.rules],
        status=PlanStatus(plan.status),
        supersedes=plan.supersedes_id,
        approved_at=plan.approved_at,
        approved_by=plan.approved_by,
        created_at=plan.created_at,
        updated_at=plan.updated_at,
    )


def classification_out(row: EnterpriseClassification) -> ClassificationOut:
    return ClassificationOut.model_validate(row, from_attributes=True)


def conflict_out(row: InspectorConflict) -> ConflictOut:
    return ConflictOut.model_validate(row, from_attributes=True)


def due_dates(start: date, end: date, visits: int) -> list[datetime]:
    """The end of each of `visits` equal parts of the period (the last one its last day), in the agencies' zone."""
    days = (end - start).days + 1
    return [end_of_local_day(start + timedelta(days=max(1, v * days // visits) - 1)) for v in range(1, visits + 1)]


# what a `task.assigned` webhook carries: the task as GET /tasks shows it
TASK_EVENT_FIELDS = ("id", "plan_id", "draw_id", "enterprise_id", "topic", "inspector_ids", "due_by", "status")


class PlanningService:
    def __init__(self, session: AsyncSession, actor: Actor, settings: Settings) -> None:
        self.session = session
        self.actor = actor
        self.settings = settings

    # --- 分类分级 -----------------------------------------------------------------------------------------------

    async def classify(self, enterprise_id: uuid.UUID, data: ClassificationIn) -> EnterpriseClassification:
        """A new classification from `valid_from` on; the same one sent again (a retry) is the row already kept."""
        await scope.one(self.session, self.actor, Enterprise, enterprise_id)
        latest = (
            await self.session.execute(
                select(EnterpriseClassification)
                .where(col(EnterpriseClassification.enterprise_id) == enterprise_id)
                .order_by(col(EnterpriseClassification.created_at).desc(), col(EnterpriseClassification.id).desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        content = data.model_dump()
        if latest is not None and {k: getattr(latest, k) for k in content} == content:
            return latest
        row = EnterpriseClassification(enterprise_id=enterprise_id, created_by=self.actor.user_id, **content)
        self.session.add(row)
        audit.record(self.session, self.actor, "enterprise.classify", "enterprise", enterprise_id, content)
        return row

    async def classifications(self, enterprise_id: uuid.UUID, cursor: str | None, limit: int) -> Page[ClassificationOut]:
        await scope.one(self.session, self.actor, Enterprise, enterprise_id)
        query = select(EnterpriseClassification).where(col(EnterpriseClassification.enterprise_id) == enterprise_id)
        query = keyset(query, EnterpriseClassification.created_at, EnterpriseClassification.id, cursor, limit)
        return page_of(list((await self.session.execute(query)).scalars()), limit, classification_out)

    # --- conflicts (回避) ------------------------------------------------------------------------------------------

    async def declare_conflict(self, user_id: uuid.UUID, data: ConflictIn) -> tuple[InspectorConflict, bool]:
        user: User = await scope.one(self.session, self.actor, User, user_id)
        if self.actor.role == Role.inspector and user.id != self.actor.user_id:
            raise Forbidden("an inspector declares their own conflicts; a leader or an admin may declare one for them")
        if user.role != Role.inspector:
            raise ValidationFailed(f"user {user_id} is no inspector: only inspectors are drawn", field="user_id")
        await scope.one(self.session, self.actor, Enterprise, data.enterprise_id, field="enterprise_id")
        digest = fingerprint({"reason": data.reason})
        existing = await self._conflict(user_id, data.enterprise_id)
        if existing is None:
            row = InspectorConflict(user_id=user_id, enterprise_id=data.enterprise_id, reason=data.reason, declared_by=self.actor.user_id)
            record = audit.entry(self.actor, "user.conflict", "user", user_id, data.model_dump())
            if await insert_once(self.session, row, record):
                return row, True
            existing = await self._conflict(user_id, data.enterprise_id)
            if existing is None:
                raise concurrent_change()
        ensure_same(fingerprint({"reason": existing.reason}), digest, "conflict", f"{user_id}/{data.enterprise_id}")
        return existing, False

    async def _conflict(self, user_id: uuid.UUID, enterprise_id: uuid.UUID) -> InspectorConflict | None:
        query = select(InspectorConflict).where(
            col(InspectorConflict.user_id) == user_id, col(InspectorConflict.enterprise_id) == enterprise_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    # --- plans ----------------------------------------------------------------------------------------------------

    async def create_plan(self, data: AnnualPlanIn) -> tuple[Plan, bool]:
        plan_id = data.id or uuid.uuid4()
        content = data.model_dump(mode="json", exclude={"id"})
        digest = fingerprint(content)
        existing = await find_retry(self.session, scope.readable(self.actor, Plan), Plan, plan_id, digest)
        if existing is not None:
            return existing, False
        await scope.one(self.session, self.actor, Agency, data.agency_id, field="agency_id")
        version = 1
        if data.supersedes is not None:
            previous: Plan = await scope.one(self.session, self.actor, Plan, data.supersedes, field="supersedes")
            if previous.status != PlanStatus.approved or (previous.agency_id, previous.year) != (data.agency_id, data.year):
                raise ValidationFailed(
                    "a new version supersedes the approved plan of the same agency and year", field="supersedes", status=previous.status
                )
            version = previous.version + 1
        latest = await self._latest_version(data.agency_id, data.year)
        if latest is not None and latest.version >= version:
            raise Conflict(
                f"the agency's plan for {data.year} is {latest.id} (version {latest.version}, {latest.status}): edit that "
                f"draft, or make a new version of the approved plan with supersedes",
                code=ErrorCode.PLAN_EXISTS,
                plan_id=str(latest.id),
            )
        at = now()
        plan = Plan(
            id=plan_id,
            agency_id=data.agency_id,
            year=data.year,
            version=version,
            title=data.title,
            rules=content["rules"],
            status=PlanStatus.draft,
            supersedes_id=data.supersedes,
            client_fingerprint=digest,
            created_by=self.actor.user_id,
            created_at=at,
            updated_at=at,
        )
        if not await insert_once(self.session, plan, *PLAN_WORKFLOW.creation_rows(plan, self.actor, None, content)):
            again = await find_retry(self.session, scope.readable(self.actor, Plan), Plan, plan_id, digest)
            if again is None:  # another version took this agency, year and version number meanwhile
                raise concurrent_change()
            return again, False
        return plan, True

    async def _latest_version(self, agency_id: uuid.UUID, year: int) -> Plan | None:
        query = select(Plan).where(col(Plan.agency_id) == agency_id, col(Plan.year) == year).order_by(col(Plan.version).desc()).limit(1)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def edit_plan(self, plan_id: uuid.UUID, data: AnnualPlanEditIn) -> Plan:
        plan: Plan = await scope.one(self.session, self.actor, Plan, plan_id, lock=True)
        rules = data.model_dump(mode="json")["rules"]
        if plan.status != PlanStatus.draft:
            raise Conflict(
                f"plan {plan_id} is {plan.status} and never changes: POST /plans with supersedes={plan_id} makes a new version",
                code=ErrorCode.PLAN_APPROVED,
            )
        if (plan.title, plan.rules) == (data.title, rules):
            return plan
        plan.title, plan.rules = data.title, rules
        PLAN_WORKFLOW.transition(self.session, plan, "edited", self.actor, data={"title": data.title, "rules": rules})
        return plan

    async def approve_plan(self, plan_id: uuid.UUID) -> Plan:
        """A leader of the plan's agency (or one above it) approves; approving the approved plan again changes nothing.
        A new version, once approved, supersedes the version it replaces."""
        plan: Plan = await scope.one(self.session, self.actor, Plan, plan_id, lock=True)
        if plan.status == PlanStatus.approved:
            return plan
        PLAN_WORKFLOW.check(plan.status, "approved", self.actor.role)
        if plan.supersedes_id is not None:
            previous: Plan = await scope.one(self.session, self.actor, Plan, plan.supersedes_id, lock=True)
            PLAN_WORKFLOW.transition(self.session, previous, "superseded", self.actor, data={"by": plan.id})
        plan.approved_by, plan.approved_at = self.actor.user_id, now()
        PLAN_WORKFLOW.transition(self.session, plan, "approved", self.actor, data={"version": plan.version})
        return plan

    async def get_plan(self, plan_id: uuid.UUID) -> Plan:
        plan: Plan = await scope.one(self.session, self.actor, Plan, plan_id)
        return plan

    async def list_plans(self, year: int | None, status: PlanStatus | None, cursor: str | None, limit: int) -> Page[AnnualPlanOut]:
        query = scope.readable(self.actor, Plan)
        if year is not None:
            query = query.where(col(Plan.year) == year)
        if status is not None:
            query = query.where(col(Plan.status) == status)
        rows = list((await self.session.execute(keyset(query, Plan.created_at, Plan.id, cursor, limit))).scalars())
        return page_of(rows, limit, plan_out)

    async def progress(self, plan_id: uuid.UUID) -> ProgressOut:
        """Per rule: tasks drawn, by status, and overdue (past due_by, not done): one grouped count on an index."""
        plan = await self.get_plan(plan_id)
        overdue = func.sum(case((and_(col(Task.due_by) < now(), col(Task.status) != TaskStatus.done), 1), else_=0))
        query = (
            select(col(Task.rule_index), col(Task.status), func.count(), overdue)
            .where(col(Task.plan_id) == plan_id)
            .group_by(col(Task.rule_index), col(Task.status))
        )
        counts: dict[int, dict[str, int]] = {}
        for rule_index, status, number, late in (await self.session.execute(query)).all():
            row = counts.setdefault(rule_index, {})
            row[status] = number
            row["overdue"] = row.get("overdue", 0) + int(late or 0)
        rules = []
        for index, raw in enumerate(plan.rules):
            rule = PlanRule.model_validate(raw)
            got = counts.get(index, {})
            by_status = {s: got.get(s, 0) for s in TaskStatus}
            rules.append(
                RuleProgress(
                    rule_index=index,
                    category=rule.category,
                    topic=rule.topic,
                    planned=sum(by_status.values()),
                    assigned=by_status[TaskStatus.assigned],
                    in_progress=by_status[TaskStatus.in_progress],
                    done=by_status[TaskStatus.done],
                    overdue=got.get("overdue", 0),
                )
            )
        return ProgressOut(plan_id=plan.id, rules=rules)

    # --- draws ----------------------------------------------------------------------------------------------------

    async def draw(self, plan_id: uuid.UUID, data: DrawIn) -> tuple[Draw, bool]:
        """Draw for one rule of an approved plan. The plan is locked first: draws of one plan are made one at a time,
        so each sees the teams of the one before, and the same draw sent twice at once is made once."""
        plan: Plan = await scope.one(self.session, self.actor, Plan, plan_id, lock=True)
        draw_id = data.id or uuid.uuid4()
        digest = fingerprint({"plan_id": plan_id, **data.model_dump(mode="json", exclude={"id"})})
        existing = await find_retry(self.session, scope.readable(self.actor, Draw), Draw, draw_id, digest)
        if existing is not None:
            return existing, False
        if plan.status != PlanStatus.approved:
            raise Conflict(f"plan {plan_id} is {plan.status}: draws are made from an approved plan", code=ErrorCode.PLAN_NOT_APPROVED)
        if data.rule_index >= len(plan.rules):
            raise ValidationFailed(f"the plan has {len(plan.rules)} rules (0 to {len(plan.rules) - 1})", field="rule_index")
        if not data.period_start.year == data.period_end.year == plan.year:
            raise ValidationFailed(f"the period lies within the plan's year {plan.year}", field="period_start")
        rule = PlanRule.model_validate(plan.rules[data.rule_index])
        if rule.category == Category.key and (data.count is not None or data.sample_rate is not None):
            raise ValidationFailed(
                "key enterprises are not sampled: each gets the rule's visits_per_year", field="count" if data.count else "sample_rate"
            )
        drawn_on = local_today()
        agency_path = (await self.session.execute(select(col(Agency.path)).where(col(Agency.id) == plan.agency_id))).scalar_one()
        population = await self._population(agency_path, rule, drawn_on)
        why = f"rule {data.rule_index} ({rule.category}{', ' + rule.topic if rule.topic else ''})"
        if not population:
            raise ValidationFailed(
                f"{why}: no enterprise of the plan's agency tree is classified {rule.category} on {drawn_on}"
                f"{' with topic ' + rule.topic if rule.topic else ''}",
                code=ErrorCode.EMPTY_POPULATION,
                field="rule_index",
                rule_index=data.rule_index,
            )
        count: int | None = None
        if rule.category == Category.general:
            rate = data.sample_rate or rule.sample_rate
            if data.count is None and rate is None:
                raise ValidationFailed(f"{why} has no sample_rate: give count or sample_rate", field="count", rule_index=data.rule_index)
            count = min(len(population), data.count if data.count is not None else math.ceil(len(population) * (rate or 0)))
        visits = (rule.visits_per_year or 1) if rule.category == Category.key else 1
        snapshot = await self._inspectors(plan, set(population))
        seed = secrets.token_bytes(32)
        try:
            texts, assignments = await asyncio.to_thread(
                _compute, seed, population, snapshot, count, visits, data.inspectors_per_task
            )  # the CPU work (HMACs, hashes) off the event loop
        except drawing.NotEnoughInspectors as exc:
            raise ValidationFailed(
                f"{why}: enterprise {exc.enterprise_id} has {exc.eligible} eligible inspectors (certified, active, of the "
                f"plan's agency, without a declared conflict), {exc.needed} are needed",
                code=ErrorCode.NOT_ENOUGH_INSPECTORS,
                field="inspectors_per_task",
                rule_index=data.rule_index,
                enterprise_id=exc.enterprise_id,
            ) from None
        at = now()
        draw = Draw(
            id=draw_id,
            plan_id=plan.id,
            rule_index=data.rule_index,
            category=rule.category,
            topic=rule.topic,
            period_start=data.period_start,
            period_end=data.period_end,
            drawn_on=drawn_on,
            seed=seed.hex(),
            population_hash=drawing.sha256_hex(texts[0]),
            population=texts[0],
            population_size=len(population),
            inspectors_hash=drawing.sha256_hex(texts[1]),
            inspectors=texts[1],
            selected=len(assignments) // visits,
            visits=visits,
            inspectors_per_task=data.inspectors_per_task,
            client_fingerprint=digest,
            created_by=self.actor.user_id,
            created_at=at,
        )
        summary = {"plan_id": plan.id, "rule_index": data.rule_index, "tasks": len(assignments), "population_hash": draw.population_hash}
        if not await insert_once(self.session, draw, audit.entry(self.actor, "draw.create", "draw", draw_id, summary)):
            again = await find_retry(self.session, scope.readable(self.actor, Draw), Draw, draw_id, digest)
            if again is None:
                raise concurrent_change()
            return again, False
        await self._insert_tasks(draw, rule, assignments, agency_path, at)
        return draw, True

    async def _population(self, agency_path: str, rule: PlanRule, on: date) -> list[str]:
        """The enterprises of the agency's tree whose classification in force on `on` is the rule's category (with the
        rule's topic): one query."""
        cls = EnterpriseClassification
        ranked = (
            select(
                col(cls.enterprise_id),
                col(cls.category),
                func.row_number()
                .over(partition_by=col(cls.enterprise_id), order_by=(col(cls.valid_from).desc(), col(cls.created_at).desc()))
                .label("n"),
            )
            .where(col(cls.valid_from) <= on)
            .subquery()
        )
        query = (
            select(col(Enterprise.id))
            .join(Agency, col(Agency.id) == col(Enterprise.agency_id))
            .outerjoin(ranked, and_(ranked.c.enterprise_id == col(Enterprise.id), ranked.c.n == 1))
            .where(col(Agency.path).startswith(agency_path, autoescape=True))
        )
        matches = ranked.c.category == rule.category
        if self.settings.unclassified_category == rule.category:
            matches = or_(matches, ranked.c.category.is_(None))
        query = query.where(matches)
        if rule.topic is not None:
            topical = select(col(EnterpriseTopic.enterprise_id)).where(col(EnterpriseTopic.topic) == rule.topic)
            query = query.where(col(Enterprise.id).in_(topical))
        return [str(i) for i in (await self.session.execute(query)).scalars()]

    async def _inspectors(self, plan: Plan, population: set[str]) -> drawing.InspectorSnapshot:
        """The plan agency's certified, active inspectors, their declared conflicts within the population, and each
        enterprise's team in the latest earlier draw of this plan."""
        pool_query = select(col(User.id)).where(
            col(User.agency_id) == plan.agency_id,
            col(User.role) == Role.inspector,
            col(User.is_active).is_(True),
            col(User.certificate_no).is_not(None),
            col(User.certificate_no) != "",
        )
        pool = [str(i) for i in (await self.session.execute(pool_query)).scalars()]
        conflicts: dict[str, list[str]] = {}
        conflict_query = select(col(InspectorConflict.enterprise_id), col(InspectorConflict.user_id)).where(
            col(InspectorConflict.user_id).in_(select(pool_query.subquery().c.id))
        )
        for enterprise_id, user_id in (await self.session.execute(conflict_query)).all():
            if str(enterprise_id) in population:
                conflicts.setdefault(str(enterprise_id), []).append(str(user_id))
        previous: dict[str, list[str]] = {}
        earlier = (
            select(col(Task.enterprise_id), col(Task.inspector_ids))
            .join(Draw, col(Draw.id) == col(Task.draw_id))
            .where(col(Task.plan_id) == plan.id)
            .order_by(col(Draw.created_at), col(Draw.id), col(Task.seq))
        )
        for enterprise_id, team in (await self.session.execute(earlier)).all():
            if str(enterprise_id) in population:
                previous[str(enterprise_id)] = team
        return drawing.InspectorSnapshot.of(pool, conflicts, previous)

    async def _insert_tasks(
        self, draw: Draw, rule: PlanRule, assignments: list[drawing.Assignment], agency_path: str, at: datetime
    ) -> None:
        """The draw's tasks in bulk, with their feed rows (the flush hook writes those for tasks that change later)."""
        dues = due_dates(draw.period_start, draw.period_end, draw.visits)
        topics = {} if rule.topic else await self._first_topics([a.enterprise_id for a in assignments])
        tasks: list[dict[str, Any]] = []
        members: list[dict[str, Any]] = []
        feed: list[dict[str, Any]] = []
        for seq, a in enumerate(assignments):
            task_id = uuid.uuid5(draw.id, f"{a.enterprise_id}:{a.visit}")
            tasks.append(
                {
                    "id": task_id,
                    "plan_id": draw.plan_id,
                    "draw_id": draw.id,
                    "rule_index": draw.rule_index,
                    "seq": seq,
                    "enterprise_id": uuid.UUID(a.enterprise_id),
                    "visit": a.visit,
                    "topic": rule.topic or topics.get(a.enterprise_id),
                    "inspector_ids": list(a.inspector_ids),
                    "due_by": dues[a.visit - 1],
                    "status": TaskStatus.assigned.value,
                    "version": 1,
                    "created_at": at,
                    "updated_at": at,
                }
            )
            members += [{"task_id": task_id, "user_id": uuid.UUID(i)} for i in a.inspector_ids]
            feed.append({"entity": "task", "entity_id": str(task_id), "op": "create", "agency_path": agency_path, "at": at})
        for table, rows in (("task", tasks), ("task_inspector", members), ("change_log", feed)):
            for start in range(0, len(rows), 5000):
                await self.session.execute(insert(SQLModel.metadata.tables[table]), rows[start : start + 5000])
        assigned = [(task["id"], {"task": {k: task[k] for k in TASK_EVENT_FIELDS}}) for task in tasks]
        await emit_all(self.session, EventName.task_assigned, assigned)

    async def _first_topics(self, enterprise_ids: Sequence[str]) -> dict[str, str]:
        query = (
            select(col(EnterpriseTopic.enterprise_id), func.min(col(EnterpriseTopic.topic)))
            .where(col(EnterpriseTopic.enterprise_id).in_({uuid.UUID(e) for e in enterprise_ids}))
            .group_by(col(EnterpriseTopic.enterprise_id))
        )
        return {str(e): t for e, t in (await self.session.execute(query)).all()}

    async def get_draw(self, draw_id: uuid.UUID) -> Draw:
        draw: Draw = await scope.one(self.session, self.actor, Draw, draw_id)
        return draw

    async def draw_out(self, draw: Draw) -> DrawOut:
        tasks = await self._tasks_of(draw.id)
        return DrawOut(
            **{
                k: getattr(draw, k)
                for k in (
                    "id",
                    "plan_id",
                    "rule_index",
                    "category",
                    "topic",
                    "period_start",
                    "period_end",
                    "drawn_on",
                    "seed",
                    "population_hash",
                    "population_size",
                    "inspectors_hash",
                    "selected",
                    "visits",
                    "inspectors_per_task",
                    "created_at",
                )
            },
            tasks=[task_out(t) for t in tasks],
        )

    async def _tasks_of(self, draw_id: uuid.UUID) -> list[Task]:
        query = select(Task).where(col(Task.draw_id) == draw_id).order_by(col(Task.seq))
        return list((await self.session.execute(query)).scalars())

    async def snapshot(self, draw_id: uuid.UUID) -> SnapshotOut:
        draw = await self.get_draw(draw_id)
        return SnapshotOut(
            draw_id=draw.id,
            seed=draw.seed,
            category=Category(draw.category),
            count=draw.selected if draw.category == Category.general else None,
            visits=draw.visits,
            inspectors_per_task=draw.inspectors_per_task,
            population=draw.population,
            population_hash=draw.population_hash,
            inspectors=draw.inspectors,
            inspectors_hash=draw.inspectors_hash,
        )

    async def verify(self, draw_id: uuid.UUID) -> DrawVerifyOut:
        """Recompute the draw from its stored seed and snapshots and compare with the tasks it made."""
        draw = await self.get_draw(draw_id)
        query = select(col(Task.enterprise_id), col(Task.visit), col(Task.inspector_ids)).where(col(Task.draw_id) == draw_id)
        recorded = [drawing.Assignment(str(e), v, tuple(sorted(team))) for e, v, team in (await self.session.execute(query)).all()]
        verdict = await asyncio.to_thread(
            drawing.verify,
            draw.seed,
            draw.population,
            draw.population_hash,
            draw.inspectors,
            draw.inspectors_hash,
            count=draw.selected if draw.category == Category.general else None,
            visits=draw.visits,
            inspectors_per_task=draw.inspectors_per_task,
            recorded=recorded,
        )
        return DrawVerifyOut(
            valid=verdict.valid,
            population_hash_matches=verdict.population_hash_matches,
            inspectors_hash_matches=verdict.inspectors_hash_matches,
            selection_matches=verdict.selection_matches,
            tasks=len(recorded),
        )

    # --- tasks ----------------------------------------------------------------------------------------------------

    async def list_tasks(self, mine: bool, status: TaskStatus | None, cursor: str | None, limit: int) -> Page[TaskOut]:
        query = scope.readable(self.actor, Task)
        if mine:
            query = query.where(
                col(Task.id).in_(select(col(TaskInspector.task_id)).where(col(TaskInspector.user_id) == self.actor.user_id))
            )
        if status is not None:
            query = query.where(col(Task.status) == status)
        rows = list((await self.session.execute(keyset(query, Task.created_at, Task.id, cursor, limit))).scalars())
        return page_of(rows, limit, task_out)


def _compute(
    seed: bytes, population: list[str], snapshot: drawing.InspectorSnapshot, count: int | None, visits: int, per_task: int
) -> tuple[tuple[str, str], list[drawing.Assignment]]:
    """Everything CPU-bound of a draw, for a worker thread: the snapshot texts and the selection."""
    texts = (drawing.population_text(population), snapshot.text())
    return texts, drawing.select(seed, sorted(population), snapshot, count=count, visits=visits, inspectors_per_task=per_task)


# --- 一公开 -------------------------------------------------------------------------------------------------------


async def public_draws(session: AsyncSession, settings: Settings, cursor: str | None, limit: int) -> Page[PublicDraw]:
    """Draws for the public, newest first: what was drawn and, once done, when it was inspected and whether hazards
    were found. Enterprise names and credit codes are public registry data; no person is named or identified."""
    published_before = now() - timedelta(days=settings.draw_publication_delay_days)
    query = (
        select(Draw, col(Plan.title), col(Plan.year), col(Agency.name))
        .join(Plan, col(Plan.id) == col(Draw.plan_id))
        .join(Agency, col(Agency.id) == col(Plan.agency_id))
        .where(col(Draw.created_at) <= published_before)
    )
    if cursor:
        at, draw_id = decode_cursor(cursor)
        query = query.where(or_(col(Draw.created_at) < at, and_(col(Draw.created_at) == at, col(Draw.id) < draw_id)))
    query = query.order_by(col(Draw.created_at).desc(), col(Draw.id).desc()).limit(check_limit(limit) + 1)
    rows = (await session.execute(query)).all()
    page = rows[:limit]
    visits = await _public_visits(session, [row[0].id for row in page])
    items = [
        PublicDraw(
            id=draw.id,
            agency_name=agency_name,
            plan_title=title,
            year=year,
            category=Category(draw.category),
            topic=Topic(draw.topic) if draw.topic else None,
            period_start=draw.period_start,
            period_end=draw.period_end,
            drawn_at=draw.created_at,
            population_size=draw.population_size,
            population_hash=draw.population_hash,
            seed=draw.seed,
            visits=visits.get(draw.id, []),
        )
        for draw, title, year, agency_name in page
    ]
    last = page[-1][0] if len(rows) > limit else None
    return Page[PublicDraw](items=items, next_cursor=encode_cursor(last.created_at, last.id) if last else None)


async def _public_visits(session: AsyncSession, draw_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[PublicVisit]]:
    if not draw_ids:
        return {}
    found = select(literal(1)).where(col(Hazard.inspection_id) == col(Inspection.id)).correlate(Inspection).exists()
    query = (
        select(
            col(Task.draw_id),
            col(Task.visit),
            col(Task.due_by),
            col(Task.status),
            col(Enterprise.name),
            col(Enterprise.credit_code),
            col(Inspection.inspection_date),
            found,
        )
        .join(Enterprise, col(Enterprise.id) == col(Task.enterprise_id))
        .outerjoin(Inspection, col(Inspection.id) == col(Task.inspection_id))
        .where(col(Task.draw_id).in_(draw_ids))
        .order_by(col(Task.draw_id), col(Task.seq))
    )
    out: dict[uuid.UUID, list[PublicVisit]] = {}
    for draw_id, visit, due_by, status, name, credit_code, inspection_date, hazards in (await session.execute(query)).all():
        done = status == TaskStatus.done
        out.setdefault(draw_id, []).append(
            PublicVisit(
                enterprise_name=name,
                credit_code=credit_code,
                visit=visit,
                due_by=due_by,
                done=done,
                inspection_date=inspection_date if done else None,
                hazards_found=bool(hazards) if done else None,
            )
        )
    return out
