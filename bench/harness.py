"""What every benchmark starts the same way: a free loopback port, the API's environment, and the command that
serves the API as `safety serve` does (uvicorn's h11 parser with its header bound), so the figures are production's;
and, for the benchmarks that need nothing more, a fresh migrated database and the API serving it."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx

from backend.accounts.credit_code import make_credit_code
from backend.migrations import upgrade
from backend.settings import Settings
from backend.storage import EmbeddedSeaweed, S3Config

ROOT = Path(__file__).resolve().parent.parent

HOST = "127.0.0.1"
APP = "backend.app:create_app"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def api_environment(database_url: str, s3: S3Config, state_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of the API process: this one's, pointed at the benchmark's database and store, no proxies."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "S3_ENDPOINT": s3.endpoint,
        "S3_ACCESS_KEY": s3.access_key or "",
        "S3_SECRET_KEY": s3.secret_key or "",
        "S3_BUCKET": s3.bucket,
        "STATE_DIR": str(state_dir),
        **settings,
    }
    for proxy in PROXY_VARIABLES:
        env.pop(proxy, None)
    return env


def api_command(launcher: list[str], port: int, app: str = APP) -> list[str]:
    """`launcher` (uvicorn, or a wrapper that takes uvicorn's arguments) serving `app` as `safety serve` does
    (backend/cli.py uvicorn_options)."""
    return [
        *launcher, app, "--factory", "--host", HOST, "--port", str(port), "--log-level", "warning",
        "--http", "h11", "--h11-max-incomplete-event-size", str(Settings.max_header_bytes),
    ]  # fmt: skip


async def _execute(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def fresh_database(admin_dsn: str, keep: bool = False) -> Iterator[str]:
    """A new PostgreSQL database next to `admin_dsn`'s, migrated with Alembic; dropped afterwards unless `keep`."""
    name = f"safety_bench_{secrets.token_hex(4)}"
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(_execute(admin_dsn, f'CREATE DATABASE "{name}"'))
    try:
        print(f"database {name}: migrating", flush=True)
        upgrade(dsn)
        yield dsn
    finally:
        if not keep:
            asyncio.run(_execute(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def serving_api(dsn: str, prefix: str) -> Iterator[str]:
    """SeaweedFS and the API serving `dsn` on free loopback ports (no checklists loaded); yields the API's base URL
    once /health answers, and stops both afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    store = EmbeddedSeaweed(tmp / "seaweedfs", "bench-evidence")
    server: subprocess.Popen[bytes] | None = None
    try:
        s3 = store.start()
        port = free_port()
        env = api_environment(dsn, s3, tmp / "state", CHECKLISTS_DIR=str(tmp / "no-checklists"))
        server = subprocess.Popen(api_command([sys.executable, "-m", "uvicorn"], port), cwd=ROOT, env=env)
        base = f"http://{HOST}:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        yield base
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        store.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def served_database(admin_dsn: str, prefix: str, prepare: Callable[[str], None], *, keep: bool = False) -> Iterator[tuple[str, str]]:
    """`fresh_database` filled by `prepare(dsn)`, then served by `serving_api`: yields (dsn, base URL)."""
    with fresh_database(admin_dsn, keep=keep) as dsn:
        prepare(dsn)
        with serving_api(dsn, f"{prefix}-") as base:
            yield dsn, base


@dataclass(frozen=True)
class City:
    """What `copy_city` loaded: the city agency, its 10 districts, and the enterprises as their COPY rows
    (id, name, credit_code, agency_id, address, created_at), enterprise n in district n % 10."""

    id: uuid.UUID
    districts: list[uuid.UUID]
    enterprises: list[tuple[uuid.UUID, str, str, uuid.UUID, str, datetime]]


async def copy_city(conn: asyncpg.Connection, enterprises: int, at: datetime) -> City:
    """A city's agency with 10 district agencies and `enterprises` enterprises spread over the districts, by COPY."""
    city = uuid.uuid4()
    districts = [uuid.uuid4() for _ in range(10)]
    agencies = [(city, "基准市应急管理局", "140600", None, f"/{city}/", at)] + [
        (d, f"基准区{n}应急管理局", "140602", city, f"/{city}/{d}/", at) for n, d in enumerate(districts)
    ]
    await conn.copy_records_to_table("agency", records=agencies, columns=["id", "name", "region_code", "parent_id", "path", "created_at"])
    ents = [
        (uuid.uuid4(), f"基准企业{n}", make_credit_code(f"9114060{n:010d}"), districts[n % 10], "基准地址", at) for n in range(enterprises)
    ]
    await conn.copy_records_to_table(
        "enterprise", records=ents, columns=["id", "name", "credit_code", "agency_id", "address", "created_at"]
    )
    return City(city, districts, ents)
