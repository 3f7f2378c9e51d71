"""What every benchmark starts the same way: a free loopback port, the API's environment, and the command that
serves the API as `safety serve` does (uvicorn's h11 parser with its header bound), so the figures are production's."""

from __future__ import annotations

import os
import socket
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
