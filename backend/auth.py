"""Authentication (JWT bearer tokens, argon2 password hashes, login throttling) and the role guards every route uses."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.security.jwt import JWTAuth, Token
from sqlalchemy import select
from sqlmodel import col

from backend.accounts.models import Agency, User
from backend.audit import Actor
from backend.errors import ErrorCode, Forbidden, TooManyRequests
from backend.settings import Settings

_hasher = PasswordHasher()
# Verifying against this keeps a login for an unknown user as slow as one with a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def _retrieve_actor(token: Token, connection: ASGIConnection[Any, Any, Any, Any]) -> Actor | None:
    """Resolve the token's user on every request, so a deactivated account loses access at once."""
    try:
        user_id = uuid.UUID(token.sub)
    except ValueError:
        return None
    async with connection.app.state.sessionmaker() as session:
        row = (
            await session.execute(
                select(User, col(Agency.path)).outerjoin(Agency, col(Agency.id) == col(User.agency_id)).where(col(User.id) == user_id)
            )
        ).first()
    if row is None or not row[0].is_active:
        return None
    user, agency_path = row
    return actor_for(user, agency_path)


def actor_for(user: User, agency_path: str | None, request_id: str | None = None) -> Actor:
    return Actor(
        user_id=user.id,
        username=user.username,
        role=user.role,
        agency_id=user.agency_id,
        agency_path=agency_path,
        enterprise_id=user.enterprise_id,
        request_id=request_id,
    )


PUBLIC_PATHS = ["^/health", "^/api/v1/health", "^/api/v1/auth/login", "^/schema", "^/api/v1/public/"]


def make_jwt_auth(settings: Settings) -> JWTAuth[Actor, Token]:
    return JWTAuth[Actor, Token](
        token_secret=settings.secret_key,
        retrieve_user_handler=_retrieve_actor,
        exclude=PUBLIC_PATHS,
        default_token_expiration=timedelta(minutes=settings.token_ttl_minutes),
        accepted_issuers=["safety-enforcement"],
    )


def issue_token(jwt_auth: JWTAuth[Actor, Token], user: User) -> str:
    return jwt_auth.create_token(identifier=str(user.id), token_issuer="safety-enforcement")


def provide_actor(request: Request[Any, Any, Any]) -> Actor:
    """The authenticated actor, stamped with this request's id for the audit log."""
    return dataclasses.replace(request.user, request_id=request.state.get("request_id"))


def requires_role(*roles: str) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]:
    allowed = frozenset(roles)

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if connection.user.role not in allowed:
            raise Forbidden(
                f"this action needs the role {' or '.join(sorted(allowed))}; you are {connection.user.role}",
                code=ErrorCode.ROLE_FORBIDDEN,
            )

    guard.__name__ = f"requires_role_{'_'.join(sorted(allowed))}"
    return guard


class LoginThrottle:
    """Counts failed logins per (username, client address) over a sliding window; too many answer 429."""

    def __init__(self, max_failures: int, window_seconds: int) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        now = time.monotonic()
        entries = self._failures[key]
        while entries and entries[0] < now - self.window:
            entries.popleft()
        return entries

    def check(self, username: str, client: str) -> None:
        entries = self._recent((username.lower(), client))
        if len(entries) >= self.max_failures:
            retry = int(entries[0] + self.window - time.monotonic()) + 1
            raise TooManyRequests(f"too many failed logins for {username}; try again in {retry} s", code=ErrorCode.LOGIN_THROTTLED)

    def failed(self, username: str, client: str) -> None:
        self._recent((username.lower(), client)).append(time.monotonic())

    def succeeded(self, username: str, client: str) -> None:
        self._failures.pop((username.lower(), client), None)
