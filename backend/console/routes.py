"""The console as one router under /console: its pages, its static files, its session check and its error pages."""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.security.jwt import JWTAuth, Token
from litestar.static_files import create_static_files_router

from backend.audit import Actor
from backend.console.controller import ConsoleController
from backend.console.errors import exception_handlers
from backend.console.session import PREFIX, console_auth_middleware

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def console_router(jwt_auth: JWTAuth[Actor, Token]) -> Router:
    static = create_static_files_router(
        path="/static",
        directories=[STATIC],
        include_in_schema=False,
        opt={"exclude_from_auth": True},
        cache_control=None,
    )
    return Router(
        path=PREFIX,
        route_handlers=[ConsoleController, static],
        middleware=[console_auth_middleware(jwt_auth)],
        exception_handlers=exception_handlers,
        include_in_schema=False,
    )
