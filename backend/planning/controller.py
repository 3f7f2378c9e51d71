"""HTTP for 分类分级, annual plans, 双随机 draws, tasks, conflicts and the public list of draws."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit import Actor
from backend.auth import requires_role
from backend.pagination import DEFAULT_LIMIT, Cursor, Page
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
    ProgressOut,
    PublicDraw,
    SnapshotOut,
    TaskOut,
)
from backend.planning.service import PlanningService, classification_out, conflict_out, plan_out, public_draws
from backend.vocabulary import PlanStatus, Role, TaskStatus

Limit = Annotated[int, QueryParameter(ge=1, le=200)]
PLANNERS = [requires_role(Role.inspector, Role.admin)]
LEADERS = [requires_role(Role.leader)]
STAFF = [requires_role(Role.inspector, Role.leader, Role.legal_reviewer, Role.admin)]


def provide_planning_service(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]
) -> PlanningService:
    return PlanningService(db_session, actor, request.app.state.settings)


PROVIDERS = {"planning": Provide(provide_planning_service, sync_to_thread=False)}


class ClassificationController(Controller):
    path = "/enterprises/{enterprise_id:uuid}"
    tags = ["planning"]
    dependencies = PROVIDERS

    @put(
        "/classification",
        guards=PLANNERS,
        summary="分类分级: classify the enterprise from valid_from on (a new row; earlier ones are kept as history)",
    )
    async def classify(
        self, enterprise_id: FromPath[uuid.UUID], data: JSONBody[ClassificationIn], planning: NamedDependency[PlanningService]
    ) -> ClassificationOut:
        return classification_out(await planning.classify(enterprise_id, data))

    @get("/classifications", summary="The enterprise's classifications, newest first")
    async def history(
        self,
        enterprise_id: FromPath[uuid.UUID],
        planning: NamedDependency[PlanningService],
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[ClassificationOut]:
        return await planning.classifications(enterprise_id, cursor, limit)


@post(
    "/users/{user_id:uuid}/conflicts",
    tags=["planning"],
    guards=[requires_role(Role.inspector, Role.leader, Role.admin)],
    dependencies=PROVIDERS,
    summary="Declare an inspector's conflict of interest (回避) with an enterprise: draws never send them there",
)
async def declare_conflict(
    user_id: FromPath[uuid.UUID], data: JSONBody[ConflictIn], planning: NamedDependency[PlanningService]
) -> Response[ConflictOut]:
    conflict, created = await planning.declare_conflict(user_id, data)
    return Response(conflict_out(conflict), status_code=201 if created else 200)


class PlanController(Controller):
    path = "/plans"
    tags = ["planning"]
    dependencies = PROVIDERS

    @post("/", guards=PLANNERS, summary="Draft an annual plan (年度监督检查计划), or a new version of an approved one")
    async def create(self, data: JSONBody[AnnualPlanIn], planning: NamedDependency[PlanningService]) -> Response[AnnualPlanOut]:
        plan, created = await planning.create_plan(data)
        return Response(plan_out(plan), status_code=201 if created else 200)

    @get("/", guards=STAFF, summary="Plans of the caller's agency and those below it")
    async def list(
        self,
        planning: NamedDependency[PlanningService],
        year: Annotated[int | None, QueryParameter(ge=2000, le=2100)] = None,
        status: FromQuery[PlanStatus | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[AnnualPlanOut]:
        return await planning.list_plans(year, status, cursor, limit)

    @put("/{plan_id:uuid}", guards=PLANNERS, summary="Edit a draft plan (an approved plan never changes: 409 plan_approved)")
    async def edit(
        self, plan_id: FromPath[uuid.UUID], data: JSONBody[AnnualPlanEditIn], planning: NamedDependency[PlanningService]
    ) -> AnnualPlanOut:
        return plan_out(await planning.edit_plan(plan_id, data))

    @post(
        "/{plan_id:uuid}/approve", guards=LEADERS, status_code=200, summary="A leader approves the plan (a new version supersedes the old)"
    )
    async def approve(self, plan_id: FromPath[uuid.UUID], planning: NamedDependency[PlanningService]) -> AnnualPlanOut:
        return plan_out(await planning.approve_plan(plan_id))

    @get("/{plan_id:uuid}/progress", guards=STAFF, summary="Per rule: tasks planned, assigned, in progress, done and overdue")
    async def progress(self, plan_id: FromPath[uuid.UUID], planning: NamedDependency[PlanningService]) -> ProgressOut:
        return await planning.progress(plan_id)

    @post("/{plan_id:uuid}/draws", guards=PLANNERS, summary="双随机: draw enterprises and inspectors for one rule (201; a replay 200)")
    async def draw(
        self, plan_id: FromPath[uuid.UUID], data: JSONBody[DrawIn], planning: NamedDependency[PlanningService]
    ) -> Response[DrawOut]:
        draw, created = await planning.draw(plan_id, data)
        return Response(await planning.draw_out(draw), status_code=201 if created else 200)

    @get("/{plan_id:uuid}", guards=STAFF, summary="One plan")
    async def get(self, plan_id: FromPath[uuid.UUID], planning: NamedDependency[PlanningService]) -> AnnualPlanOut:
        return plan_out(await planning.get_plan(plan_id))


class DrawController(Controller):
    path = "/draws"
    tags = ["planning"]
    dependencies = PROVIDERS
    guards = STAFF

    @get("/{draw_id:uuid}/snapshot", summary="What a third party needs to recompute the draw: seed, snapshots, parameters")
    async def snapshot(self, draw_id: FromPath[uuid.UUID], planning: NamedDependency[PlanningService]) -> SnapshotOut:
        return await planning.snapshot(draw_id)

    @get("/{draw_id:uuid}/verify", summary="Recompute the draw from its stored seed and snapshots: {valid}")
    async def verify(self, draw_id: FromPath[uuid.UUID], planning: NamedDependency[PlanningService]) -> DrawVerifyOut:
        return await planning.verify(draw_id)

    @get("/{draw_id:uuid}", summary="One draw with its tasks")
    async def get(self, draw_id: FromPath[uuid.UUID], planning: NamedDependency[PlanningService]) -> DrawOut:
        return await planning.draw_out(await planning.get_draw(draw_id))


@get("/tasks", tags=["planning"], guards=STAFF, dependencies=PROVIDERS, summary="Tasks drawn: `assignee=me` for the caller's own")
async def list_tasks(
    planning: NamedDependency[PlanningService],
    assignee: FromQuery[Literal["me"] | None] = None,
    status: FromQuery[TaskStatus | None] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[TaskOut]:
    return await planning.list_tasks(assignee == "me", status, cursor, limit)


@get("/public/draws", tags=["public"], exclude_from_auth=True, summary="一公开: draws, what was drawn and, once done, the outcome")
async def public_draw_list(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> Page[PublicDraw]:
    return await public_draws(db_session, request.app.state.settings, cursor, limit)
