"""Faults: the database stopped, the object store frozen. The service answers 503 naming the part, fast, with
`Retry-After`, logs each outage once, keeps serving what does not need the failed part, and loses or doubles nothing.

Each test brings its own failing part, so the session's database and store stay up for the rest of the suite:
- a private PostgreSQL cluster (initdb into a temporary folder, started on a free loopback port), stopped and
  started again with pg_ctl. PostgreSQL refuses to run as root, so when the tests run as root (CI does) its
  commands run as the `postgres` account through `runuser`;
- a private embedded SeaweedFS, frozen with SIGSTOP and thawed with SIGCONT.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import glob
import hashlib
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy.exc
from litestar import Litestar
from sqlalchemy import func, select
from sqlmodel import col

from backend.evidence.models import Evidence
from backend.faults import Outage, database_unreachable
from backend.migrations import upgrade
from backend.settings import Settings
from backend.storage import EmbeddedSeaweed
from tests.conftest import serving
from tests.helpers import ADMIN_PASSWORD, World, assert_problem, start_inspection
from tests.media import jpeg, mp4_header

# --- a private PostgreSQL ---------------------------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _account_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1:<free port>, its files and socket in a temporary folder."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="faults-pg-"))  # not under pytest's root-only tmp folders
        self.data = self.dir / "data"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, user="postgres", group="postgres")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if self.as_root:  # initdb and postgres refuse to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            log = (self.dir / "server.log").read_text(errors="replace")[-2000:] if (self.dir / "server.log").exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {done.stdout}{done.stderr}{log}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    if os.geteuid() == 0 and (shutil.which("runuser") is None or not _account_exists("postgres")):
        pytest.skip("running as root needs `runuser` and a `postgres` account to run PostgreSQL")
    cluster = PrivatePostgres(bin_dir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


def _client(app: Litestar) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://faults.local", timeout=60)


class Logs(logging.Handler):
    """Every record logged while it is attached to the root logger. (pytest's caplog handler does not survive: the
    app's start-up configures logging anew, which replaces the root logger's handlers.)"""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> Logs:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *_: object) -> None:
        logging.getLogger().removeHandler(self)

    def with_text(self, text: str) -> list[str]:
        return [r.getMessage() for r in self.records if text in r.getMessage()]

    def errors(self) -> list[str]:
        """Errors and tracebacks: an outage must log neither."""
        return [r.getMessage() for r in self.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_database_stopped_answers_503_then_recovers_with_nothing_lost(private_postgres: PrivatePostgres, settings: Settings) -> None:
    await asyncio.to_thread(upgrade, private_postgres.url)
    own = replace(settings, database_url=private_postgres.url, retry_after_seconds=7)
    async with serving(own) as app, _client(app) as client, contextlib.AsyncExitStack() as stack:
        login = await client.post("/api/v1/auth/login", json={"username": own.admin_username, "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        agency = await client.post("/api/v1/agencies", json={"name": "停库前的应急管理局", "region_code": "140600"}, headers=admin)
        assert agency.status_code in (200, 201), agency.text

        logs = stack.enter_context(Logs())
        await asyncio.to_thread(private_postgres.stop)
        started = time.monotonic()
        for _ in range(10):
            for response in (
                await client.get("/api/v1/auth/me", headers=admin),
                await client.get("/api/v1/agencies", headers=admin),
                await client.post("/api/v1/agencies", json={"name": "停库时的应急管理局", "region_code": "140600"}, headers=admin),
            ):
                body = assert_problem(response, 503, "service_unavailable")
                assert body["dependency"] == "database", body
                assert response.headers["Retry-After"] == "7"
        assert time.monotonic() - started < 20, "30 calls against a stopped database must each answer at once"
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["database"] == "unavailable" and health.json()["object_store"] == "ok"
        assert health.json()["failing"] == "database"
        # One warning for the whole outage, with its cause; no traceback per request.
        assert len(logs.with_text("database unavailable")) == 1, logs.with_text("")
        assert not logs.errors()

        await asyncio.to_thread(private_postgres.start)
        me = await client.get("/api/v1/auth/me", headers=admin)
        assert me.status_code == 200, me.text
        names = [a["name"] for a in (await client.get("/api/v1/agencies", headers=admin)).json()["items"]]
        assert "停库前的应急管理局" in names and "停库时的应急管理局" not in names
        assert (await client.get("/health")).status_code == 200
        assert len(logs.with_text("database recovered after")) == 1, logs.with_text("")
        assert len(logs.with_text("database unavailable")) == 1


# --- a frozen object store ---------------------------------------------------------------------------------------

FROZEN_READ_TIMEOUT = 2.0  # S3_READ_TIMEOUT for these tests: one frozen call fails after 2 tries in about 4.5 s
FREEZE_SECONDS = 15.0


@pytest.fixture(scope="module")
def private_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSeaweed]:
    store = EmbeddedSeaweed(tmp_path_factory.mktemp("faults-seaweedfs"), bucket="faults-evidence")
    store.start()
    try:
        yield store
    finally:
        if store.process is not None:
            os.kill(store.process.pid, signal.SIGCONT)
        store.stop()


@pytest.fixture
async def store_app(settings: Settings, private_store: EmbeddedSeaweed) -> AsyncIterator[Litestar]:
    """The app on the session's database, with the private store and short store timeouts."""
    config = private_store.config()
    own = replace(
        settings,
        s3_endpoint=config.endpoint,
        s3_access_key=config.access_key,
        s3_secret_key=config.secret_key,
        s3_bucket=config.bucket,
        s3_connect_timeout=1.0,
        s3_read_timeout=FROZEN_READ_TIMEOUT,
        retry_after_seconds=3,
    )
    async with serving(own) as app:
        yield app


async def _upload(
    client: httpx.AsyncClient, world: World, evidence_id: str, photo: bytes, owner_id: str, owner: str = "inspection_id"
) -> httpx.Response:
    return await client.post(
        "/api/v1/evidence",
        data={"id": evidence_id, "kind": "photo", owner: owner_id},
        files={"file": ("photo.jpg", photo, "application/octet-stream")},
        headers=world.headers("inspector_a1"),
    )


async def _timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await call
    return response, time.monotonic() - started


async def test_frozen_store_fails_uploads_fast_and_nothing_else(world: World, store_app: Litestar, private_store: EmbeddedSeaweed) -> None:
    inspection = await start_inspection(world)
    photos = {str(uuid.uuid4()): jpeg(color=(n * 20, 100, 200 - n * 20)) for n in range(6)}
    assert private_store.process is not None
    async with _client(store_app) as client, contextlib.AsyncExitStack() as stack:
        before = await _upload(client, world, str(uuid.uuid4()), jpeg(color=(1, 1, 1)), inspection["id"])
        assert before.status_code == 201, before.text

        logs = stack.enter_context(Logs())
        os.kill(private_store.process.pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            first = asyncio.create_task(_timed(_upload(client, world, *next(iter(photos.items())), inspection["id"])))
            await asyncio.sleep(1.0)  # that upload now waits on the frozen store...
            pool = store_app.state.engine.pool
            if hasattr(pool, "checkedout"):
                assert pool.checkedout() == 0, "an upload waiting on the store must hold no database connection"
            # ...while the routes that do not use the store answer as usual.
            for _ in range(3):
                for path in ("/api/v1/hazards", "/api/v1/auth/me"):
                    response, seconds = await _timed(client.get(path, headers=world.headers("inspector_a1")))
                    assert response.status_code == 200 and seconds < 2, (path, response.status_code, seconds)
            rest = [
                asyncio.create_task(_timed(_upload(client, world, evidence_id, photo, inspection["id"])))
                for evidence_id, photo in list(photos.items())[1:]
            ]
            health, health_seconds = await _timed(client.get("/health"))
            answered = [await first] + [await task for task in rest]
            for response, seconds in answered:
                body = assert_problem(response, 503, "service_unavailable")
                assert body["dependency"] == "object_store" and response.headers["Retry-After"] == "3", body
                assert seconds < 2 * FROZEN_READ_TIMEOUT + 3, f"an upload waited {seconds:.1f} s on a frozen store"
            assert health.status_code == 503 and health_seconds < 6
            assert health.json()["failing"] == "object_store" and health.json()["database"] == "ok", health.json()
            assert time.monotonic() - frozen_at < FREEZE_SECONDS - 3, "every upload must answer well before the store thaws"
            await asyncio.sleep(max(0.0, FREEZE_SECONDS - (time.monotonic() - frozen_at)))
        finally:
            os.kill(private_store.process.pid, signal.SIGCONT)
        assert len(logs.with_text("object_store unavailable")) == 1, logs.with_text("")
        assert not logs.errors()

        # The phone retries the same uploads (same ids): each is recorded once, and a second retry changes nothing.
        retried = [await _upload(client, world, evidence_id, photo, inspection["id"]) for evidence_id, photo in photos.items()]
        assert [r.status_code for r in retried] == [201] * len(photos), [r.text for r in retried]
        again = [await _upload(client, world, evidence_id, photo, inspection["id"]) for evidence_id, photo in photos.items()]
        assert [r.status_code for r in again] == [200] * len(photos)
        assert [r.json() for r in again] == [r.json() for r in retried]
        assert len(logs.with_text("object_store recovered after")) == 1, logs.with_text("")
    async with world.app.state.sessionmaker() as session:
        ids = [uuid.UUID(i) for i in photos]
        count = (await session.execute(select(func.count()).select_from(Evidence).where(col(Evidence.id).in_(ids)))).scalar_one()
    assert count == len(photos)
    for evidence_id, photo in photos.items():
        content = await world.client.get(f"/api/v1/evidence/{evidence_id}", headers=world.headers("inspector_a1"))
        assert content.json()["sha256"] == hashlib.sha256(photo).hexdigest()


async def test_upload_links_survive_a_store_restart(world: World, store_app: Litestar, private_store: EmbeddedSeaweed) -> None:
    """The embedded store keeps its ports: a link handed out before a restart still takes the upload after it."""
    inspection = await start_inspection(world)
    video = mp4_header() * 20
    async with _client(store_app) as client:
        start = await client.post(
            "/api/v1/evidence/uploads",
            json={
                "kind": "video",
                "content_type": "video/mp4",
                "size": len(video),
                "sha256": hashlib.sha256(video).hexdigest(),
                "owner": {"inspection_id": inspection["id"]},
            },
            headers=world.headers("inspector_a1"),
        )
        assert start.status_code == 201, start.text
        endpoint = private_store.config().endpoint
        await asyncio.to_thread(private_store.stop)
        await asyncio.to_thread(private_store.start)
        assert private_store.config().endpoint == endpoint
        async with httpx.AsyncClient() as phone:
            assert (await phone.put(start.json()["upload_url"], content=video)).status_code == 200
        done = await client.post(f"/api/v1/evidence/{start.json()['evidence_id']}/complete", headers=world.headers("inspector_a1"))
        assert done.status_code == 200 and done.json()["status"] == "stored", done.text


def test_a_kept_port_taken_by_another_program_is_named(tmp_path: Path) -> None:
    store = EmbeddedSeaweed(tmp_path / "seaweedfs", bucket="b")
    store.data_dir.mkdir(parents=True)
    ports = store._kept_ports()
    assert EmbeddedSeaweed(tmp_path / "seaweedfs", bucket="b")._kept_ports() == ports  # kept, not chosen again
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports["s3"]))
        squatter.listen()
        with pytest.raises(RuntimeError, match=rf"s3 port {ports['s3']} .*taken by another program.*ports\.json"):
            store.start(timeout=5)
    assert store.process is None


async def test_a_frozen_store_stops_no_decision_and_no_read_of_records(
    world: World, store_app: Litestar, private_store: EmbeddedSeaweed
) -> None:
    """Documents are kept in the database, and links are signed locally: only the bytes themselves need the store."""
    from tests.test_enforcement import open_case, submitted_inspection

    inspection = await submitted_inspection(world)
    cid = (await open_case(world, inspection["id"]))["id"]
    async with _client(store_app) as client:
        photo = await _upload(client, world, str(uuid.uuid4()), jpeg(color=(9, 8, 7)), cid, "case_id")
        assert photo.status_code == 201, photo.text
        assert private_store.process is not None
        os.kill(private_store.process.pid, signal.SIGSTOP)
        try:
            inspector = world.headers("inspector_a1")
            document, seconds = await _timed(client.get(f"/api/v1/cases/{cid}/documents/inspection_record", headers=inspector))
            assert document.status_code == 200 and document.content.startswith(b"%PDF") and seconds < 3, (document.status_code, seconds)
            detail = await client.get(f"/api/v1/evidence/{photo.json()['id']}", headers=inspector)
            assert detail.status_code == 200 and detail.json()["download_url"].endswith("/content")
            content, seconds = await _timed(client.get(detail.json()["download_url"], headers=inspector))
            body = assert_problem(content, 503, "service_unavailable")
            assert body["dependency"] == "object_store" and seconds < 2 * FROZEN_READ_TIMEOUT + 3
        finally:
            os.kill(private_store.process.pid, signal.SIGCONT)
        content = await client.get(detail.json()["download_url"], headers=inspector)
        assert content.status_code == 200 and hashlib.sha256(content.content).hexdigest() == photo.json()["sha256"]


# --- what counts as "down" ---------------------------------------------------------------------------------------


def _wrapped(error: Exception, kind: type[sqlalchemy.exc.DBAPIError] = sqlalchemy.exc.DBAPIError, invalidated: bool = False) -> Exception:
    return kind("SELECT 1", {}, error, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    ("error", "down"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 5432)"), True),
        (OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 5432), [Errno 111] ..."), True),
        (OSError(errno.EHOSTUNREACH, "No route to host"), True),
        (TimeoutError(), True),
        (socket.gaierror(-2, "Name or service not known"), True),
        (asyncpg.exceptions.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"), True),
        (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"), True),
        (asyncpg.exceptions.InterfaceError("cannot call PreparedStatement.fetch(): the underlying connection is closed"), True),
        (_wrapped(Exception("server closed the connection"), sqlalchemy.exc.OperationalError), True),
        (_wrapped(Exception("connection is closed"), sqlalchemy.exc.InterfaceError), True),
        (_wrapped(Exception("terminating connection due to administrator command"), invalidated=True), True),
        (sqlalchemy.exc.TimeoutError("QueuePool limit of size 10 overflow 20 reached"), True),
        (_wrapped(asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command")), True),
        # not outages: bugs, refused statements, a full disk
        (ValueError("bad"), False),
        (_wrapped(Exception("duplicate key"), sqlalchemy.exc.IntegrityError), False),
        (_wrapped(asyncpg.exceptions.UniqueViolationError("duplicate key")), False),
        (_wrapped(asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout")), False),
        (OSError(errno.ENOSPC, "No space left on device"), False),
        (FileNotFoundError(errno.ENOENT, "missing"), False),
    ],
)
def test_which_errors_mean_the_database_is_down(error: Exception, down: bool) -> None:
    assert database_unreachable(error) is down


def test_an_outage_is_logged_when_it_starts_and_when_it_ends() -> None:
    outage = Outage("object_store", trial_seconds=30)
    with Logs() as logs:
        assert outage.admit()
        outage.failed(TimeoutError("read timed out"))
        assert outage.admit()  # the next call tests whether it is back...
        assert not outage.admit() and not outage.admit()  # ...the rest fail at once while that one runs
        outage.failed(TimeoutError("read timed out"))
        assert outage.admit()
        outage.succeeded()
        assert outage.admit() and outage.admit()
        outage.succeeded()
    assert logs.with_text("object_store") == [
        "object_store unavailable: TimeoutError: read timed out (further failures are counted until it answers again)",
        "object_store recovered after 4 failures",
    ]
