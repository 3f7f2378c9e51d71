"""Authentication (JWT bearer tokens, argon2 password hashes off the event loop) and the role guards every route uses.

The login throttle lives in the database, shared by every process: `backend/accounts/login.py`."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any, TypeVar

import anyio
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.security.jwt import JWTAuth, Token
from sqlalchemy import select
from sqlmodel import col

from backend.accounts.models import Agency, User
from backend.audit import Actor
from backend.errors import ErrorCode, Forbidden
from backend.settings import ARGON2_MEMORY_KIB, ARGON2_PARALLELISM, ARGON2_TIME_COST, Settings

T = TypeVar("T")


@dataclass(frozen=True)
class Argon2Parameters:
    """argon2id's costs (the defaults and why: `backend/settings.py`); salt 16 bytes, tag 32 bytes (RFC 9106 §4)."""

    time_cost: int = ARGON2_TIME_COST
    memory_kib: int = ARGON2_MEMORY_KIB
    parallelism: int = ARGON2_PARALLELISM

    @classmethod
    def of(cls, settings: Settings) -> Argon2Parameters:
        return cls(settings.password_hash_time_cost, settings.password_hash_memory_kib, settings.password_hash_parallelism)

    def hasher(self) -> PasswordHasher:
        return PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_kib,
            parallelism=self.parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )


@dataclass(frozen=True)
class Verified:
    ok: bool
    needs_rehash: bool = False  # the hash was made with other parameters than the current ones


# How much nicer than the rest of the process the hashing threads run: when the CPUs are busy, the event loop
# (and the database, on the same machine) go first and the logins wait, instead of the other way round.
HASHING_NICENESS = 10


def _lower_priority() -> None:
    """Runs once in each hashing thread. On Linux the nice value belongs to the thread; elsewhere, nothing happens."""
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + HASHING_NICENESS))
    except (AttributeError, OSError):  # pragma: no cover - a platform without per-thread priorities
        pass


class PasswordHashing:
    """argon2 in threads of its own, at most `concurrency` at a time: a burst of logins queues (in the event loop,
    on `limiter`) for a hashing slot while the event loop goes on serving every other request, and the hashing
    threads run at a lower priority, so they take only the CPU time nothing else wants.

    One per process and set of parameters (`password_hashing`): the CPUs it shares out are the process's."""

    def __init__(self, parameters: Argon2Parameters, concurrency: int) -> None:
        self.parameters = parameters
        self.hasher = parameters.hasher()
        self.limiter = anyio.CapacityLimiter(concurrency)
        self._threads = ThreadPoolExecutor(concurrency, thread_name_prefix="argon2", initializer=_lower_priority)
        self._dummy_hash: str | None = None

    async def _in_thread(self, call: Callable[..., T], *args: Any) -> T:
        async with self.limiter:
            return await asyncio.get_running_loop().run_in_executor(self._threads, call, *args)

    async def hash(self, password: str) -> str:
        return await self._in_thread(self.hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> Verified:
        """Whether `password` matches; without a hash (no such user) one verification is spent all the same, so an
        unknown username takes as long as a wrong password."""
        return await self._in_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> Verified:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash("not-a-real-password")
        try:
            self.hasher.verify(password_hash or self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return Verified(ok=False)
        if password_hash is None:
            return Verified(ok=False)
        return Verified(ok=True, needs_rehash=self.hasher.check_needs_rehash(password_hash))


@cache
def _password_hashing(parameters: Argon2Parameters, concurrency: int) -> PasswordHashing:
    return PasswordHashing(parameters, concurrency)


def password_hashing(settings: Settings) -> PasswordHashing:
    """The process's hashing for these settings (two apps in one process share the one limiter)."""
    return _password_hashing(Argon2Parameters.of(settings), settings.password_hash_concurrency)


def hash_password(password: str, parameters: Argon2Parameters | None = None) -> str:
    """Blocking: for scripts, benchmarks and test data only. The service hashes through `PasswordHashing`."""
    return (parameters or Argon2Parameters()).hasher().hash(password)


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


# /console checks its own session cookie (backend/console/session.py) with the same tokens and user lookup
PUBLIC_PATHS = ["^/health", "^/api/v1/health", "^/api/v1/auth/login", "^/schema", "^/api/v1/public/", "^/console"]


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
