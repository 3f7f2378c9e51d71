"""The Litestar application: wiring of settings, database, object store, auth, errors and the domain routers."""

from __future__ import annotations

import gc
import logging
import re
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy import event

from backend.accidents.controller import AccidentController, evaluations_due, public_evaluation_list, stats_accidents
from backend.accounts.controller import AgencyController, AuthController, EnterpriseController, UserController
from backend.accounts.service import AccountService
from backend.audit import Actor
from backend.auth import make_jwt_auth, password_hashing, provide_actor
from backend.checklists.controller import ChecklistController
from backend.checklists.service import ChecklistService
from backend.cli import SafetyCLIPlugin
from backend.console.routes import TEMPLATES, console_router
from backend.db import make_engine, make_sessionmaker
from backend.enforcement.controller import CaseController, discretion, public_decision_list
from backend.enforcement.documents import use_font
from backend.errors import exception_handlers
from backend.evidence.controller import EvidenceController
from backend.evidence.media import PhotoLimits, configure_photo_limits
from backend.faults import DATABASE, OBJECT_STORE, DependencyUnavailable, Outage
from backend.hazards.controller import ExportController, HazardController, lookbacks_due, stats_hazards
from backend.health import health
from backend.http import API_PREFIX
from backend.inspections.controller import InspectionController
from backend.integration.controller import WebhookController
from backend.integration.jobs import BackgroundJobs, startup_turn
from backend.limits import LimitedRequest, request_guard
from backend.openapi import document_errors
from backend.planning.controller import (
    ClassificationController,
    DrawController,
    PlanController,
    declare_conflict,
    list_tasks,
    public_draw_list,
)
from backend.settings import Settings, get_settings
from backend.storage import ObjectStore, S3Config
from backend.sync.controller import sync_changes
from backend.unit_of_work import lost_race_handlers, provide_db_session

logger = logging.getLogger("backend")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Give every request an id (the client's `X-Request-ID` when sane) for the audit log and the response."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)["X-Request-ID"] = request_id
            await send(message)

        await app(scope, receive, send_with_id)

    return middleware


def _outermost(settings: Settings) -> Callable[[AppConfig], AppConfig]:
    """Runs after the auth plugin has added its middleware: the request id first, so even a 401 carries it, then the
    checks of the request line and headers, so a malformed request is refused before authentication."""

    def arrange(app_config: AppConfig) -> AppConfig:
        app_config.middleware[:0] = [request_id_middleware, request_guard(settings.max_header_bytes)]
        return app_config

    return arrange


def _host_and_tls(endpoint: str, default_secure: bool) -> tuple[str, bool]:
    """`https://host[:port]`, `http://host[:port]` or `host[:port]` -> (host[:port], use TLS)."""
    secure = endpoint.startswith("https://") or (default_secure and not endpoint.startswith("http://"))
    return endpoint.removeprefix("http://").removeprefix("https://").rstrip("/"), secure


def store_config(settings: Settings) -> S3Config:
    if not settings.s3_endpoint:
        raise RuntimeError(
            "S3_ENDPOINT is not set. Use `safety serve`, which starts an embedded SeaweedFS, or point S3_ENDPOINT, "
            "S3_ACCESS_KEY and S3_SECRET_KEY at an S3-compatible store."
        )
    endpoint, secure = _host_and_tls(settings.s3_endpoint, settings.s3_secure)
    public, public_secure = _host_and_tls(settings.s3_public_endpoint, True) if settings.s3_public_endpoint else (None, False)
    return S3Config(
        endpoint=endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        bucket=settings.s3_bucket,
        secure=secure,
        public_endpoint=public,
        public_secure=public_secure,
        connect_timeout=settings.s3_connect_timeout,
        read_timeout=settings.s3_read_timeout,
        attempts=settings.s3_attempts,
    )


DOCS_ASSETS = "/schema/assets"


def docs_config() -> tuple[list[OpenAPIRenderPlugin], Router]:
    """Swagger UI (`/schema/swagger`) and ReDoc (`/schema`, `/schema/redoc`) with their files served by the app from
    the `openapi-ui-bundles` package, not from a CDN: the pages work on an intranet with no way out."""
    import openapi_ui_bundles

    favicon = f"<link rel='icon' type='image/png' href='{DOCS_ASSETS}/swagger-ui/favicon-32x32.png'>"
    swagger = f"{DOCS_ASSETS}/swagger-ui"
    plugins = [
        RedocRenderPlugin(js_url=f"{DOCS_ASSETS}/redoc/redoc.standalone.js", google_fonts=False, favicon=favicon),
        SwaggerRenderPlugin(
            js_url=f"{swagger}/swagger-ui-bundle.js",
            css_url=f"{swagger}/swagger-ui.css",
            standalone_preset_js_url=f"{swagger}/swagger-ui-standalone-preset.js",
            favicon=favicon,
        ),
        JsonRenderPlugin(),
        YamlRenderPlugin(),
    ]
    assets = Router(
        path=DOCS_ASSETS,
        route_handlers=[
            create_static_files_router(
                path=f"/{name}", directories=[bundle.static_path], include_in_schema=False, opt={"exclude_from_auth": True}
            )
            for name, bundle in (("swagger-ui", openapi_ui_bundles.swagger_ui), ("redoc", openapi_ui_bundles.redoc))
        ],
        include_in_schema=False,
    )
    return plugins, assets


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    jwt_auth = make_jwt_auth(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        use_font(settings.pdf_font_path, settings.pdf_font_index)  # stops start-up, naming the setting, when missing
        engine = make_engine(settings.database_url, connect_timeout=settings.database_connect_timeout)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.store = ObjectStore(store_config(settings))
        database = Outage(DATABASE)
        # A connection handed out (after its pre-ping) is the database answering: that ends an outage.
        event.listen(engine.sync_engine, "checkout", lambda *_: database.succeeded())
        app.state.outages = {DATABASE: database, OBJECT_STORE: app.state.store.outage}
        app.state.jwt_auth = jwt_auth
        app.state.passwords = password_hashing(settings)  # argon2 in worker threads, a bounded number at once
        configure_photo_limits(PhotoLimits.of(settings))  # pixels and decodes at once, for this process
        try:
            await app.state.store.ensure_bucket()
        except DependencyUnavailable:  # the service still starts; the outage is logged, /health names the store
            pass
        except Exception:
            logger.exception("object store refused the bucket check at start-up")
        async with startup_turn(engine):  # several processes starting at once take turns at what follows
            if settings.admin_password:
                async with app.state.sessionmaker() as session:
                    created = await AccountService(session, Actor.system("startup"), app.state.passwords).ensure_admin(
                        settings.admin_username, settings.admin_password
                    )
                    if created:
                        logger.info("created the first admin %s", settings.admin_username)
            if settings.checklists_dir.is_dir():
                await ChecklistService.load_directory(app.state.sessionmaker, settings.checklists_dir)
        # What start-up built (modules, routes, schemas: ~150,000 objects) lives as long as the process; kept out of
        # the cyclic garbage collector, a full collection during a burst of requests takes ~20 ms instead of ~100 ms
        # with the event loop stopped (bench/login_storm.py).
        gc.collect()
        gc.freeze()
        jobs = BackgroundJobs(settings)
        app.state.jobs = jobs
        if settings.jobs:
            jobs.start()
        try:
            yield
        finally:
            await jobs.stop()
            await engine.dispose()

    api = Router(
        path=API_PREFIX,
        route_handlers=[
            AuthController,
            AgencyController,
            UserController,
            EnterpriseController,
            ChecklistController,
            InspectionController,
            EvidenceController,
            HazardController,
            lookbacks_due,
            stats_hazards,
            sync_changes,
            CaseController,
            discretion,
            public_decision_list,
            ClassificationController,
            declare_conflict,
            PlanController,
            DrawController,
            list_tasks,
            public_draw_list,
            AccidentController,
            evaluations_due,
            public_evaluation_list,
            stats_accidents,
            ExportController,
            WebhookController,
        ],
    )
    docs_plugins, docs_assets = docs_config()
    app = Litestar(
        route_handlers=[health, api, docs_assets, console_router(jwt_auth)],
        lifespan=[lifespan],
        dependencies={
            "db_session": Provide(provide_db_session),  # the request's unit of work
            "actor": Provide(provide_actor, sync_to_thread=False),
        },
        exception_handlers={**exception_handlers, **lost_race_handlers},  # type: ignore[dict-item]
        on_app_init=[jwt_auth.on_app_init, _outermost(settings)],
        plugins=[SafetyCLIPlugin()],
        template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),  # the desk console's pages
        openapi_config=OpenAPIConfig(
            title="安全生产执法检查与隐患排查治理 API",
            version="1.0.0",
            description="Mobile API v1: inspections, evidence, hazards, enforcement cases. See mobile_api_spec/README.md.",
            path="/schema",
            render_plugins=docs_plugins,
        ),
        # JSON bodies; the login, a batch of results and the evidence upload set their own (backend/limits.py)
        request_max_body_size=settings.max_json_body_bytes,
        request_class=LimitedRequest,
        debug=False,
    )
    document_errors(app)  # problem details and binary media types in the OpenAPI document
    return app
