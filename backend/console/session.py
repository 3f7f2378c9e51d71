"""The desk console's login session and its CSRF protection.

- The session is the API's own bearer token (the same JWT, issuer and lifetime), kept in an HttpOnly, SameSite=Lax
  cookie scoped to `/console` (`Secure` with CONSOLE_COOKIE_SECURE). Every request resolves the user again through
  the API's `_retrieve_actor`, so a deactivated account is out on its next request, exactly as with the API.
- The JSON API under `/api/v1` never reads this cookie: it keeps bearer tokens only and so cannot be driven by a
  forged cross-site request. What the browser sends to the services (photos, presigned uploads) goes through console
  routes, which call the same services with the same actor.
- CSRF: every unsafe console request carries a token, as the form field `_csrf` or the header `X-CSRF-Token`, that is
  an HMAC (with the app's secret key) of the session cookie, or before login of a random pre-login cookie. A forged
  request from another site can send the cookie but cannot know the token. A request that authenticates with an
  `Authorization` header instead of the cookie cannot be forged by another site and needs no token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.middleware.authentication import AuthenticationResult
from litestar.security.jwt import JWTAuth, JWTAuthenticationMiddleware, Token

from backend.audit import Actor

PREFIX = "/console"
SESSION_COOKIE = "safety_console"
PRELOGIN_COOKIE = "safety_console_pre"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# reachable without a session: the login page and the static files
PUBLIC = [f"^{PREFIX}/login", f"^{PREFIX}/static/"]


class CsrfRefused(Exception):
    """An unsafe console request without the token that proves it came from the console's own page."""


class ConsoleAuthenticationMiddleware(JWTAuthenticationMiddleware):
    """The API's JWT check, reading the token from the console's cookie (or, for scripts, the Authorization header)."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = connection.headers.get(self.auth_header)
        token = header.partition(" ")[-1] if header else connection.cookies.get(SESSION_COOKIE)
        if not token:
            raise NotAuthorizedException("请先登录")
        return await self.authenticate_token(encoded_token=token, connection=connection)


def console_auth_middleware(jwt_auth: JWTAuth[Actor, Token]) -> DefineMiddleware:
    """The API's authentication middleware, with the same secret, issuer and user lookup, reading the cookie."""
    api = jwt_auth.middleware
    return DefineMiddleware(ConsoleAuthenticationMiddleware, *api.args, **{**api.kwargs, "exclude": PUBLIC})


def _mac(secret: str, basis: str) -> str:
    return hmac.new(secret.encode(), f"console-csrf:{basis}".encode(), hashlib.sha256).hexdigest()


def csrf_token(connection: ASGIConnection[Any, Any, Any, Any], basis: str | None = None) -> str:
    """The token the console's pages put in their forms: bound to this browser's session (or pre-login cookie)."""
    secret = connection.app.state.settings.secret_key
    basis = basis or connection.cookies.get(SESSION_COOKIE) or connection.cookies.get(PRELOGIN_COOKIE) or ""
    return _mac(secret, basis) if basis else ""


def new_prelogin() -> str:
    return secrets.token_urlsafe(24)


async def csrf_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Refuse an unsafe request from the cookie session that lacks this session's token."""
    if connection.scope.get("method", "GET") in SAFE_METHODS or connection.headers.get("Authorization"):
        return
    expected = csrf_token(connection)
    sent = connection.headers.get(CSRF_HEADER)
    if sent is None and connection.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        from litestar import Request

        form = await Request(connection.scope, connection.receive).form()  # cached in the scope for the handler
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise CsrfRefused


def session_cookie(token: str, max_age: int, secure: bool) -> Cookie:
    return Cookie(key=SESSION_COOKIE, value=token, path=PREFIX, httponly=True, samesite="lax", secure=secure, max_age=max_age)


def prelogin_cookie(value: str, secure: bool) -> Cookie:
    return Cookie(key=PRELOGIN_COOKIE, value=value, path=PREFIX, httponly=True, samesite="lax", secure=secure, max_age=3600)


def expired(key: str, secure: bool) -> Cookie:
    return Cookie(key=key, value="", path=PREFIX, httponly=True, samesite="lax", secure=secure, max_age=0)
