"""The Litestar application: wiring of settings, database, object store, auth, errors and the domain routers."""

from __future__ import annotations

import gc
import logging
import re
import uuid
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from backend.accounts.controller import AgencyController, AuthController, EnterpriseController, UserController
from backend.accounts.service import AccountService
from backend.audit import Actor
from backend.auth import make_jwt_auth, password_hashing, provide_actor
from backend.checklists.controller import ChecklistController
from backend.checklists.service import ChecklistService
from backend.cli import SafetyCLIPlugin
from backend.db import make_engine, make_sessionmaker
from backend.enforcement.controller import CaseController, discretion, public_decision_list
from backend.errors import exception_handlers
from backend.evidence.controller import EvidenceController
from backend.hazards.controller import HazardController, lookbacks_due, stats_hazards
from backend.health import health
from backend.inspections.controller import InspectionController
from backend.openapi import document_errors
from backend.settings import Settings, get_settings
from backend.storage import ObjectStore, S3Config
from backend.sync.controller import sync_changes
from backend.unit_of_work import lost_race_handlers, provide_db_session

logger = logging.getLogger("backend")

API_PREFIX = "/api/v1"
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


def _request_id_outermost(app_config: AppConfig) -> AppConfig:
    """Runs after the auth plugin has added its middleware, so even a 401 carries the request id."""
    app_config.middleware.insert(0, request_id_middleware)
    return app_config


def store_config(settings: Settings) -> S3Config:
    if not settings.s3_endpoint:
        raise RuntimeError(
            "S3_ENDPOINT is not set. Use `safety serve`, which starts an embedded SeaweedFS, or point S3_ENDPOINT, "
            "S3_ACCESS_KEY and S3_SECRET_KEY at an S3-compatible store."
        )
    endpoint = settings.s3_endpoint.removeprefix("http://").removeprefix("https://").rstrip("/")
    secure = settings.s3_secure or settings.s3_endpoint.startswith("https://")
    return S3Config(
        endpoint=endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        bucket=settings.s3_bucket,
        secure=secure,
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    jwt_auth = make_jwt_auth(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        engine = make_engine(settings.database_url)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.store = ObjectStore(store_config(settings))
        app.state.jwt_auth = jwt_auth
        app.state.passwords = password_hashing(settings)  # argon2 in worker threads, a bounded number at once
        try:
            await app.state.store.ensure_bucket()
        except Exception:  # the service still starts; /health names the store as failing
            logger.exception("object store not reachable at start-up")
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
        try:
            yield
        finally:
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
        ],
    )
    app = Litestar(
        route_handlers=[health, api],
        lifespan=[lifespan],
        dependencies={
            "db_session": Provide(provide_db_session),  # the request's unit of work
            "actor": Provide(provide_actor, sync_to_thread=False),
        },
        exception_handlers={**exception_handlers, **lost_race_handlers},  # type: ignore[dict-item]
        on_app_init=[jwt_auth.on_app_init, _request_id_outermost],
        plugins=[SafetyCLIPlugin()],
        openapi_config=OpenAPIConfig(
            title="安全生产执法检查与隐患排查治理 API",
            version="1.0.0",
            description="Mobile API v1: inspections, evidence, hazards, enforcement cases. See mobile_api_spec/README.md.",
            path="/schema",
        ),
        request_max_body_size=settings.max_upload_bytes,
        debug=False,
    )
    document_errors(app)  # problem details and binary media types in the OpenAPI document
    return app
