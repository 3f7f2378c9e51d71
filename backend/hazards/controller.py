"""HTTP for hazards."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit import Actor
from backend.auth import requires_role
from backend.clock import local_today
from backend.enforcement.register import pdf_response
from backend.hazards.documents import ReviewOpinions
from backend.hazards.exports import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, csv_chunks, file_chunks, xlsx_file
from backend.hazards.rectification import RectificationService
from backend.hazards.schemas import (
    GovernancePlanIn,
    HazardDetail,
    HazardIn,
    HazardOut,
    LookbackIn,
    OrderIn,
    PlanOut,
    RectificationIn,
    ReviewIn,
    StatsOut,
)
from backend.hazards.service import HazardFilters, HazardService, hazard_detail
from backend.hazards.stats import GroupBy, hazard_stats
from backend.pagination import DEFAULT_LIMIT, Cursor, Page
from backend.vocabulary import HazardLevel, HazardStatus, Role, Topic


def provide_hazard_service(db_session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]) -> HazardService:
    return HazardService(db_session, actor)


def provide_rectification_service(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]
) -> RectificationService:
    return RectificationService(db_session, actor, request.app.state.settings)


def provide_filters(
    enterprise_id: FromQuery[uuid.UUID | None] = None,
    status: FromQuery[HazardStatus | None] = None,
    level: FromQuery[HazardLevel | None] = None,
    topic: FromQuery[Topic | None] = None,
    overdue: FromQuery[bool | None] = None,
) -> HazardFilters:
    """The filters of GET /hazards, shared with its exports."""
    return HazardFilters(enterprise_id, status, level, topic, overdue)


def provide_review_opinions(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]
) -> ReviewOpinions:
    return ReviewOpinions(db_session, actor, request.app.state.store)


INSPECTOR_ONLY = [requires_role(Role.inspector)]
ENTERPRISE_ONLY = [requires_role(Role.enterprise)]


class HazardController(Controller):
    path = "/hazards"
    tags = ["hazards"]
    dependencies = {
        "hazards": Provide(provide_hazard_service, sync_to_thread=False),
        "rectification": Provide(provide_rectification_service, sync_to_thread=False),
        "filters": Provide(provide_filters, sync_to_thread=False),
        "opinions": Provide(provide_review_opinions, sync_to_thread=False),
    }

    @post(
        "/",
        guards=[requires_role("inspector", "enterprise")],
        summary="Report a hazard: an inspector's starts reported, an enterprise's self-report starts rectifying",
    )
    async def create(self, data: JSONBody[HazardIn], hazards: NamedDependency[HazardService]) -> Response[HazardDetail]:
        hazard, created = await hazards.create(data)
        return Response(hazard_detail(await hazards.get(hazard.id)), status_code=201 if created else 200)

    @get("/", summary="Hazards in the caller's scope")
    async def list(
        self,
        hazards: NamedDependency[HazardService],
        filters: NamedDependency[HazardFilters],
        cursor: Cursor = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = DEFAULT_LIMIT,
    ) -> Page[HazardOut]:
        return await hazards.list(filters, cursor, limit)

    @post("/{hazard_id:uuid}/order", guards=INSPECTOR_ONLY, status_code=200, summary="责令限期整改; a new order extends")
    async def order(
        self,
        hazard_id: FromPath[uuid.UUID],
        data: JSONBody[OrderIn],
        rectification: NamedDependency[RectificationService],
        hazards: NamedDependency[HazardService],
    ) -> HazardDetail:
        await rectification.order(hazard_id, data)
        return hazard_detail(await hazards.get(hazard_id))

    @post("/{hazard_id:uuid}/governance-plan", guards=ENTERPRISE_ONLY, summary="重大事故隐患治理方案 (major hazards)")
    async def governance_plan(
        self, hazard_id: FromPath[uuid.UUID], data: JSONBody[GovernancePlanIn], rectification: NamedDependency[RectificationService]
    ) -> Response[PlanOut]:
        event, created = await rectification.add_plan(hazard_id, data)
        return Response(PlanOut(id=event.id, hazard_id=hazard_id, at=event.at, plan=data), status_code=201 if created else 200)

    @post("/{hazard_id:uuid}/rectifications", guards=ENTERPRISE_ONLY, status_code=200, summary="Proof of the fix → pending_review")
    async def rectify(
        self,
        hazard_id: FromPath[uuid.UUID],
        data: JSONBody[RectificationIn],
        rectification: NamedDependency[RectificationService],
        hazards: NamedDependency[HazardService],
    ) -> HazardDetail:
        await rectification.submit_proof(hazard_id, data)
        return hazard_detail(await hazards.get(hazard_id))

    @post(
        "/{hazard_id:uuid}/review",
        guards=[requires_role("inspector", "enterprise")],
        status_code=200,
        summary="Accept (closed) or reject (rectifying) the fix",
    )
    async def review(
        self,
        hazard_id: FromPath[uuid.UUID],
        data: JSONBody[ReviewIn],
        rectification: NamedDependency[RectificationService],
        hazards: NamedDependency[HazardService],
    ) -> HazardDetail:
        await rectification.review(hazard_id, data)
        return hazard_detail(await hazards.get(hazard_id))

    @post("/{hazard_id:uuid}/lookback", guards=INSPECTOR_ONLY, status_code=200, summary="回头看: held → verified, recurred → rectifying")
    async def lookback(
        self,
        hazard_id: FromPath[uuid.UUID],
        data: JSONBody[LookbackIn],
        rectification: NamedDependency[RectificationService],
        hazards: NamedDependency[HazardService],
    ) -> HazardDetail:
        await rectification.lookback(hazard_id, data)
        return hazard_detail(await hazards.get(hazard_id))

    @get(
        "/{hazard_id:uuid}/documents/review_opinion",
        media_type="application/pdf",
        # issued (numbered, in the reviewer's name) the first time it is asked for; 409 document_unavailable before
        # the agency reviewed the rectification
        opt={"writes": True, "problem_statuses": [409]},
        summary="整改复查意见书 of the hazard's latest review, as PDF (issued and numbered once per review)",
    )
    async def review_opinion(self, hazard_id: FromPath[uuid.UUID], opinions: NamedDependency[ReviewOpinions]) -> Response[bytes]:
        return pdf_response(*await opinions.document(hazard_id))

    @get("/{hazard_id:uuid}", summary="One hazard with its timeline (404 outside the caller's scope)")
    async def get(self, hazard_id: FromPath[uuid.UUID], hazards: NamedDependency[HazardService]) -> HazardDetail:
        return hazard_detail(await hazards.get(hazard_id))


@get(
    "/lookbacks/due",
    tags=["hazards"],
    dependencies={"hazards": Provide(provide_hazard_service, sync_to_thread=False)},
    summary="Closed hazards whose look-back (回头看) is due, in the caller's scope",
)
async def lookbacks_due(
    hazards: NamedDependency[HazardService],
    cursor: Cursor = None,
    limit: Annotated[int, QueryParameter(ge=1, le=200)] = DEFAULT_LIMIT,
) -> Page[HazardOut]:
    return await hazards.due_lookbacks(cursor, limit)


@get(
    "/stats/hazards",
    tags=["hazards"],
    summary="Hazard figures for supervisors: counts by status, overdue, median days to close, look-back outcomes",
)
async def stats_hazards(
    db_session: NamedDependency[AsyncSession],
    actor: NamedDependency[Actor],
    group_by: FromQuery[GroupBy] = GroupBy.topic,
) -> StatsOut:
    return StatsOut(group_by=group_by, groups=await hazard_stats(db_session, actor, group_by))


def _attachment(extension: str) -> dict[str, str]:
    """`hazards-<date>.<ext>`, and 隐患清单-<date>.<ext> for clients that read RFC 6266's filename*."""
    stamp = local_today().isoformat()
    chinese = quote(f"隐患清单-{stamp}.{extension}")
    return {"Content-Disposition": f"attachment; filename=\"hazards-{stamp}.{extension}\"; filename*=UTF-8''{chinese}"}


class ExportController(Controller):
    """隐患清单 as files, with the filters and the scope of GET /hazards."""

    path = "/exports"
    tags = ["hazards"]
    dependencies = {
        "hazards": Provide(provide_hazard_service, sync_to_thread=False),
        "filters": Provide(provide_filters, sync_to_thread=False),
    }

    @get("/hazards.csv", media_type=CSV_MEDIA_TYPE, summary="The hazards of GET /hazards (same filters and scope) as CSV, streamed")
    async def hazards_csv(
        self, request: Request[Any, Any, Any], hazards: NamedDependency[HazardService], filters: NamedDependency[HazardFilters]
    ) -> Stream:
        query = hazards.filtered(filters)
        return Stream(csv_chunks(request.app.state.sessionmaker, query), media_type=CSV_MEDIA_TYPE, headers=_attachment("csv"))

    @get("/hazards.xlsx", media_type=XLSX_MEDIA_TYPE, summary="The hazards of GET /hazards (same filters and scope) as an XLSX workbook")
    async def hazards_xlsx(
        self, request: Request[Any, Any, Any], hazards: NamedDependency[HazardService], filters: NamedDependency[HazardFilters]
    ) -> Stream:
        handle = await xlsx_file(request.app.state.sessionmaker, hazards.filtered(filters))
        return Stream(file_chunks(handle), media_type=XLSX_MEDIA_TYPE, headers=_attachment("xlsx"))
