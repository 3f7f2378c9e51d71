"""What every benchmark starts the same way: a free loopback port, the API's environment, and the command that
serves the API as `safety serve` does (uvicorn's h11 parser with its header bound), so the figures are production's."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from backend.settings import Settings
from backend.storage import S3Config

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


@contextmanager
def served_database(admin_dsn: str, prefix: str, prepare: Callable[[str], None], *, keep: bool = False) -> Iterator[tuple[str, str]]:
    """A database of its own on the server `admin_dsn` names (migrated, then filled by `prepare(dsn)`), an embedded
    SeaweedFS, and the API serving both on a free loopback port as `safety serve` does; yields (dsn, base URL) and
    takes it all down afterwards (the database too, unless `keep`)."""
    import asyncio
    import shutil
    import subprocess
    import sys
    import tempfile
    import time

    import asyncpg
    import httpx

    from backend.migrations import upgrade
    from backend.storage import EmbeddedSeaweed

    name = f"safety_bench_{secrets.token_hex(4)}"
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    store = EmbeddedSeaweed(tmp / "seaweedfs", "bench-evidence")
    server: subprocess.Popen[bytes] | None = None

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        print(f"database {name}: migrating and loading")
        upgrade(dsn)
        prepare(dsn)
        s3 = store.start()
        port = free_port()
        env = api_environment(dsn, s3, tmp / "state", CHECKLISTS_DIR=str(tmp / "no-checklists"))
        server = subprocess.Popen(api_command([sys.executable, "-m", "uvicorn"], port), cwd=Path(__file__).resolve().parent.parent, env=env)
        base = f"http://{HOST}:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        yield dsn, base
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        store.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        if not keep:
            asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
