"""The login: a throttle kept in the database, shared by every process, and argon2 off the event loop.

A login runs in three steps, so that no database connection (nor SQLite's write lock) is held while argon2 works,
and a failed attempt is on record whatever the answer:

1. `_admit`, in a short transaction of its own, committed before the password is looked at. Under a lock on the
   client address (PostgreSQL: a transaction-level advisory lock; SQLite: `BEGIN IMMEDIATE`, one writer at a time)
   it counts the failures within the window for the username and address and for the address alone, reads the
   account, and then either refuses (`429 login_throttled` with `Retry-After`; argon2 never runs, nothing is
   written) or records this attempt as a failure in advance and deletes a batch of rows older than the window.
   Counting and recording under one lock is what holds racing guesses to the limit: of 20 at once for one
   username, 5 are admitted. (An attempt still being checked counts, for the address too.)
2. The password is verified in a hashing thread (`backend.auth.PasswordHashing`); an unknown username costs one
   verification as well. A wrong password is `401`, and the failure is already committed.
3. Only on success, in the request's unit of work: the failures of the username and address (this attempt's
   included) are deleted, and a hash made with other argon2 parameters is replaced, with its audit row.

This is the one place outside `provide_db_session` that commits: the throttle's record has to outlive the 401 that
the request's unit of work rolls back, and has to be written before argon2 runs, without holding a connection
through it. The rows are the throttle's working memory, not a change of anything: they carry no audit row.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta
from typing import Any, cast

import anyio
from argon2 import extract_parameters
from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from backend import audit
from backend.accounts.models import LoginFailure, User
from backend.audit import Actor
from backend.auth import PasswordHashing
from backend.clock import now
from backend.db import SQLITE_WRITE, is_postgres
from backend.errors import ErrorCode, TooManyRequests, Unauthorized
from backend.settings import Settings

# Expired rows a login attempt deletes at most: far more than the one row an attempt adds, so they cannot pile up.
PRUNE_BATCH = 200
# First key of pg_advisory_xact_lock(int, int) for the login throttle; the second is derived from the address.
# (The two-key form has a key space of its own, apart from single-bigint advisory locks.)
ADVISORY_NAMESPACE = 0x6C6F67  # "log"
USERNAME_LENGTH, ADDRESS_LENGTH = 150, 64  # the columns' lengths
# Admissions (step 1) running at once in this process. Those for one address wait for each other on the database
# lock anyway; waiting here instead, without a connection, keeps a burst of logins from taking the whole pool while
# they queue, so other requests still get connections at once. A few milliseconds each: hundreds a second.
ADMISSIONS = anyio.CapacityLimiter(2)


def _lock_key(address: str) -> int:
    return int.from_bytes(hashlib.sha256(address.encode()).digest()[:4], "big", signed=True)


def _argon2_costs(password_hash: str) -> dict[str, Any]:
    parameters = extract_parameters(password_hash)
    return {"time_cost": parameters.time_cost, "memory_kib": parameters.memory_cost, "parallelism": parameters.parallelism}


class Logins:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, passwords: PasswordHashing) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.passwords = passwords

    async def authenticate(self, session: AsyncSession, username: str, password: str, address: str, request_id: str | None) -> User:
        """The user these credentials open; `session` is the request's unit of work (written to on success only)."""
        username = username.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL, and no username has one
        key, address = username.lower()[:USERNAME_LENGTH], address[:ADDRESS_LENGTH]  # lower() may lengthen it
        user = await self._admit(key, username, address)
        verified = await self.passwords.verify(user.password_hash if user else None, password)
        if user is None or not verified.ok or not user.is_active:
            raise Unauthorized("wrong username or password", code=ErrorCode.INVALID_CREDENTIALS)
        new_hash = await self.passwords.hash(password) if verified.needs_rehash else None

        await session.execute(delete(LoginFailure).where(col(LoginFailure.username) == key, col(LoginFailure.address) == address))
        if new_hash is not None:
            rehash = (
                update(User)
                .where(col(User.id) == user.id, col(User.password_hash) == user.password_hash)  # unless a racing login did
                .values(password_hash=new_hash)
            )
            if cast("CursorResult[Any]", await session.execute(rehash)).rowcount == 1:
                actor = Actor(user_id=user.id, username=user.username, role=user.role, request_id=request_id)
                changed = {"from": _argon2_costs(user.password_hash), "to": _argon2_costs(new_hash)}
                audit.record(session, actor, "user.password_rehash", "user", user.id, changed)
            user.password_hash = new_hash
        return user

    async def _admit(self, key: str, username: str, address: str) -> User | None:
        """Step 1 (see the module's docstring): refuse, or record the attempt as a failure; and read the account.

        Four statements when admitted (lock, count and read, insert, prune), on a connection held for milliseconds."""
        settings = self.settings
        window = timedelta(seconds=settings.login_window_seconds)
        refusal: TooManyRequests | None = None
        async with ADMISSIONS, self.sessionmaker(execution_options=SQLITE_WRITE) as session, session.begin():
            if is_postgres(session):
                await session.execute(select(func.pg_advisory_xact_lock(ADVISORY_NAMESPACE, _lock_key(address))))
            at = now()
            since = at - window
            mine = col(LoginFailure.username) == key
            failures = (
                select(
                    func.count().filter(mine).label("key_failures"),
                    func.min(col(LoginFailure.at)).filter(mine).label("key_oldest"),
                    func.count().label("address_failures"),
                    func.min(col(LoginFailure.at)).label("address_oldest"),
                )
                .where(col(LoginFailure.address) == address, col(LoginFailure.at) >= since)
                .subquery()
            )
            query = select(failures, User).select_from(failures).outerjoin(User, col(User.username) == username)
            key_failures, key_oldest, address_failures, address_oldest, user = (await session.execute(query)).one()
            if key_failures >= settings.login_max_failures:
                refusal = self._throttled(f"too many failed logins for {username}", key_oldest, window, at)
            elif address_failures >= settings.login_max_failures_per_address:
                refusal = self._throttled("too many failed logins from this address", address_oldest, window, at)
            else:
                session.add(LoginFailure(username=key, address=address, at=at))
                await session.flush()
                # a batch of rows older than the window; rows another login is deleting (locked) are left to it
                expired = (
                    select(col(LoginFailure.id)).where(col(LoginFailure.at) < since).limit(PRUNE_BATCH).with_for_update(skip_locked=True)
                )
                await session.execute(delete(LoginFailure).where(col(LoginFailure.id).in_(expired.scalar_subquery())))
        if refusal is not None:
            raise refusal
        return cast("User | None", user)

    @staticmethod
    def _throttled(reason: str, oldest: datetime | None, window: timedelta, at: datetime) -> TooManyRequests:
        wait = max(1, math.ceil(((oldest or at) + window - at).total_seconds()))
        return TooManyRequests(f"{reason}; try again in {wait} s", code=ErrorCode.LOGIN_THROTTLED, headers={"Retry-After": str(wait)})
