"""The login under load: a throttle kept in the database (atomic, shared by processes, bounded) and argon2 in
bounded worker threads, never on the event loop."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlmodel import col

from backend.accounts.login import PRUNE_BATCH
from backend.accounts.models import LoginFailure, User
from backend.audit import AuditLog
from backend.auth import PasswordHashing
from backend.clock import now
from tests.conftest import serving
from tests.helpers import USER_PASSWORD, World, assert_problem

LOGIN = "/api/v1/auth/login"


async def login(client: httpx.AsyncClient, username: str, password: str = USER_PASSWORD) -> httpx.Response:
    return await client.post(LOGIN, json={"username": username, "password": password})


async def failures(world: World, **where: str) -> int:
    async with world.app.state.sessionmaker() as session:
        query = select(func.count()).select_from(LoginFailure)
        for name, value in where.items():
            query = query.where(getattr(LoginFailure, name) == value)
        return (await session.execute(query)).scalar_one()


def assert_throttled(response: httpx.Response, window: int) -> None:
    assert_problem(response, 429, "login_throttled")
    assert 1 <= int(response.headers["retry-after"]) <= window


class WatchedHasher:
    """Wraps the argon2 hasher to see which thread runs each call and how many run at once; with a `gate`, every
    call waits for it, so a test can hold hashing slots busy."""

    def __init__(self, inner: PasswordHasher, gate: threading.Event | None = None) -> None:
        self.inner = inner
        self.gate = gate
        self.threads: list[threading.Thread] = []
        self.niceness: list[int] = []
        self.verifications = 0
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def _watch(self, call: Callable[..., Any], *args: Any) -> Any:
        with self._lock:
            self.threads.append(threading.current_thread())
            self.niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if self.gate is not None:
                assert self.gate.wait(timeout=30)
            return call(*args)
        finally:
            with self._lock:
                self.running -= 1

    def hash(self, password: str) -> str:
        return self._watch(self.inner.hash, password)

    def verify(self, password_hash: str, password: str) -> bool:
        with self._lock:
            self.verifications += 1
        return self._watch(self.inner.verify, password_hash, password)

    def check_needs_rehash(self, password_hash: str) -> bool:
        return self.inner.check_needs_rehash(password_hash)


@pytest.fixture
def watched(world: World, monkeypatch: pytest.MonkeyPatch) -> WatchedHasher:
    passwords: PasswordHashing = world.app.state.passwords
    hasher = WatchedHasher(passwords.hasher)
    monkeypatch.setattr(passwords, "hasher", hasher)
    return hasher


@pytest.fixture
async def second_app(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """Another instance of the service on the same database, as a second worker process would be."""
    async with serving(world.app.state.settings) as other:
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://other-worker.local") as client:
            yield client


async def test_racing_wrong_passwords_admit_exactly_the_limit(world: World) -> None:
    settings = world.app.state.settings
    answers = await asyncio.gather(*(login(world.client, "inspector_b", f"guess-{n}") for n in range(20)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [401] * settings.login_max_failures + [429] * (20 - settings.login_max_failures)
    for response in answers:
        if response.status_code == 429:
            assert_throttled(response, settings.login_window_seconds)
        else:
            assert_problem(response, 401, "invalid_credentials")
    assert await failures(world) == settings.login_max_failures  # refused guesses leave nothing behind
    # the right password is refused too while the window lasts; the account is safe, not locked for others
    assert_throttled(await login(world.client, "inspector_b"), settings.login_window_seconds)
    assert (await login(world.client, "inspector_a1")).status_code == 200


async def test_usernames_are_throttled_case_blind_and_success_clears_the_key(world: World) -> None:
    limit = world.app.state.settings.login_max_failures
    for n in range(limit - 1):
        assert_problem(await login(world.client, "Inspector_B" if n % 2 else "inspector_b", "guess"), 401)
    assert (await login(world.client, "inspector_b")).status_code == 200
    assert await failures(world) == 0
    for _ in range(limit):
        assert_problem(await login(world.client, "INSPECTOR_B", "guess"), 401)
    assert_problem(await login(world.client, "inspector_b"), 429, "login_throttled")


async def test_the_throttle_is_shared_by_every_instance(world: World, second_app: httpx.AsyncClient) -> None:
    limit = world.app.state.settings.login_max_failures
    for n in range(limit):
        client = world.client if n % 2 else second_app
        assert_problem(await login(client, "inspector_b", "guess"), 401)
    for client in (world.client, second_app):
        assert_throttled(await login(client, "inspector_b"), world.app.state.settings.login_window_seconds)
    assert (await login(second_app, "inspector_a1")).status_code == 200


async def test_an_address_spraying_usernames_is_refused_without_hashing(world: World, watched: WatchedHasher) -> None:
    settings = world.app.state.settings
    limit = settings.login_max_failures_per_address
    answers = await asyncio.gather(*(login(world.client, f"nobody-{uuid.uuid4().hex}", "guess") for _ in range(limit + 10)))
    assert sorted(r.status_code for r in answers) == [401] * limit + [429] * 10
    assert watched.verifications == limit  # a refused attempt never reaches argon2
    assert await failures(world) == limit  # and leaves no row: the table grows no further
    for _ in range(3):
        refused = await login(world.client, f"nobody-{uuid.uuid4().hex}", "guess")
        assert_throttled(refused, settings.login_window_seconds)
        assert "from this address" in refused.json()["detail"]
    assert_problem(await login(world.client, "inspector_a1"), 429, "login_throttled")  # the whole address waits
    assert watched.verifications == limit and await failures(world) == limit

    elsewhere = httpx.ASGITransport(app=world.app, client=("203.0.113.7", 4711))
    async with httpx.AsyncClient(transport=elsewhere, base_url="http://testserver.local") as other:
        assert_problem(await login(other, f"nobody-{uuid.uuid4().hex}", "guess"), 401, "invalid_credentials")
        assert (await login(other, "inspector_a1")).status_code == 200


async def test_failures_older_than_the_window_are_pruned_and_do_not_count(world: World) -> None:
    window = timedelta(seconds=world.app.state.settings.login_window_seconds)
    old = now() - window - timedelta(minutes=1)
    expired = PRUNE_BATCH + 50 + 10
    async with world.app.state.sessionmaker() as session:
        session.add_all(LoginFailure(username=f"user{n}", address=f"198.51.100.{n % 250}", at=old) for n in range(PRUNE_BATCH + 50))
        session.add_all(LoginFailure(username="inspector_b", address="127.0.0.1", at=old) for _ in range(10))
        session.add(LoginFailure(username="kept", address="198.51.100.1", at=now()))
        await session.commit()

    assert (await login(world.client, "inspector_b")).status_code == 200  # 10 old failures: not throttled
    assert await failures(world) <= expired - PRUNE_BATCH + 1  # one login deleted a whole batch of old rows
    assert_problem(await login(world.client, "nobody", "guess"), 401)
    assert await failures(world) == 2  # the recent row and the new failure; every old row is gone
    assert await failures(world, username="kept") == 1


async def test_hashing_runs_in_worker_threads_a_bounded_number_at_once(world: World, watched: WatchedHasher) -> None:
    passwords: PasswordHashing = world.app.state.passwords
    slots = int(passwords.limiter.total_tokens)
    names = ["inspector_a1", "inspector_a2", "inspector_b", "inspector_city", "legal_city", "enterprise_a", "nobody"]
    answers = await asyncio.gather(*(login(world.client, name) for name in names for _ in range(2)))
    assert sorted({r.status_code for r in answers}) == [200, 401]
    created = await world.post(
        "admin",
        "/api/v1/users",
        {
            "username": "newcomer",
            "password": "a-new-password",
            "display_name": "新人",
            "role": "legal_reviewer",
            "agency_id": str(world.agencies["city"].id),
        },
    )
    assert created.status_code == 201, created.text
    loop_thread = threading.current_thread()  # the tests run in the app's event loop
    assert watched.threads and all(thread is not loop_thread and thread.name.startswith("argon2") for thread in watched.threads)
    loop_niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert all(niceness > loop_niceness for niceness in watched.niceness)  # the event loop goes first for the CPUs
    assert watched.most <= slots
    assert (await login(world.client, "newcomer", "a-new-password")).status_code == 200


async def test_a_login_burst_does_not_hold_up_other_requests(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every hashing slot is held busy (the hasher waits for a gate) while more logins queue for one; meanwhile an
    authenticated GET is answered, because nothing of the login blocks the event loop or holds a connection."""
    passwords: PasswordHashing = world.app.state.passwords
    slots = int(passwords.limiter.total_tokens)
    gate = threading.Event()
    watched = WatchedHasher(passwords.hasher, gate)
    monkeypatch.setattr(passwords, "hasher", watched)
    names = ["inspector_a1", "inspector_a2", "inspector_b", "inspector_city", "legal_city", "enterprise_a", "enterprise_b"]
    burst = [asyncio.create_task(login(world.client, names[n % len(names)])) for n in range(slots + 4)]
    try:
        for _ in range(1000):
            if watched.running == slots:
                break
            await asyncio.sleep(0.01)
        assert watched.running == slots
        me = await world.get("inspector_a1", "/api/v1/auth/me")
        assert me.status_code == 200
        assert (await world.client.get("/health")).status_code == 200
        assert not any(task.done() for task in burst)  # the logins are still waiting for argon2
    finally:
        gate.set()
    assert [r.status_code for r in await asyncio.gather(*burst)] == [200] * len(burst)
    assert watched.most == slots


async def test_a_hash_with_older_parameters_is_replaced_at_login(world: World) -> None:
    user_id = world.users["inspector_a1"].id
    legacy = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(USER_PASSWORD)  # RFC 9106's second option
    async with world.app.state.sessionmaker() as session:
        user = await session.get(User, user_id)
        assert user is not None
        user.password_hash = legacy
        await session.commit()

    assert (await login(world.client, "inspector_a1")).status_code == 200
    parameters = world.app.state.passwords.parameters
    async with world.app.state.sessionmaker() as session:
        stored = (await session.execute(select(col(User.password_hash)).where(col(User.id) == user_id))).scalar_one()
        audits = list((await session.execute(select(AuditLog).where(col(AuditLog.action) == "user.password_rehash"))).scalars())
    assert stored.startswith(f"$argon2id$v=19$m={parameters.memory_kib},t={parameters.time_cost},p={parameters.parallelism}$")
    assert [(a.entity_id, a.actor_id) for a in audits] == [(str(user_id), user_id)]
    assert audits[0].data == {
        "from": {"time_cost": 3, "memory_kib": 65536, "parallelism": 4},
        "to": {"time_cost": parameters.time_cost, "memory_kib": parameters.memory_kib, "parallelism": parameters.parallelism},
    }

    assert (await login(world.client, "inspector_a1")).status_code == 200  # the new hash verifies, and stays
    async with world.app.state.sessionmaker() as session:
        count = select(func.count()).select_from(AuditLog).where(col(AuditLog.action) == "user.password_rehash")
        assert (await session.execute(count)).scalar_one() == 1


async def test_odd_usernames_are_wrong_credentials(world: World) -> None:
    """A username that lengthens when lower-cased is a wrong login like any other, and throttled; one holding a NUL
    is refused as input before anything is looked up."""
    assert_problem(await login(world.client, "İ" * 150, "guess"), 401, "invalid_credentials")
    for username in ("inspector_b\x00", "\x00"):
        assert_problem(await login(world.client, username, "guess"), 400, "validation_error", field="username")
    for _ in range(world.app.state.settings.login_max_failures - 1):
        assert_problem(await login(world.client, "İ" * 150, "guess"), 401)
    assert_problem(await login(world.client, "İ" * 150, "guess"), 429, "login_throttled")
