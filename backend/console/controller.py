"""The desk console's pages: the same services, called with the same Actor as the API, rendered as HTML.

Nothing here decides who may see or do what: the services and `backend.scope` do, as for the API. A page only
chooses which service to call and how to show its answer; an id outside the caller's scope is the services' 404,
shown as the console's 404 page. Each POST is one unit of work (`provide_db_session`); a refusal rolls it back and
shows the form again with the field in red.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Stream, Template
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend import scope
from backend.accounts.login import Logins
from backend.accounts.models import Enterprise, User
from backend.audit import Actor
from backend.auth import issue_token
from backend.console import charts, figures, words
from backend.console.session import (
    CSRF_FIELD,
    PREFIX,
    PRELOGIN_COOKIE,
    SESSION_COOKIE,
    csrf_guard,
    csrf_token,
    expired,
    new_prelogin,
    prelogin_cookie,
    session_cookie,
)
from backend.enforcement.decisions import DecisionService
from backend.enforcement.issuing import DocumentIssuer
from backend.enforcement.models import Case, IssuedDocument
from backend.enforcement.records import RecordService
from backend.enforcement.schemas import DocumentType, LegalReviewIn
from backend.enforcement.service import CaseService
from backend.errors import AppError, NotFound
from backend.evidence.controller import receive_evidence
from backend.evidence.models import Evidence
from backend.evidence.schemas import UploadIn
from backend.evidence.service import EvidenceService, evidence_out
from backend.hazards.models import HazardEvent
from backend.hazards.rectification import RectificationService
from backend.hazards.schemas import GovernancePlanIn, RectificationIn
from backend.hazards.service import HazardFilters, HazardService, hazard_detail
from backend.hazards.stats import hazard_stats
from backend.http import content_disposition, header_value
from backend.limits import LOGIN_MAX_BODY_BYTES
from backend.vocabulary import EvidenceKind, EvidenceStatus, HazardLevel, HazardStatus, Role, Topic

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
PAGE_SIZE = 20
HAZARD_PAGE_SIZE = 50
STATUS_COLORS = {
    "reported": "#8e44ad",
    "rectifying": "#e67e22",
    "pending_review": "#2980b9",
    "closed": "#27ae60",
    "verified": "#16a085",
}
STAFF = (Role.leader, Role.inspector, Role.admin)
HOME = {Role.legal_reviewer: "reviews", Role.enterprise: "hazards"}
Cursor = Annotated[str | None, QueryParameter(max_length=400)]


def only(*roles: str) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]:
    """A page for these roles; anyone else finds nothing here (the console's 404), as for an id outside their scope."""
    allowed = frozenset(roles)

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if connection.user.role not in allowed:
            raise NotFound("this page is for other roles")

    return guard


def render(request: Request[Any, Any, Any], template: str, status: int = 200, **context: Any) -> Template:
    user = request.scope.get("user")
    return Template(
        template_name=template,
        context={"me": user, "csrf": csrf_token(request), "csrf_field": CSRF_FIELD, "w": words, "prefix": PREFIX, **context},
        status_code=status,
    )


async def form_of(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The posted form as a dict (lists for the fields that repeat), without the CSRF token."""
    form = await request.form()
    values: dict[str, Any] = {}
    for key in form:
        if key == CSRF_FIELD:
            continue
        items = form.getall(key)
        values[key] = items if key.endswith("_ids") else items[-1]
    return values


def parse(model: type[M], values: dict[str, Any]) -> M | dict[str, str]:
    try:
        return model.model_validate({k: v for k, v in values.items() if v != ""})
    except ValidationError as exc:
        return words.form_errors(exc)


async def attempt(session: AsyncSession, action: Awaitable[Any]) -> AppError | None:
    """Run a service call; a refusal rolls the unit of work back and is returned, to be shown on the form."""
    try:
        await action
    except AppError as exc:
        await session.rollback()
        return exc
    return None


async def for_script(
    session: AsyncSession, action: Awaitable[T], answer: Callable[[T], dict[str, Any]], status_code: int = 200
) -> Response[dict[str, Any]]:
    """A service call made for the page's script: its answer as JSON, or the refusal in words, with its status."""
    try:
        result = await action
    except AppError as exc:
        await session.rollback()
        return Response({"error": words.problem_message(exc)}, status_code=exc.status)
    return Response(answer(result), status_code=status_code)


def refusal(exc: AppError) -> dict[str, str]:
    field = exc.field.split(".")[0].split("[")[0] if exc.field else "_form"
    return {field: words.problem_message(exc)}


async def enterprise_names(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(select(col(Enterprise.id), col(Enterprise.name)).where(col(Enterprise.id).in_(ids)))
    return {row_id: name for row_id, name in rows.all()}


def home_of(actor: Actor) -> str:
    return f"{PREFIX}/{HOME.get(Role(actor.role), 'dashboard')}"


def safe_next(target: str | None) -> str | None:
    """Only a page of the console itself, never another site (`//host`, `/\\host`)."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith(("//", "/\\")) and "\\" not in target:
        return target
    return None


class ConsoleController(Controller):
    path = "/"
    include_in_schema = False
    guards = [csrf_guard]

    # --- login ----------------------------------------------------------------------------------------------

    @get("/login", exclude_from_auth=True)
    async def login_page(
        self, request: Request[Any, Any, Any], next_page: Annotated[str | None, QueryParameter(name="next")] = None
    ) -> Template:
        return self._login(request, next_page, {}, "")

    def _login(
        self, request: Request[Any, Any, Any], next_page: str | None, errors: dict[str, str], username: str, status: int = 200
    ) -> Template:
        cookie = None
        if not request.cookies.get(SESSION_COOKIE) and not request.cookies.get(PRELOGIN_COOKIE):
            cookie = new_prelogin()
        page = render(request, "login.html", status, next=safe_next(next_page) or "", errors=errors, username=username)
        if cookie is not None:
            page.context["csrf"] = csrf_token(request, basis=cookie)
            page.cookies.append(prelogin_cookie(cookie, request.app.state.settings.console_cookie_secure))
        return page

    @post("/login", exclude_from_auth=True, request_max_body_size=LOGIN_MAX_BODY_BYTES, status_code=303)
    async def login(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Response[Any]:
        values = await form_of(request)
        username, password = str(values.get("username", "")).strip(), str(values.get("password", ""))
        next_page = safe_next(values.get("next"))
        if not username or not password:
            missing = {k: "请填写此项。" for k, v in (("username", username), ("password", password)) if not v}
            return self._login(request, next_page, missing, username, 422)
        state = request.app.state
        logins = Logins(state.sessionmaker, state.settings, state.passwords)
        address = request.client.host if request.client else "unknown"
        try:
            user = await logins.authenticate(db_session, username, password, address, request.state.get("request_id"))
        except AppError as exc:
            await db_session.rollback()
            page = self._login(request, next_page, {"_form": words.problem_message(exc)}, username, exc.status)
            page.headers.update(exc.headers)
            return page
        token = issue_token(state.jwt_auth, user)
        actor = Actor(user_id=user.id, username=user.username, role=user.role)
        secure = state.settings.console_cookie_secure
        max_age = int(state.jwt_auth.default_token_expiration.total_seconds())
        return Redirect(
            next_page or home_of(actor),
            status_code=303,
            cookies=[session_cookie(token, max_age, secure), expired(PRELOGIN_COOKIE, secure)],
        )

    @post("/logout", status_code=303)
    async def logout(self, request: Request[Any, Any, Any]) -> Redirect:
        return Redirect(
            f"{PREFIX}/login", status_code=303, cookies=[expired(SESSION_COOKIE, request.app.state.settings.console_cookie_secure)]
        )

    @get("/")
    async def home(self, actor: NamedDependency[Actor]) -> Redirect:
        return Redirect(home_of(actor), status_code=303)

    # --- legal reviewer -------------------------------------------------------------------------------------

    @get("/reviews", guards=[only(Role.legal_reviewer)])
    async def reviews(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        actor: NamedDependency[Actor],
        cursor: Cursor = None,
        done: Annotated[str | None, QueryParameter(max_length=20)] = None,
    ) -> Template:
        cases = CaseService(db_session, actor, request.app.state.store, request.app.state.settings)
        queue = await cases.list(
            status=None, enterprise_id=None, awaiting_my_review=True, handled_by_me=False, cursor=cursor, limit=PAGE_SIZE
        )
        names = await enterprise_names(db_session, {c.enterprise_id for c in queue.items})
        return render(request, "reviews.html", queue=queue, names=names, done=done, cursor=cursor)

    @get("/cases/{case_id:uuid}")
    async def case_page(
        self,
        request: Request[Any, Any, Any],
        case_id: FromPath[uuid.UUID],
        db_session: NamedDependency[AsyncSession],
        actor: NamedDependency[Actor],
    ) -> Template:
        return await self._case(request, case_id, db_session, actor, {}, "")

    async def _case(
        self,
        request: Request[Any, Any, Any],
        case_id: uuid.UUID,
        session: AsyncSession,
        actor: Actor,
        errors: dict[str, str],
        opinion: str,
        status: int = 200,
    ) -> Template:
        state = request.app.state
        case = await CaseService(session, actor, state.store, state.settings).detail(case_id)
        records = await RecordService(session, actor, state.store, state.settings).page(case_id, None, 200)
        evidence_ids = {e.id for r in records.items for e in r.evidence}
        evidence = {}
        if evidence_ids:
            query = scope.readable(actor, Evidence).where(col(Evidence.id).in_(evidence_ids))
            evidence = {e.id: e for e in (await session.execute(query)).scalars()}
        handlers = (await session.execute(select(col(User.id), col(User.display_name)).where(col(User.id).in_(case.handler_ids)))).all()
        names = await enterprise_names(session, {case.enterprise_id})
        can_review = actor.role == Role.legal_reviewer and case.status == "legal_review" and actor.user_id not in case.handler_ids
        return render(
            request,
            "case.html",
            status,
            case=case,
            records=records.items,
            more_records=records.next_cursor is not None,
            evidence=evidence,
            handlers={user_id: name for user_id, name in handlers},
            enterprise=names.get(case.enterprise_id, ""),
            can_review=can_review,
            errors=errors,
            opinion=opinion,
        )

    @get("/cases/{case_id:uuid}/chain")
    async def chain(
        self,
        request: Request[Any, Any, Any],
        case_id: FromPath[uuid.UUID],
        db_session: NamedDependency[AsyncSession],
        actor: NamedDependency[Actor],
    ) -> Template:
        state = request.app.state
        verified = await RecordService(db_session, actor, state.store, state.settings).verify(case_id)
        return render(request, "chain.html", verified=verified, case_id=case_id, partial=request.headers.get("HX-Request") == "true")

    @post("/cases/{case_id:uuid}/review", guards=[only(Role.legal_reviewer)], status_code=303)
    async def review(
        self,
        request: Request[Any, Any, Any],
        case_id: FromPath[uuid.UUID],
        db_session: NamedDependency[AsyncSession],
        actor: NamedDependency[Actor],
    ) -> Response[Any]:
        state = request.app.state
        await scope.one(db_session, actor, Case, case_id)  # outside the caller's scope: 404 before the form is read
        values = await form_of(request)
        data = parse(LegalReviewIn, values)
        if isinstance(data, dict):
            return await self._case(request, case_id, db_session, actor, data, str(values.get("opinion", "")), 422)
        failed = await attempt(db_session, DecisionService(db_session, actor, state.store, state.settings).legal_review(case_id, data))
        if failed is not None:
            errors = refusal(failed)
            return await self._case(request, case_id, db_session, actor, errors, data.opinion, failed.status)
        return Redirect(f"{PREFIX}/reviews?done={'approved' if data.decision == 'approve' else 'returned'}", status_code=303)

    @get("/cases/{case_id:uuid}/documents/{doc_type:str}", opt={"writes": True})
    async def case_document(
        self,
        request: Request[Any, Any, Any],
        case_id: FromPath[uuid.UUID],
        doc_type: FromPath[DocumentType],
        db_session: NamedDependency[AsyncSession],
        actor: NamedDependency[Actor],
        target: Annotated[str | None, QueryParameter(max_length=100)] = None,
    ) -> Response[bytes]:
        state = request.app.state
        issued, pdf = await DocumentIssuer(db_session, actor, state.store, state.settings).document(case_id, doc_type, target)
        return Response(
            pdf,
            media_type="application/pdf",
            headers={
                "X-Document-Number": header_value(issued.number),
                "Content-Disposition": content_disposition(f"{words.DOCUMENTS.get(doc_type, doc_type)}.pdf", inline=False),
            },
        )

    # --- evidence, as the console shows it -----------------------------------------------------------------

    @get("/evidence/{evidence_id:uuid}/thumbnail")
    async def thumbnail(
        self,
        request: Request[Any, Any, Any],
        evidence_id: FromPath[uuid.UUID],
        db_session: NamedDependency[AsyncSession],
        actor: NamedDependency[Actor],
    ) -> Response[bytes]:
        state = request.app.state
        record, data = await EvidenceService(db_session, actor, state.store, state.settings).thumbnail(evidence_id)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600", "ETag": f'"{record.sha256}-t"'})

    @get("/evidence/{evidence_id:uuid}/content")
    async def content(
        self,
        request: Request[Any, Any, Any],
        evidence_id: FromPath[uuid.UUID],
        db_session: NamedDependency[AsyncSession],
        actor: NamedDependency[Actor],
    ) -> Stream:
        state = request.app.state
        record, chunks = await EvidenceService(db_session, actor, state.store, state.settings).content(evidence_id)
        return Stream(
            chunks,
            media_type=record.content_type
            if record.content_type.startswith(("image/", "video/", "audio/"))
            else "application/octet-stream",
            headers={"Content-Length": str(record.size), "X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"},
        )

    # --- enterprise -----------------------------------------------------------------------------------------

    @get("/hazards")
    async def hazards(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        actor: NamedDependency[Actor],
        status: Annotated[HazardStatus | None, QueryParameter()] = None,
        overdue: Annotated[bool | None, QueryParameter()] = None,
        cursor: Cursor = None,
    ) -> Template:
        page = await HazardService(db_session, actor).list(HazardFilters(status=status, overdue=overdue), cursor, HAZARD_PAGE_SIZE)
        names = await enterprise_names(db_session, {h.enterprise_id for h in page.items}) if actor.role != Role.enterprise else {}
        return render(request, "hazards.html", page=page, names=names, status_filter=status, overdue=overdue, cursor=cursor)

    @get("/hazards/{hazard_id:uuid}")
    async def hazard_page(
        self,
        request: Request[Any, Any, Any],
        hazard_id: FromPath[uuid.UUID],
        db_session: NamedDependency[AsyncSession],
        actor: NamedDependency[Actor],
        done: Annotated[str | None, QueryParameter(max_length=20)] = None,
    ) -> Template:
        return await self._hazard(request, hazard_id, db_session, actor, done=done)

    async def _hazard(
        self,
        request: Request[Any, Any, Any],
        hazard_id: uuid.UUID,
        session: AsyncSession,
        actor: Actor,
        *,
        errors: dict[str, str] | None = None,
        plan_errors: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        plan_values: dict[str, Any] | None = None,
        status: int = 200,
        done: str | None = None,
    ) -> Template:
        hazard = hazard_detail(await HazardService(session, actor).get(hazard_id))
        finding = {str(e) for e in hazard.evidence_ids}
        query = scope.readable(actor, Evidence).where(col(Evidence.hazard_id) == hazard_id, col(Evidence.status) == EvidenceStatus.stored)
        own = list((await session.execute(query.order_by(col(Evidence.created_at)))).scalars())
        photos = [e for e in own if e.kind == EvidenceKind.photo and str(e.id) not in finding]
        has_plan = (
            await session.execute(
                select(col(HazardEvent.id))
                .where(col(HazardEvent.hazard_id) == hazard_id, col(HazardEvent.action) == "plan_submitted")
                .limit(1)
            )
        ).first() is not None
        is_enterprise = actor.role == Role.enterprise
        return render(
            request,
            "hazard.html",
            status,
            hazard=hazard,
            photos=photos,
            has_plan=has_plan,
            can_rectify=is_enterprise and hazard.status == HazardStatus.rectifying,
            can_plan=is_enterprise
            and hazard.level == HazardLevel.major
            and hazard.status in (HazardStatus.reported, HazardStatus.rectifying),
            errors=errors or {},
            plan_errors=plan_errors or {},
            values=values or {},
            plan_values=plan_values or {},
            chosen=set((values or {}).get("evidence_ids", [str(p.id) for p in photos])),
            done=done,
            direct_limit=DIRECT_UPLOAD_BYTES,
        )

    @post("/hazards/{hazard_id:uuid}/rectification", guards=[only(Role.enterprise)], status_code=303)
    async def rectify(
        self,
        request: Request[Any, Any, Any],
        hazard_id: FromPath[uuid.UUID],
        db_session: NamedDependency[AsyncSession],
        actor: NamedDependency[Actor],
    ) -> Response[Any]:
        await HazardService(db_session, actor).get(hazard_id)  # 404 outside scope, before the form is looked at
        values = await form_of(request)
        data = parse(RectificationIn, values)
        if isinstance(data, dict):
            if "evidence_ids" in data:
                data["evidence_ids"] = "请先上传至少一张整改后照片并勾选。"
            return await self._hazard(request, hazard_id, db_session, actor, errors=data, values=values, status=422)
        service = RectificationService(db_session, actor, request.app.state.settings)
        failed = await attempt(db_session, service.submit_proof(hazard_id, data))
        if failed is not None:
            return await self._hazard(request, hazard_id, db_session, actor, errors=refusal(failed), values=values, status=failed.status)
        return Redirect(f"{PREFIX}/hazards/{hazard_id}?done=rectified", status_code=303)

    @post("/hazards/{hazard_id:uuid}/plan", guards=[only(Role.enterprise)], status_code=303)
    async def plan(
        self,
        request: Request[Any, Any, Any],
        hazard_id: FromPath[uuid.UUID],
        db_session: NamedDependency[AsyncSession],
        actor: NamedDependency[Actor],
    ) -> Response[Any]:
        await HazardService(db_session, actor).get(hazard_id)
        values = await form_of(request)
        data = parse(GovernancePlanIn, values)
        if isinstance(data, dict):
            return await self._hazard(request, hazard_id, db_session, actor, plan_errors=data, plan_values=values, status=422)
        service = RectificationService(db_session, actor, request.app.state.settings)
        failed = await attempt(db_session, service.add_plan(hazard_id, data))
        if failed is not None:
            return await self._hazard(
                request, hazard_id, db_session, actor, plan_errors=refusal(failed), plan_values=values, status=failed.status
            )
        return Redirect(f"{PREFIX}/hazards/{hazard_id}?done=planned", status_code=303)

    @post("/hazards/{hazard_id:uuid}/photos", guards=[only(Role.enterprise, Role.inspector)], status_code=201, request_max_body_size=None)
    async def photo(
        self,
        request: Request[Any, Any, Any],
        hazard_id: FromPath[uuid.UUID],
        db_session: NamedDependency[AsyncSession],
        actor: NamedDependency[Actor],
    ) -> Response[dict[str, Any]]:
        """One photo of the hazard, sent by the page's script (with progress); answers JSON for the script."""
        state = request.app.state
        await HazardService(db_session, actor).get(hazard_id)
        evidence = EvidenceService(db_session, actor, state.store, state.settings)
        received = receive_evidence(request, evidence, {"hazard_id": str(hazard_id), "kind": EvidenceKind.photo})
        return await for_script(db_session, received, lambda done: _photo_json(done[0]), 201)

    @post("/hazards/{hazard_id:uuid}/uploads", guards=[only(Role.enterprise, Role.inspector)], status_code=201)
    async def start_upload(
        self,
        request: Request[Any, Any, Any],
        hazard_id: FromPath[uuid.UUID],
        db_session: NamedDependency[AsyncSession],
        actor: NamedDependency[Actor],
    ) -> Response[dict[str, Any]]:
        """A large photo: the presigned upload of the evidence API, started for this hazard."""
        state = request.app.state
        await HazardService(db_session, actor).get(hazard_id)
        try:
            body = await request.json()
        except Exception:
            body = None
        if not isinstance(body, dict):
            return Response({"error": "请求内容不正确。"}, status_code=400)
        try:
            data = UploadIn.model_validate({**body, "kind": body.get("kind", "photo"), "owner": {"hazard_id": str(hazard_id)}})
        except ValidationError as exc:
            return Response({"error": next(iter(words.form_errors(exc).values()))}, status_code=422)
        started = EvidenceService(db_session, actor, state.store, state.settings).start_upload(data)
        return await for_script(db_session, started, lambda done: {"evidence_id": str(done[0].id), "upload_url": done[1]}, 201)

    @post("/evidence/{evidence_id:uuid}/complete", guards=[only(Role.enterprise, Role.inspector)], status_code=200)
    async def complete_upload(
        self,
        request: Request[Any, Any, Any],
        evidence_id: FromPath[uuid.UUID],
        db_session: NamedDependency[AsyncSession],
        actor: NamedDependency[Actor],
    ) -> Response[dict[str, Any]]:
        state = request.app.state
        service = EvidenceService(db_session, actor, state.store, state.settings)
        await service.get(evidence_id)
        return await for_script(db_session, service.complete_upload(evidence_id), _photo_json)

    @get("/documents")
    async def documents(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]
    ) -> Template:
        """The enforcement documents issued on the cases the caller may see: for an enterprise, those addressed to it."""
        cases = scope.readable(actor, Case).subquery()
        query = (
            select(
                col(IssuedDocument.case_id),
                col(IssuedDocument.type),
                col(IssuedDocument.target),
                col(IssuedDocument.number),
                col(IssuedDocument.issued_at),
                cases.c.title,
            )
            .join(cases, cases.c.id == col(IssuedDocument.case_id))
            .order_by(col(IssuedDocument.issued_at).desc())
            .limit(100)
        )
        rows = (await db_session.execute(query)).all()
        return render(request, "documents.html", documents=rows)

    # --- leaders and supervisors ----------------------------------------------------------------------------

    @get("/dashboard", guards=[only(*STAFF)])
    async def dashboard(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]
    ) -> Template:
        zone = request.app.state.settings.timezone
        by_topic = await hazard_stats(db_session, actor, "topic")
        series = [charts.Series(s, words.HAZARD_STATUS[s], STATUS_COLORS[s]) for s in HazardStatus]
        rows = [(words.TOPICS.get(str(g.key), str(g.key)), g.by_status) for g in by_topic]
        topic_chart = charts.stacked_bars("by-topic", "各行业领域隐患（按状态）", rows, series)
        weekly = await figures.overdue_by_week(db_session, actor)
        points = [(words.local(at, zone)[5:], n) for at, n in weekly]
        overdue_chart = charts.line("overdue", "到期未销号隐患（近12周，每周一点）", points)
        plans = await figures.plan_progress(db_session, actor, request.app.state.settings)
        plan_chart = charts.progress("plans", "检查计划完成情况", [(p.label, p.planned, p.done) for p in plans]) if plans else None
        near = await figures.near_deadlines(db_session, actor)
        totals = {
            "total": sum(g.total for g in by_topic),
            "open": sum(g.by_status.get(s, 0) for g in by_topic for s in ("reported", "rectifying", "pending_review")),
            "overdue": sum(g.overdue for g in by_topic),
        }
        return render(
            request,
            "dashboard.html",
            by_topic=by_topic,
            topic_chart=topic_chart,
            overdue_chart=overdue_chart,
            weekly=points,
            plan_chart=plan_chart,
            plans=plans,
            near=near,
            totals=totals,
            topics=Topic,
        )

    # --- anything else under /console -----------------------------------------------------------------------

    @get("/{rest:path}", exclude_from_auth=True)
    async def not_found(self, rest: FromPath[str]) -> None:
        raise NotFound(f"no console page {quote(rest)}")


# Photos up to this size go in one request (with progress); larger ones take the presigned upload to the store.
DIRECT_UPLOAD_BYTES = 8 * 1024 * 1024


def _photo_json(record: Evidence) -> dict[str, Any]:
    out = evidence_out(record).model_dump(mode="json")
    return {
        **out,
        "thumbnail_url": f"{PREFIX}/evidence/{record.id}/thumbnail" if record.thumbnail_key else None,
        "content_url": f"{PREFIX}/evidence/{record.id}/content",
    }
