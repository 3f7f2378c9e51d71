"""The project's commands, on Litestar's CLI: `safety migrate | seed-demo | export-openapi | serve`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from litestar import Litestar
from litestar.plugins import CLIPluginProtocol

from backend.settings import PROJECT_ROOT, Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from backend.checklists.service import LoadReport

T = TypeVar("T")

OPENAPI_FILE = PROJECT_ROOT / "mobile_api_spec" / "openapi.json"


def openapi_document(app: Litestar) -> str:
    return json.dumps(app.openapi_schema.to_schema(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def _migrate() -> None:
    from backend.migrations import upgrade

    upgrade(get_settings().database_url)


def _run_with_database(work: Callable[[async_sessionmaker[AsyncSession], Settings], Awaitable[T]]) -> T:
    """Run one piece of async database work from a synchronous command, on its own engine."""
    from backend.db import make_engine, make_sessionmaker

    settings = get_settings()

    async def run() -> T:
        engine = make_engine(settings.database_url)
        try:
            return await work(make_sessionmaker(engine), settings)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _seed_demo() -> list[dict[str, str]]:
    from backend.demo import seed_demo

    return _run_with_database(lambda sessionmaker, settings: seed_demo(sessionmaker, settings.state_dir, settings))


def _load_checklists() -> LoadReport:
    from backend.checklists.service import ChecklistService

    return _run_with_database(lambda sessionmaker, settings: ChecklistService.load_directory(sessionmaker, settings.checklists_dir))


def _import_checklist(path: Path) -> bool:
    from backend.checklists.service import ChecklistService

    return _run_with_database(lambda sessionmaker, settings: ChecklistService.load_file(sessionmaker, path))


def _print_credentials(credentials: list[dict[str, str]]) -> None:
    click.echo("Demo accounts (kept in the local state folder):")
    for c in credentials:
        click.echo(f"  {c['role']:<15} {c['username']:<12} {c['password']:<14} {c['name']}")


class SafetyCLIPlugin(CLIPluginProtocol):
    def on_cli_init(self, cli: click.Group) -> None:
        @cli.command(name="migrate", help="Apply the database migrations (Alembic) up to the newest.")
        def migrate() -> None:
            _migrate()
            click.echo("database migrated")

        @cli.command(name="seed-demo", help="Load the demo agencies, enterprises and accounts (once) and print them.")
        def seed_demo_command() -> None:
            _print_credentials(_seed_demo())

        @cli.command(name="load-checklists", help="Validate and publish checklists/*.yaml; exits 1 if any file is refused.")
        def load_checklists() -> None:
            report = _load_checklists()
            click.echo(f"published {len(report.published)}, unchanged {len(report.unchanged)}, refused {len(report.errors)}")
            for name in report.published:
                click.echo(f"  published {name}")
            for error in report.errors:
                click.echo(f"  ERROR {error}", err=True)
            if report.errors:
                raise SystemExit(1)

        @cli.command(
            name="import-checklist",
            help="Validate FILE (a checklist YAML, e.g. the official text of a new standard) and publish it as a new "
            "immutable version; errors are printed as file:line: field: message and exit 1.",
        )
        @click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
        def import_checklist(file: Path) -> None:
            from dataclasses import replace

            from backend.checklists.loader import ChecklistFileInvalid

            try:
                new = _import_checklist(file)
            except ChecklistFileInvalid as exc:
                for error in exc.errors:  # named as the file was given, so an editor can jump to file:line
                    click.echo(str(replace(error, file=str(file))), err=True)
                raise SystemExit(1) from exc
            click.echo(f"published {file.name}" if new else f"unchanged {file.name} (this content is published already)")

        @cli.command(name="export-openapi", help="Write the OpenAPI document to mobile_api_spec/openapi.json.")
        @click.option("--out", type=click.Path(path_type=Path), default=OPENAPI_FILE)
        def export_openapi(app: Litestar, out: Path) -> None:
            out.write_text(openapi_document(app), encoding="utf-8")
            click.echo(f"wrote {out}")

        @cli.command(name="serve", help="Migrate, then serve the API; starts an embedded SeaweedFS when S3_ENDPOINT is unset.")
        @click.option("--demo/--no-demo", default=False, help="Load and print the demo data first.")
        def serve(demo: bool) -> None:
            serve_forever(demo)


def _ensure_admin_password(settings: Any) -> None:
    if settings.admin_password:
        return
    from backend.settings import _read_or_create_secret

    path = settings.state_dir / "admin_password"
    os.environ["ADMIN_PASSWORD"] = _read_or_create_secret(path, nbytes=12)
    click.echo(f"ADMIN_PASSWORD not set: admin '{settings.admin_username}' uses the password in {path}")


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Where and how uvicorn serves. The h11 parser, because it bounds what it buffers of an incomplete request
    (httptools, uvicorn's default when installed, buffers a header block of any size): a request line and headers
    larger than MAX_HEADER_BYTES are refused with 400 before the app sees them. The app itself answers 431 for a
    header block over the same limit that reached it another way (another server, a proxy).

    WORKERS processes (uvicorn's supervisor restarts one that dies); X-Forwarded-For and -Proto are believed from
    FORWARDED_ALLOW_IPS only, so behind a load balancer the login throttle counts the phone's address, not the
    balancer's, and nobody else can pick the address the throttle sees."""
    return {
        "host": settings.host,
        "port": settings.port,
        "http": "h11",
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "workers": settings.workers,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
    }


def check_workers(settings: Settings) -> None:
    """Several processes need a database they can share: refuse SQLite with a message that says what to do."""
    if settings.workers > 1 and not settings.database_url.startswith(("postgresql", "postgres")):
        raise click.ClickException(
            f"WORKERS={settings.workers} needs PostgreSQL: SQLite has one writer and its file belongs to one process. "
            "Set DATABASE_URL=postgresql://user:pass@host:5432/db, or run one process (WORKERS=1)."
        )


def serve_forever(demo: bool) -> None:
    import uvicorn

    from backend.storage import EmbeddedSeaweed

    settings = get_settings()
    check_workers(settings)
    _migrate()
    if demo:
        _print_credentials(_seed_demo())
    _ensure_admin_password(settings)
    embedded: EmbeddedSeaweed | None = None
    if not settings.s3_endpoint:
        embedded = EmbeddedSeaweed(settings.state_dir / "seaweedfs", settings.s3_bucket)
        click.echo("S3_ENDPOINT not set: starting an embedded SeaweedFS on 127.0.0.1 ...")
        try:
            config = embedded.start()
        except RuntimeError as exc:  # a kept port taken, the binary missing, the store not starting: say so plainly
            raise click.ClickException(str(exc)) from exc
        os.environ.update(S3_ENDPOINT=config.endpoint, S3_ACCESS_KEY=config.access_key or "", S3_SECRET_KEY=config.secret_key or "")
        click.echo(f"embedded SeaweedFS S3 endpoint: http://{config.endpoint} (data in {embedded.data_dir})")
    get_settings.cache_clear()
    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into an exit so `finally` stops the store.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        settings = get_settings()
        processes = f"{settings.workers} processes" if settings.workers > 1 else "one process"
        click.echo(f"serving on http://{settings.host}:{settings.port} with {processes}  (OpenAPI: /schema, health: /health)")
        click.echo(f"desk console: http://{settings.host}:{settings.port}/console/  (log in with an account above)")
        uvicorn.run("backend.app:create_app", factory=True, log_level="info", **uvicorn_options(settings))
    finally:
        if embedded is not None:
            embedded.stop()
            click.echo("embedded SeaweedFS stopped")


def main() -> None:
    os.environ.setdefault("LITESTAR_APP", "backend.app:create_app")
    from litestar.cli.main import litestar_group

    litestar_group()
