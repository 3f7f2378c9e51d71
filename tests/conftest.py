"""Test harness: a real database (PostgreSQL when one answers, else SQLite) migrated with Alembic, and a real
SeaweedFS started for the session. Each test starts from the freshly migrated, empty schema."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar
from minio import Minio
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import backend.tables  # noqa: F401
from backend.app import create_app
from backend.migrations import upgrade
from backend.settings import Settings
from backend.storage import EmbeddedSeaweed, S3Config
from tests.helpers import ADMIN_PASSWORD, World

logging.getLogger("httpx").setLevel(logging.WARNING)


def _postgres_answers(host: str = "127.0.0.1", port: int = 5432) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = os.environ.get("TEST_DATABASE_URL")
    if not base and _postgres_answers():
        base = "postgresql://postgres@127.0.0.1:5432/postgres"
    if base and base.startswith("postgres"):
        name = f"safety_test_{uuid.uuid4().hex[:10]}"
        admin_dsn = _asyncpg_dsn(base)

        async def admin(sql: str) -> None:
            conn = await asyncpg.connect(admin_dsn)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
        url = make_url(base.replace("postgresql+asyncpg://", "postgresql://")).set(database=name)
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSeaweed]:
    store = EmbeddedSeaweed(tmp_path_factory.mktemp("seaweedfs"), bucket="test-evidence")
    store.start()
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture(scope="session")
def settings(database_url: str, object_store: EmbeddedSeaweed, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    config: S3Config = object_store.config()
    os.environ.update(
        STATE_DIR=str(tmp_path_factory.mktemp("state")),
        DATABASE_URL=database_url,
        S3_ENDPOINT=config.endpoint,
        S3_ACCESS_KEY=config.access_key or "",
        S3_SECRET_KEY=config.secret_key or "",
        S3_BUCKET=config.bucket,
        ADMIN_USERNAME="admin",
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        # the tests drive the dispatcher and the scheduler step by step (tests/test_webhooks.py); the receivers they
        # start listen on 127.0.0.1
        JOBS="false",
        WEBHOOK_ALLOW_PRIVATE="true",
    )
    upgrade(database_url)
    return Settings.from_env()


@pytest.fixture(scope="session")
async def sqlite_template(settings: Settings, app: Litestar) -> Path | None:
    """SQLite cannot truncate append-only tables, so each test gets a copy of the file as the app started it."""
    if not settings.database_url.startswith("sqlite"):
        return None
    await app.state.engine.dispose()  # closing the last connection checkpoints the WAL into the file
    db = Path(make_url(settings.database_url).database or "")
    template = db.with_suffix(".template")
    shutil.copy(db, template)
    return template


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Litestar]:
    async with serving(settings) as application:
        yield application


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Litestar]:
    """The app with its lifespan run in the tests' own event loop, so tests may use its engine directly."""
    application = create_app(settings)
    started, stopping = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:  # one task enters and exits the lifespan's task group
        async with application.lifespan():
            started.set()
            await stopping.wait()

    task = asyncio.create_task(run_lifespan())
    await asyncio.wait([task, asyncio.create_task(started.wait())], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    yield application
    stopping.set()
    await task


@pytest.fixture(scope="session")
async def session_client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
        yield client


# Published at start-up and immutable; tests that publish their own checklists use codes of their own.
REFERENCE_TABLES = {"checklist", "checklist_item"}


def _restore_sqlite(template: Path, db: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    shutil.copy(template, db)


async def _reset_database(app: Litestar, settings: Settings, sqlite_template: Path | None) -> None:
    engine = app.state.engine
    if sqlite_template is not None:
        await engine.dispose()
        db = Path(make_url(settings.database_url).database or "")
        await asyncio.to_thread(_restore_sqlite, sqlite_template, db)
        return
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables if t.name not in REFERENCE_TABLES)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def client(
    session_client: httpx.AsyncClient, app: Litestar, settings: Settings, sqlite_template: Path | None
) -> AsyncIterator[httpx.AsyncClient]:
    await _reset_database(app, settings, sqlite_template)  # the login throttle's rows too
    yield session_client


class Bucket:
    """Direct look into the real bucket, to check what the service wrote (and did not write)."""

    def __init__(self, config: S3Config) -> None:
        self.name = config.bucket
        self.client = Minio(endpoint=config.endpoint, access_key=config.access_key, secret_key=config.secret_key, secure=False)

    def keys(self, prefix: str = "") -> set[str]:
        return {o.object_name for o in self.client.list_objects(bucket_name=self.name, prefix=prefix, recursive=True)}

    def read(self, key: str) -> bytes:
        response = self.client.get_object(bucket_name=self.name, object_name=key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def write(self, key: str, data: bytes) -> None:
        import io

        self.client.put_object(bucket_name=self.name, object_name=key, data=io.BytesIO(data), length=len(data))


@pytest.fixture
def bucket(object_store: EmbeddedSeaweed) -> Bucket:
    return Bucket(object_store.config())


@pytest.fixture
async def world(client: httpx.AsyncClient, app: Litestar) -> World:
    """The admin plus a two-branch agency tree with enterprises and an account of every role in each branch."""
    return await World.build(client, app)


@pytest.fixture
def lookback_now(world: World) -> Any:
    """Look-backs due at once, and every closed general hazard sampled, for walking the workflow in one test."""
    settings = world.app.state.settings
    world.app.state.settings = replace(settings, lookback_delay_days=0, lookback_sample_rate=1.0)
    yield
    world.app.state.settings = settings


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say where the browser tests left their screenshots of the desk console."""
    screenshots = Path(__file__).parent / "output" / "screenshots"  # test_console_browser.SCREENSHOTS
    if screenshots.is_dir() and any(screenshots.glob("*.png")):
        terminalreporter.write_line(f"desk console screenshots: {screenshots}")
