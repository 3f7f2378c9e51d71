"""HTTP for accidents and the look-back of their rectification measures."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.accidents.report import public_evaluations
from backend.accidents.schemas import (
    AccidentDetail,
    AccidentIn,
    AccidentOut,
    AccidentStatsOut,
    CompleteIn,
    EvaluationStartIn,
    FindingIn,
    FindingOut,
    ProgressIn,
    ProgressOut,
    PublicEvaluation,
    ReportIn,
)
from backend.accidents.service import AccidentService, finding_out, progress_out
from backend.accidents.stats import AccidentGroupBy, accident_stats
from backend.audit import Actor
from backend.auth import requires_role
from backend.http import content_disposition, header_value
from backend.pagination import DEFAULT_LIMIT, Cursor, Page
from backend.vocabulary import AccidentLevel, AccidentStatus, Role

Limit = Annotated[int, QueryParameter(ge=1, le=200)]


def provide_accident_service(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]
) -> AccidentService:
    return AccidentService(db_session, actor, request.app.state.settings)


STAFF = [requires_role(Role.inspector, Role.admin)]
INSPECTOR_ONLY = [requires_role(Role.inspector)]


class AccidentController(Controller):
    path = "/accidents"
    tags = ["accidents"]
    dependencies = {"accidents": Provide(provide_accident_service, sync_to_thread=False)}

    @post("/", guards=STAFF, summary="Record an accident (level, casualties, direct loss)")
    async def create(self, data: JSONBody[AccidentIn], accidents: NamedDependency[AccidentService]) -> Response[AccidentDetail]:
        accident, created = await accidents.create(data)
        return Response(await accidents.detail(accident.id), status_code=201 if created else 200)

    @get("/", summary="Accidents in the caller's scope, newest first")
    async def list(
        self,
        accidents: NamedDependency[AccidentService],
        enterprise_id: FromQuery[uuid.UUID | None] = None,
        level: FromQuery[AccidentLevel | None] = None,
        status: FromQuery[AccidentStatus | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[AccidentOut]:
        return await accidents.listing(enterprise_id=enterprise_id, level=level, status=status, cursor=cursor, limit=limit)

    @post("/{accident_id:uuid}/report", guards=STAFF, summary="The approved investigation report with its measures (due +1 year)")
    async def report(
        self, accident_id: FromPath[uuid.UUID], data: JSONBody[ReportIn], accidents: NamedDependency[AccidentService]
    ) -> Response[AccidentDetail]:
        _, created = await accidents.report(accident_id, data)
        return Response(await accidents.detail(accident_id), status_code=201 if created else 200)

    @post(
        "/{accident_id:uuid}/measures/{measure_id:uuid}/progress",
        guards=[requires_role(Role.inspector, Role.enterprise)],
        summary="Progress on a measure, with at least one photo or document",
    )
    async def progress(
        self,
        accident_id: FromPath[uuid.UUID],
        measure_id: FromPath[uuid.UUID],
        data: JSONBody[ProgressIn],
        accidents: NamedDependency[AccidentService],
    ) -> Response[ProgressOut]:
        row, created = await accidents.progress(accident_id, measure_id, data)
        return Response(progress_out(row), status_code=201 if created else 200)

    @post("/{accident_id:uuid}/evaluation", guards=INSPECTOR_ONLY, status_code=200, summary="Start the evaluation → evaluating")
    async def start(
        self, accident_id: FromPath[uuid.UUID], data: JSONBody[EvaluationStartIn], accidents: NamedDependency[AccidentService]
    ) -> AccidentDetail:
        await accidents.start(accident_id, data)
        return await accidents.detail(accident_id)

    @post("/{accident_id:uuid}/evaluation/findings", guards=INSPECTOR_ONLY, summary="A finding on one measure (not_done opens a hazard)")
    async def finding(
        self, accident_id: FromPath[uuid.UUID], data: JSONBody[FindingIn], accidents: NamedDependency[AccidentService]
    ) -> Response[FindingOut]:
        row, created = await accidents.finding(accident_id, data)
        return Response(finding_out(row), status_code=201 if created else 200)

    @post(
        "/{accident_id:uuid}/evaluation/complete",
        guards=INSPECTOR_ONLY,
        status_code=200,
        summary="Complete the evaluation → evaluated, issuing the numbered 评估报告 (every measure needs a finding)",
    )
    async def complete(
        self, accident_id: FromPath[uuid.UUID], data: JSONBody[CompleteIn], accidents: NamedDependency[AccidentService]
    ) -> AccidentDetail:
        await accidents.complete(accident_id, data)
        return await accidents.detail(accident_id)

    @get(
        "/{accident_id:uuid}/documents/evaluation_report",
        media_type="application/pdf",
        opt={"problem_statuses": [409]},
        summary="The 评估报告 as PDF (409 document_unavailable before the evaluation is completed)",
    )
    async def evaluation_report(self, accident_id: FromPath[uuid.UUID], accidents: NamedDependency[AccidentService]) -> Response[bytes]:
        report = await accidents.report_pdf(accident_id)
        return Response(
            report.pdf,
            media_type="application/pdf",
            headers={
                "X-Document-Number": header_value(report.number),
                "X-Content-SHA256": report.sha256,
                "Content-Disposition": content_disposition("evaluation_report.pdf", inline=True),
            },
        )

    @get("/{accident_id:uuid}", summary="One accident with its report, measures, progress, findings and timeline")
    async def get(self, accident_id: FromPath[uuid.UUID], accidents: NamedDependency[AccidentService]) -> AccidentDetail:
        return await accidents.detail(accident_id)


@get(
    "/evaluations/due",
    tags=["accidents"],
    dependencies={"accidents": Provide(provide_accident_service, sync_to_thread=False)},
    summary="Accidents whose evaluation is due within 60 days or overdue, soonest first, in the caller's scope",
)
async def evaluations_due(
    accidents: NamedDependency[AccidentService], cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> Page[AccidentOut]:
    return await accidents.due(cursor, limit)


@get("/public/evaluations", tags=["public"], exclude_from_auth=True, summary="Published 评估报告 (及时向社会公开), personal data masked")
async def public_evaluation_list(
    db_session: NamedDependency[AsyncSession], cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> Page[PublicEvaluation]:
    return await public_evaluations(db_session, cursor, limit)


@get("/stats/accidents", tags=["accidents"], summary="Accident figures: by level and status, toll, evaluations due, overdue, completed")
async def stats_accidents(
    db_session: NamedDependency[AsyncSession], actor: NamedDependency[Actor], group_by: FromQuery[AccidentGroupBy] = AccidentGroupBy.level
) -> AccidentStatsOut:
    return AccidentStatsOut(group_by=group_by, groups=await accident_stats(db_session, actor, group_by))
