"""Evidence ingest benchmark: API photo rate against a storage floor; server memory during a burst of photos and huge
PNGs, and during a large video upload.

Run from the project root:

    .venv/bin/python bench/evidence_ingest.py [--photos 24] [--concurrency 8] [--rounds 1] [--video-mb 500]
                                              [--png-side 8900] [--png-clients 3] [--png-uploads 3] [--mixed-photos 24]
                                              [--postgres URL] [--timeout 1800] [--json] [--profile]

It starts everything it needs on 127.0.0.1 (free ports) inside one temporary folder, and removes it all at the end,
also on error, Ctrl-C, SIGTERM or its own overall deadline (--timeout):

- an embedded SeaweedFS (``backend.storage.EmbeddedSeaweed``);
- a SQLite database migrated with Alembic, or, with ``--postgres URL`` (a server URL the bench may create databases
  with), a fresh PostgreSQL database created for the run and dropped at the end;
- the API as a subprocess: ``uvicorn backend.app:create_app --factory`` with a random admin password.

Then, as a real client would: log in as admin, create an agency, an enterprise and two inspectors, log in as an
inspector, take the mining routine checklist, and start an inspection.

Measurements (photos are 12-megapixel 4000x3000 JPEGs at quality 90, about 3 MB each, all distinct, in memory):

1. api:   ``--concurrency`` clients upload every photo with ``POST /api/v1/evidence`` (multipart: kind, inspection_id,
          then the file part); each must answer 201 with the right sha256 and size.
2. floor: the same photos, the same concurrency, in worker threads: ``minio.Minio.put_object`` into the same bucket
          under a bench-only key (so nothing the API stored is reused) plus a Pillow draft-mode 320 px thumbnail.
   The ratio api/floor is the share of the raw store+thumbnail rate the API keeps (target >= 0.85), and the API's
   own rate is held against 19.8 photos/s (1.5x a peer's 13.2 on this machine; see RESULTS.md).
   With ``--rounds R`` both are measured R times, each round with fresh photos (the API stores a content only once),
   alternating which path goes first; rates are pooled over all rounds. Both paths are CPU-bound on a small machine,
   so the CPU seconds each process (bench client, API server, SeaweedFS; not PostgreSQL) spends per photo in each
   phase are printed too: they explain the ratio better than the noisy wall-clock rates of a shared machine.
   With ``--profile`` the API runs under ``bench/profiled_server.py``, a per-thread CPU sampler, and the api phase
   ends with a table of the server's CPU per photo by step (decode, HTTP receive, multipart, store, database, ...).
3. mixed: ``--concurrency`` clients upload ``--mixed-photos`` fresh 12-MP photos while ``--png-clients`` clients each
          upload a ``--png-side`` x ``--png-side`` PNG ``--png-uploads`` times (8900 px: ~250 KB on the wire, 317 MB
          decoded), all at once, sampling the server's RSS; the kernel's peak (VmHWM) is read too. Target: peak < 600
          MB. No answer may be 5xx (the 8900-px PNG is over the pixel limits: 422 image_too_large; try
          ``--png-side 4890``, just under MAX_PHOTO_PIXELS_FULL_DECODE, to see decodes that do happen stay bounded).
4. memory: one ``--video-mb`` MiB MP4-looking video through ``POST /api/v1/evidence``, generated on the fly (the
          client never holds it), while the server's VmRSS is sampled every 50 ms; the kernel's peak (VmHWM, reset
          just before the upload) is read too. Target: increase < 64 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import urllib3  # noqa: E402
from minio import Minio  # noqa: E402
from PIL import Image, ImageChops  # noqa: E402

from backend.accounts.credit_code import make_credit_code  # noqa: E402
from backend.storage import EmbeddedSeaweed, S3Config  # noqa: E402
from bench.harness import api_command, api_environment, free_port  # noqa: E402

MIB = 1 << 20
PHOTO_SIZE = (4000, 3000)
THUMB = (320, 320)
RATIO_TARGET = 0.85
RATE_TARGET = 19.8  # photos/s: 1.5 x the ODK Central backend's 13.2 measured on this machine
RSS_TARGET_MB = 64
MIXED_PEAK_TARGET_MB = 600
HOST = "127.0.0.1"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _die_with_parent() -> None:
    """The server gets SIGTERM if this benchmark dies without stopping it (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# --- photos ---------------------------------------------------------------------------------------------------------


def make_photo(seed: int) -> bytes:
    """A 4000x3000 JPEG (q90, ~3 MB): smooth random colour fields plus sensor-like grain, with a little EXIF."""
    rnd = random.Random(seed)
    small = (160, 120)
    base = Image.frombytes("RGB", small, rnd.randbytes(small[0] * small[1] * 3)).resize(PHOTO_SIZE, Image.BICUBIC)
    grain = Image.effect_noise((PHOTO_SIZE[0] // 2, PHOTO_SIZE[1] // 2), 10).resize(PHOTO_SIZE, Image.BILINEAR)
    image = ImageChops.add(base, Image.merge("RGB", (grain, grain, grain)), offset=-128)
    exif = Image.Exif()
    exif[0x010F] = "BenchCam"  # Make
    exif[0x0132] = f"2024:05:{1 + seed % 28:02d} 10:{seed % 60:02d}:00"  # DateTime
    exif[0x0112] = 1  # Orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def make_photos(count: int, first_seed: int) -> list[bytes]:
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 2)) as pool:
        return list(pool.map(make_photo, range(first_seed, first_seed + count)))


def thumbnail(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", THUMB)
        image.thumbnail(THUMB)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=80)
        return buffer.getvalue()


# --- memory sampling ------------------------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile in KiB from /proc/<pid>/status."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(rest.split()[0])
    return out


class RssSampler(threading.Thread):
    """Samples VmRSS (KiB) of some processes every `interval` seconds until stopped."""

    def __init__(self, pids: dict[str, int], interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.interval = interval
        self.samples: dict[str, list[int]] = {name: [] for name in pids}
        self.anon_peak: dict[str, int] = {name: 0 for name in pids}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for name, pid in self.pids.items():
                try:
                    status = proc_status(pid)
                except (OSError, ValueError):
                    continue
                if "VmRSS" not in status:  # the process has exited (a zombie has no memory lines)
                    continue
                self.samples[name].append(status["VmRSS"])
                self.anon_peak[name] = max(self.anon_peak[name], status.get("RssAnon", 0))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def reset_peak_rss(pid: int) -> bool:
    """Reset the kernel's VmHWM for `pid` (Linux >= 4.0, same user); False when not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class CpuMeter:
    """User+system CPU seconds of whole processes (all threads), from /proc/<pid>/stat."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def read(self) -> dict[str, float]:
        out = {}
        for name, pid in self.pids.items():
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            out[name] = (int(fields[11]) + int(fields[12])) / self.TICK  # utime, stime
        return out

    @staticmethod
    def add(into: dict[str, float], before: dict[str, float], after: dict[str, float]) -> None:
        for name, value in after.items():
            into[name] = into.get(name, 0.0) + value - before[name]


# --- the environment ------------------------------------------------------------------------------------------------


@dataclass
class Env:
    tmp: Path
    base_url: str = ""
    s3: S3Config | None = None
    server: subprocess.Popen[bytes] | None = None
    server_log: Path | None = None
    seaweed: EmbeddedSeaweed | None = None
    database_url: str = ""
    pg_cleanup: Callable[[], None] | None = None
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    profile_control: Path | None = None
    thread_cpu: dict[str, list[float]] = field(default_factory=dict)

    def profile(self, command: str) -> None:
        """Tell bench/profiled_server.py to reset or dump its CPU sampler (no-op without --profile)."""
        if self.profile_control is not None:
            self.profile_control.write_text(command)

    def profile_dump(self, timeout: float = 5.0) -> dict[str, float]:
        if self.profile_control is None:
            return {}
        target = self.tmp / f"profile-{uuid.uuid4().hex[:8]}.json"
        self.profile(f"dump {target}")
        deadline = time.monotonic() + timeout
        while not target.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the profiled server did not answer a dump")
            time.sleep(0.05)
        dumped = json.loads(target.read_text())
        if os.environ.get("BENCH_PROFILE_DETAIL"):
            for where, seconds in sorted(dumped["innermost"].items(), key=lambda kv: -kv[1])[:40]:
                print(f"    {seconds * 1000:8.1f} ms  {where}")
        for name, (user, system) in dumped["threads"].items():
            self.thread_cpu.setdefault(name, [0.0, 0.0])
            self.thread_cpu[name][0] += user
            self.thread_cpu[name][1] += system
        return dumped["cpu_seconds"]

    def server_log_tail(self, lines: int = 40) -> str:
        if self.server_log is None or not self.server_log.exists():
            return ""
        return "\n".join(self.server_log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(timeout=5)
        if self.seaweed is not None:
            try:
                self.seaweed.stop()
            except Exception as exc:  # keep cleaning up
                log(f"stopping SeaweedFS failed: {exc}")
        if self.pg_cleanup is not None:
            try:
                self.pg_cleanup()
            except Exception as exc:
                log(f"dropping the bench database failed: {exc}")
        shutil.rmtree(self.tmp, ignore_errors=True)


def postgres_database(server_url: str) -> tuple[str, Callable[[], None]]:
    """Create a fresh database on the server of `server_url`; return its URL and a function that drops it."""
    import asyncpg
    from sqlalchemy.engine import make_url

    base = server_url.replace("postgresql+asyncpg://", "postgresql://")
    name = f"safety_bench_{uuid.uuid4().hex[:10]}"

    def admin(sql: str) -> None:
        async def run() -> None:
            conn = await asyncpg.connect(base, timeout=10)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(run())

    admin(f'CREATE DATABASE "{name}"')
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    return url, lambda: admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_environment(env: Env, postgres: str | None, profile: bool = False) -> None:
    from backend.migrations import upgrade

    log("starting SeaweedFS ...")
    env.seaweed = EmbeddedSeaweed(env.tmp / "seaweedfs", "bench-evidence")
    env.s3 = env.seaweed.start(timeout=90)

    if postgres:
        env.database_url, env.pg_cleanup = postgres_database(postgres)
    else:
        env.database_url = f"sqlite+aiosqlite:///{env.tmp / 'bench.db'}"
    log(f"migrating {env.database_url.split('@')[-1]} ...")
    upgrade(env.database_url)

    port = free_port()
    env.base_url = f"http://{HOST}:{port}"
    server_tmp = env.tmp / "server-tmp"
    server_tmp.mkdir()
    server_env = api_environment(
        env.database_url,
        env.s3,
        env.tmp / "state",
        ADMIN_USERNAME="admin",
        ADMIN_PASSWORD=env.admin_password,
        CHECKLISTS_DIR=str(ROOT / "checklists"),
        TMPDIR=str(server_tmp),  # the server's upload temp files stay inside the bench folder
    )
    env.server_log = env.tmp / "server.log"
    uvicorn = Path(sys.executable).parent / "uvicorn"
    launcher = [str(uvicorn)]
    if profile:
        env.profile_control = env.tmp / "profile-control"
        launcher = [sys.executable, str(ROOT / "bench" / "profiled_server.py"), str(env.profile_control)]
    command = api_command(launcher, port)
    log(f"starting the API: {' '.join(command[1:])}")
    with open(env.server_log, "wb") as out:
        env.server = subprocess.Popen(
            command,
            cwd=ROOT,
            env=server_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - PR_SET_PDEATHSIG must be set in the child; Popen has no option for it
        )
    deadline = time.monotonic() + 90
    with httpx.Client(trust_env=False, timeout=5) as client:
        while True:
            if env.server.poll() is not None:
                raise RuntimeError(f"the API exited with {env.server.returncode}:\n{env.server_log_tail()}")
            try:
                if client.get(f"{env.base_url}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API did not become healthy in 90 s:\n{env.server_log_tail()}")
            time.sleep(0.25)
    log(f"API healthy at {env.base_url} (pid {env.server.pid})")


# --- seeding through the API ----------------------------------------------------------------------------------------


@dataclass
class World:
    token: str
    inspection_id: str


def expect(response: httpx.Response, status: int) -> dict:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.method} {response.request.url.path} answered {response.status_code}: {response.text[:500]}")
    return response.json()


def seed(env: Env) -> World:
    with httpx.Client(base_url=f"{env.base_url}/api/v1", trust_env=False, timeout=30) as client:

        def login(username: str, password: str) -> dict[str, str]:
            body = expect(client.post("/auth/login", json={"username": username, "password": password}), 200)
            return {"Authorization": f"Bearer {body['access_token']}"}

        admin = login("admin", env.admin_password)
        agency = expect(client.post("/agencies", json={"name": "基准测试应急管理局", "region_code": "140600"}, headers=admin), 201)
        enterprise = expect(
            client.post(
                "/enterprises",
                json={
                    "name": "基准测试煤业有限公司",
                    "credit_code": make_credit_code("91140602MA0K0BNCH"),
                    "topics": ["mining"],
                    "agency_id": agency["id"],
                    "address": "山西省朔州市朔城区基准路1号",
                },
                headers=admin,
            ),
            201,
        )
        inspectors = []
        password = secrets.token_urlsafe(16)
        for n in (1, 2):
            inspectors.append(
                expect(
                    client.post(
                        "/users",
                        json={
                            "username": f"bench_inspector{n}",
                            "password": password,
                            "display_name": f"基准检查员{n}",
                            "role": "inspector",
                            "agency_id": agency["id"],
                            "certificate_no": f"14060020240{n:03d}",
                        },
                        headers=admin,
                    ),
                    201,
                )
            )
        inspector = login("bench_inspector1", password)
        checklists = expect(client.get("/checklists", params={"topic": "mining", "kind": "routine"}, headers=inspector), 200)["items"]
        if not checklists:
            raise RuntimeError("no published mining routine checklist")
        inspection = expect(
            client.post(
                "/inspections",
                json={
                    "enterprise_id": enterprise["id"],
                    "checklist_ids": [checklists[0]["id"]],
                    "inspector_ids": [u["id"] for u in inspectors],
                    "kind": "routine",
                },
                headers=inspector,
            ),
            201,
        )
        return World(token=inspector["Authorization"], inspection_id=inspection["id"])


# --- phase 1: the API -----------------------------------------------------------------------------------------------


@dataclass
class Rate:
    count: int
    total_bytes: int
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.count / self.seconds

    @property
    def mb_per_second(self) -> float:
        return self.total_bytes / 1e6 / self.seconds

    @staticmethod
    def combine(rates: list[Rate]) -> Rate:
        return Rate(
            sum(r.count for r in rates),
            sum(r.total_bytes for r in rates),
            sum(r.seconds for r in rates),
            [x for r in rates for x in r.latencies],
        )

    def describe(self) -> str:
        lat = sorted(self.latencies)
        p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
        return (
            f"{self.count} photos, {self.total_bytes / 1e6:.1f} MB in {self.seconds:.2f} s = "
            f"{self.per_second:.2f} photos/s, {self.mb_per_second:.1f} MB/s "
            f"(per photo p50 {statistics.median(lat) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms)"
        )


# The deadline covers the measured uploads only, not opening the connections, so it stays a parameter (ASYNC109).
async def api_uploads(base_url: str, world: World, photos: list[PhotoRequest], concurrency: int, timeout: float) -> Rate:  # noqa: ASYNC109
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": world.token}
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, trust_env=False, timeout=httpx.Timeout(120)) as client:
        # Open the connections before the clock starts, as an app that has been talking to the server would have.
        await asyncio.gather(*(client.get("/health") for _ in range(concurrency)))
        pending = iter(range(len(photos)))

        async def worker() -> None:
            for i in pending:
                photo = photos[i]
                started = time.perf_counter()
                response = await client.post("/api/v1/evidence", content=photo.content, headers={"Content-Type": photo.content_type})
                latencies.append(time.perf_counter() - started)
                body = expect(response, 201)
                if body["sha256"] != photo.sha256 or body["size"] != photo.size:
                    raise RuntimeError(f"photo {i}: the server recorded other bytes: {body}")
                if (body["width"], body["height"]) != PHOTO_SIZE:
                    raise RuntimeError(f"photo {i}: unexpected dimensions {body['width']}x{body['height']}")

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout)
        elapsed = time.perf_counter() - started
    return Rate(len(photos), sum(photo.size for photo in photos), elapsed, latencies)


# --- phase 2: the floor ---------------------------------------------------------------------------------------------


def floor_uploads(s3: S3Config, photos: list[bytes], concurrency: int, prefix: str, timeout: float) -> Rate:
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=120), maxsize=16, retries=urllib3.Retry(total=0))
    client = Minio(
        endpoint=s3.endpoint,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        secure=False,
        http_client=http,
        region="us-east-1",
    )
    client.bucket_exists(bucket_name=s3.bucket)  # warm one connection and the region lookup
    latencies: list[float] = []

    def one(i: int) -> None:
        data = photos[i]
        started = time.perf_counter()
        client.put_object(
            bucket_name=s3.bucket,
            object_name=f"{prefix}/{i:04d}.jpg",
            data=io.BytesIO(data),
            length=len(data),
            content_type="image/jpeg",
        )
        if len(thumbnail(data)) < 1000:
            raise RuntimeError(f"photo {i}: implausible thumbnail")
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(one, i) for i in range(len(photos))]
        done, not_done = wait(futures, timeout=timeout)
        if not_done:
            for f in not_done:
                f.cancel()
            raise TimeoutError(f"floor phase did not finish in {timeout} s")
        for f in done:
            f.result()
    elapsed = time.perf_counter() - started
    http.clear()
    return Rate(len(photos), sum(map(len, photos)), elapsed, latencies)


# --- phase 4: one large video, memory -------------------------------------------------------------------------------


def mp4_head() -> bytes:
    return struct.pack(">I", 24) + b"ftypisom" + b"\x00\x00\x02\x00isomiso2"


def form_frame(
    boundary: str, kind: str, owner_id: str, filename: str, content_type: str, owner: str = "inspection_id"
) -> tuple[bytes, bytes]:
    """What goes before and after the file's bytes in a `POST /evidence` multipart body (kind, the owner's id, file)."""
    b = boundary
    preamble = (
        f'--{b}\r\nContent-Disposition: form-data; name="kind"\r\n\r\n{kind}\r\n'
        f'--{b}\r\nContent-Disposition: form-data; name="{owner}"\r\n\r\n{owner_id}\r\n'
        f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return preamble, f"\r\n--{b}--\r\n".encode()


@dataclass(frozen=True)
class PhotoRequest:
    """A photo's whole `POST /evidence` body and what the answer must say, prepared before the clock and the CPU
    meter start: a phone encodes its request and knows its photo's digest on its own CPU, so the bench client should
    not take the server's share of this small machine to do it."""

    content: bytes
    content_type: str
    sha256: str
    size: int

    @classmethod
    def of(cls, inspection_id: str, i: int, data: bytes) -> PhotoRequest:
        boundary = "bench-" + secrets.token_hex(16)
        preamble, epilogue = form_frame(boundary, "photo", inspection_id, f"IMG_{i:04d}.jpg", "image/jpeg")
        content_type = f"multipart/form-data; boundary={boundary}"
        return cls(preamble + data + epilogue, content_type, hashlib.sha256(data).hexdigest(), len(data))


def photo_requests(world: World, photos: list[bytes]) -> list[PhotoRequest]:
    return [PhotoRequest.of(world.inspection_id, i, data) for i, data in enumerate(photos)]


class VideoBody:
    """A multipart body (kind, the owner's id, then a `size`-byte MP4-looking file) generated chunk by chunk; videos
    of other `seed`s differ (the store keeps one object per content)."""

    def __init__(self, owner_id: str, size: int, chunk: int = MIB, *, owner: str = "inspection_id", seed: int = 7) -> None:
        self.boundary = "bench-" + secrets.token_hex(16)
        self.size = size
        self.chunk = chunk
        self.preamble, self.epilogue = form_frame(self.boundary, "video", owner_id, f"VID_{seed:04d}.mp4", "video/mp4", owner)
        head = mp4_head()
        self.file_head = head + struct.pack(">I", size - len(head)) + b"mdat"  # one mdat box over the rest
        self.block = random.Random(seed).randbytes(chunk)  # incompressible filler, reused
        self.sha256 = hashlib.sha256()

    @property
    def content_length(self) -> int:
        return len(self.preamble) + self.size + len(self.epilogue)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.preamble
        self.sha256.update(self.file_head)
        yield self.file_head
        left = self.size - len(self.file_head)
        while left > 0:
            piece = self.block if left >= self.chunk else self.block[:left]
            left -= len(piece)
            self.sha256.update(piece)
            yield piece
        yield self.epilogue


@dataclass
class MemoryResult:
    size: int
    seconds: float
    server_baseline_kib: int
    server_peak_kib: int
    server_hwm_kib: int | None
    server_anon_baseline_kib: int
    server_anon_peak_kib: int
    client_baseline_kib: int
    client_peak_kib: int
    samples: int

    @property
    def increase_mb(self) -> float:
        return (self.server_peak_kib - self.server_baseline_kib) / 1024

    @property
    def hwm_increase_mb(self) -> float | None:
        return None if self.server_hwm_kib is None else (self.server_hwm_kib - self.server_baseline_kib) / 1024


async def video_upload(base_url: str, world: World, server_pid: int, size: int) -> MemoryResult:
    body = VideoBody(world.inspection_id, size)
    pids = {"server": server_pid, "client": os.getpid()}
    # Baseline: one idle second, median of the samples.
    idle = RssSampler(pids)
    idle.start()
    await asyncio.sleep(1.0)
    idle.stop()
    server_baseline = int(statistics.median(idle.samples["server"]))
    client_baseline = int(statistics.median(idle.samples["client"]))
    anon_baseline = proc_status(server_pid).get("RssAnon", 0)
    hwm_reset = reset_peak_rss(server_pid)

    sampler = RssSampler(pids)
    sampler.start()
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=httpx.Timeout(600, connect=10)) as client:
            response = await client.post(
                "/api/v1/evidence",
                content=body,
                headers={
                    "Authorization": world.token,
                    "Content-Type": f"multipart/form-data; boundary={body.boundary}",
                    "Content-Length": str(body.content_length),
                },
            )
        elapsed = time.perf_counter() - started
    finally:
        sampler.stop()
    hwm = proc_status(server_pid).get("VmHWM") if hwm_reset else None
    record = expect(response, 201)
    if record["size"] != size or record["sha256"] != body.sha256.hexdigest() or record["content_type"] != "video/mp4":
        raise RuntimeError(f"the server recorded another video: {record}")
    return MemoryResult(
        size=size,
        seconds=elapsed,
        server_baseline_kib=server_baseline,
        server_peak_kib=max(sampler.samples["server"] or [server_baseline]),
        server_hwm_kib=hwm,
        server_anon_baseline_kib=anon_baseline,
        server_anon_peak_kib=sampler.anon_peak["server"],
        client_baseline_kib=client_baseline,
        client_peak_kib=max(sampler.samples["client"] or [client_baseline]),
        samples=len(sampler.samples["server"]),
    )


# --- phase 3: photos and huge PNGs at once, memory ----------------------------------------------------------------


def make_png(side: int) -> bytes:
    """A complete `side` x `side` RGB PNG, nearly all black: ~300 KB on the wire at 8900 px, `side**2 * 4` bytes
    once decoded by Pillow (which keeps RGB in 4 bytes a pixel)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    packer = zlib.compressobj(6)
    rows = []
    for y in range(side):
        row = bytearray(1 + side * 3)
        row[1 + (y % side) * 3] = 255  # one red pixel a row, on a diagonal: a real picture, not one repeated row
        rows.append(packer.compress(bytes(row)))
    rows.append(packer.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(rows)) + chunk(b"IEND", b"")


@dataclass
class MixedResult:
    seconds: float
    server_baseline_kib: int
    server_peak_kib: int
    server_hwm_kib: int | None
    server_after_kib: int
    statuses: dict[str, int]
    photos_per_second: float

    @property
    def peak_mib(self) -> float:
        return max(self.server_peak_kib, self.server_hwm_kib or 0) / 1024


async def mixed_uploads(
    base_url: str, world: World, server_pid: int, photos: list[bytes], photo_clients: int, png: bytes, png_clients: int, png_uploads: int
) -> MixedResult:
    """`photo_clients` clients send `photos` while `png_clients` clients each send `png` `png_uploads` times, all at
    once; the server's RSS is sampled every 50 ms and its kernel peak (VmHWM) read at the end."""
    idle = RssSampler({"server": server_pid})
    idle.start()
    await asyncio.sleep(1.0)
    idle.stop()
    baseline = int(statistics.median(idle.samples["server"]))
    hwm_reset = reset_peak_rss(server_pid)
    statuses: dict[str, int] = {}
    limits = httpx.Limits(max_connections=photo_clients + png_clients)
    pending = iter(photos)

    async def send(client: httpx.AsyncClient, what: str, name: str, data: bytes, content_type: str) -> None:
        response = await client.post(
            "/api/v1/evidence",
            data={"kind": "photo", "inspection_id": world.inspection_id},
            files={"file": (name, data, content_type)},
        )
        code = response.json().get("code", "") if response.status_code >= 400 else ""
        key = f"{what} {response.status_code}{' ' + code if code else ''}"
        statuses[key] = statuses.get(key, 0) + 1
        if response.status_code >= 500:
            raise RuntimeError(f"{what}: the server answered {response.status_code}: {response.text[:300]}")

    sampler = RssSampler({"server": server_pid})
    sampler.start()
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": world.token}, limits=limits, trust_env=False, timeout=httpx.Timeout(300)
        ) as client:

            async def photo_client() -> None:
                for i, data in enumerate(pending):
                    await send(client, "photo", f"IMG_{i:04d}.jpg", data, "image/jpeg")

            async def png_client() -> None:
                for _ in range(png_uploads):
                    await send(client, "png", "huge.png", png, "image/png")

            await asyncio.gather(*(photo_client() for _ in range(photo_clients)), *(png_client() for _ in range(png_clients)))
        elapsed = time.perf_counter() - started
    finally:
        sampler.stop()
    hwm = proc_status(server_pid).get("VmHWM") if hwm_reset else None
    await asyncio.sleep(1.0)
    after = proc_status(server_pid)["VmRSS"]  # what the server keeps once the burst is over
    return MixedResult(
        seconds=elapsed,
        server_after_kib=after,
        server_baseline_kib=baseline,
        server_peak_kib=max(sampler.samples["server"] or [baseline]),
        server_hwm_kib=hwm,
        statuses=statuses,
        photos_per_second=len(photos) / elapsed,
    )


# --- main -----------------------------------------------------------------------------------------------------------


def _on_sigterm(*_: object) -> None:
    raise KeyboardInterrupt("SIGTERM")


def run_in_environment(prefix: str, timeout: float, run: Callable[[Env], int]) -> int:
    """Run a benchmark's `run` with a fresh Env in a temporary folder (named with `prefix`). SIGTERM and the overall
    deadline (`timeout` seconds) become KeyboardInterrupt, so the environment is always stopped and removed, also on
    error or Ctrl-C; on an error the tail of the server's log is printed."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    watchdog = threading.Timer(timeout, lambda: os.kill(os.getpid(), signal.SIGINT))
    watchdog.daemon = True
    watchdog.start()
    env = Env(tmp=Path(tempfile.mkdtemp(prefix=prefix)))
    try:
        return run(env)
    except KeyboardInterrupt as exc:
        log(f"interrupted ({exc or 'SIGINT / deadline'}); cleaning up")
        return 130
    except Exception:
        tail = env.server_log_tail()
        if tail:
            print(f"--- server log (tail) ---\n{tail}\n---", file=sys.stderr)
        raise
    finally:
        watchdog.cancel()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the cleanup
        env.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log("environment stopped and removed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=24, help="photos per measured phase (default 24)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients / worker threads (default 8)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="measure api and floor this many times, each round with fresh photos, alternating the order"
    )
    parser.add_argument("--warmup", type=int, default=2, help="extra photos sent through each path first, not measured")
    parser.add_argument("--video-mb", type=int, default=500, help="size of the video in MiB (default 500; 0 skips)")
    parser.add_argument(
        "--png-side", type=int, default=8900, help="phase 4: side of the PNGs sent alongside photos (default 8900; 0 skips phase 4)"
    )
    parser.add_argument("--png-clients", type=int, default=3, help="phase 4: clients sending the PNG (default 3)")
    parser.add_argument("--png-uploads", type=int, default=3, help="phase 4: PNG uploads per PNG client (default 3)")
    parser.add_argument("--mixed-photos", type=int, default=24, help="phase 4: fresh 12-MP photos sent meanwhile (default 24)")
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL server URL; a fresh database is created and dropped")
    parser.add_argument("--timeout", type=float, default=1800, help="overall deadline in seconds (default 1800)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    parser.add_argument(
        "--profile", action="store_true", help="run the API under bench/profiled_server.py and print where its CPU goes in the api phase"
    )
    args = parser.parse_args()
    if args.photos < 1 or args.concurrency < 1 or args.rounds < 1 or args.video_mb < 0:
        parser.error("--photos, --concurrency and --rounds must be >= 1, --video-mb >= 0")

    load_at_start = os.getloadavg()
    figures: dict[str, object] = {}

    def run(env: Env) -> int:
        start_environment(env, args.postgres, profile=args.profile)
        world = seed(env)
        log(f"seeded: inspection {world.inspection_id}")

        total = args.warmup + args.rounds * args.photos + (args.mixed_photos if args.png_side else 0)
        log(f"generating {total} distinct 4000x3000 JPEGs ...")
        t = time.perf_counter()
        photos = make_photos(total, first_seed=1)
        digests = {hashlib.sha256(p).hexdigest() for p in photos}
        if len(digests) != len(photos):
            raise RuntimeError("generated photos are not all distinct")
        warm = photos[: args.warmup]
        rounds = [photos[args.warmup + r * args.photos : args.warmup + (r + 1) * args.photos] for r in range(args.rounds)]
        mixed_photos = photos[args.warmup + args.rounds * args.photos :]
        sizes = [len(p) / 1e6 for p in photos[args.warmup : args.warmup + args.rounds * args.photos]]
        log(
            f"generated in {time.perf_counter() - t:.1f} s; measured photos {min(sizes):.2f}-{max(sizes):.2f} MB, "
            f"mean {statistics.mean(sizes):.2f} MB"
        )
        assert env.s3 is not None and env.server is not None and env.seaweed is not None
        assert env.seaweed.process is not None
        run = uuid.uuid4().hex[:8]
        phase_timeout = max(60.0, args.timeout / 3)
        cpu = CpuMeter({"client": os.getpid(), "server": env.server.pid, "seaweedfs": env.seaweed.process.pid})

        rss_before_photos = proc_status(env.server.pid)["VmRSS"]
        if warm:
            log(f"warm-up: {len(warm)} photos through the API and through the floor path ...")
            asyncio.run(api_uploads(env.base_url, world, photo_requests(world, warm), min(args.concurrency, len(warm)), phase_timeout))
            floor_uploads(env.s3, warm, min(args.concurrency, len(warm)), f"bench-floor/{run}/warmup", phase_timeout)

        api_rounds: list[Rate] = []
        floor_rounds: list[Rate] = []
        cpu_use: dict[str, dict[str, float]] = {"api": {}, "floor": {}}
        profile: dict[str, float] = {}

        def measure_api(batch: list[bytes]) -> None:
            log(f"api:   {len(batch)} photos, {args.concurrency} concurrent clients ...")
            env.profile("reset")
            requests = photo_requests(world, batch)
            time.sleep(0.2 if args.profile else 0)  # the sampler reads its control file every 0.1 s
            before = cpu.read()
            rate = asyncio.run(api_uploads(env.base_url, world, requests, args.concurrency, phase_timeout))
            CpuMeter.add(cpu_use["api"], before, cpu.read())
            for name, seconds in env.profile_dump().items():
                profile[name] = profile.get(name, 0.0) + seconds
            api_rounds.append(rate)
            log(f"api:   {rate.describe()}")

        def measure_floor(batch: list[bytes], r: int) -> None:
            log(f"floor: the same {len(batch)} photos, put_object + draft thumbnail in {args.concurrency} threads ...")
            before = cpu.read()
            rate = floor_uploads(env.s3, batch, args.concurrency, f"bench-floor/{run}/round{r}", phase_timeout)
            CpuMeter.add(cpu_use["floor"], before, cpu.read())
            floor_rounds.append(rate)
            log(f"floor: {rate.describe()}")

        for r, batch in enumerate(rounds):
            # Alternate the order between rounds so neither path always runs on a fresher store.
            if r % 2 == 0:
                measure_api(batch)
                measure_floor(batch, r)
            else:
                measure_floor(batch, r)
                measure_api(batch)
            if args.rounds > 1:
                log(f"round {r + 1}: ratio {api_rounds[-1].per_second / floor_rounds[-1].per_second:.2f}")
        rss_after_photos = proc_status(env.server.pid)["VmRSS"]
        api, floor = Rate.combine(api_rounds), Rate.combine(floor_rounds)
        ratio = api.per_second / floor.per_second
        round_ratios = [a.per_second / f.per_second for a, f in zip(api_rounds, floor_rounds, strict=True)]
        mixed: MixedResult | None = None
        if args.png_side:
            png = make_png(args.png_side)
            log(
                f"mixed: {len(mixed_photos)} photos from {args.concurrency} clients while {args.png_clients} clients send a "
                f"{args.png_side}x{args.png_side} PNG ({len(png) / 1e3:.0f} KB) {args.png_uploads} times each, sampling RSS ..."
            )
            mixed = asyncio.run(
                mixed_uploads(env.base_url, world, env.server.pid, mixed_photos, args.concurrency, png, args.png_clients, args.png_uploads)
            )
        memory: MemoryResult | None = None
        if args.video_mb:
            log(f"memory: one {args.video_mb} MiB video through POST /api/v1/evidence, sampling the server's RSS ...")
            memory = asyncio.run(video_upload(env.base_url, world, env.server.pid, args.video_mb * MIB))

        print()
        print(
            f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
            f"(before start: {' '.join(f'{x:.2f}' for x in load_at_start)})"
        )
        print(
            f"api: {api.per_second:.2f} photos/s  floor: {floor.per_second:.2f} photos/s  ratio: {ratio:.2f}"
            f"  (target >= {RATIO_TARGET:.2f}: {'met' if ratio >= RATIO_TARGET else 'NOT met'})"
        )
        print(f"api: {api.per_second:.2f} photos/s  (target >= {RATE_TARGET}: {'met' if api.per_second >= RATE_TARGET else 'NOT met'})")
        print(f"api: {api.mb_per_second:.1f} MB/s  floor: {floor.mb_per_second:.1f} MB/s")
        if args.rounds > 1:
            print(
                f"rounds: {args.rounds} x {args.photos} photos; ratio per round "
                f"{' '.join(f'{x:.2f}' for x in round_ratios)} (median {statistics.median(round_ratios):.2f})"
            )
        n = args.rounds * args.photos
        for phase in ("api", "floor"):
            used = cpu_use[phase]
            print(
                f"cpu per photo, {phase + ' phase:':<12} "
                + "  ".join(f"{name} {used.get(name, 0) / n * 1000:.0f} ms" for name in ("client", "server", "seaweedfs"))
                + f"  total {sum(used.values()) / n * 1000:.0f} ms"
            )
        print(f"server RSS: {rss_before_photos / 1024:.0f} MiB before the photos, {rss_after_photos / 1024:.0f} MiB after")
        if profile:
            total = sum(profile.values())
            print(f"server CPU per photo in the api phase, by step (sampled per thread; {total / n * 1000:.1f} ms in all):")
            print(f"  {'step':<48} {'ms/photo':>8} {'share':>6}")
            for name, seconds in sorted(profile.items(), key=lambda kv: -kv[1]):
                print(f"  {name:<48} {seconds / n * 1000:8.1f} {seconds / total:6.1%}")
            for name, (user, system) in env.thread_cpu.items():
                print(f"  {name}: user {user / n * 1000:.1f} ms + system {system / n * 1000:.1f} ms per photo")
            figures["server_profile_ms_per_photo"] = {k: round(v / n * 1000, 2) for k, v in profile.items()}
        figures.update(
            photos=args.photos,
            concurrency=args.concurrency,
            mean_photo_mb=round(statistics.mean(sizes), 2),
            api_photos_per_s=round(api.per_second, 3),
            api_mb_per_s=round(api.mb_per_second, 2),
            api_p50_ms=round(statistics.median(api.latencies) * 1000),
            floor_photos_per_s=round(floor.per_second, 3),
            floor_mb_per_s=round(floor.mb_per_second, 2),
            floor_p50_ms=round(statistics.median(floor.latencies) * 1000),
            ratio=round(ratio, 3),
            ratio_met=ratio >= RATIO_TARGET,
            rounds=args.rounds,
            round_ratios=[round(x, 3) for x in round_ratios],
            cpu_ms_per_photo={ph: {k: round(v / n * 1000) for k, v in used.items()} for ph, used in cpu_use.items()},
        )
        if mixed is not None:
            met = mixed.peak_mib < MIXED_PEAK_TARGET_MB
            print(
                f"mixed: {args.concurrency} photo clients + {args.png_clients} clients with {args.png_side}x{args.png_side} PNGs: "
                f"{mixed.seconds:.1f} s, photos {mixed.photos_per_second:.2f}/s; answers "
                + ", ".join(f"{k}: {v}" for k, v in sorted(mixed.statuses.items()))
            )
            print(
                f"mixed: server RSS baseline {mixed.server_baseline_kib / 1024:.0f} MiB, "
                f"sampled peak {mixed.server_peak_kib / 1024:.0f} MiB, "
                f"VmHWM {(mixed.server_hwm_kib or 0) / 1024:.0f} MiB, {mixed.server_after_kib / 1024:.0f} MiB 1 s after"
                f"  (target peak < {MIXED_PEAK_TARGET_MB}: {'met' if met else 'NOT met'})"
            )
            figures.update(
                mixed_png_side=args.png_side,
                mixed_statuses=mixed.statuses,
                mixed_rss_baseline_mib=round(mixed.server_baseline_kib / 1024),
                mixed_rss_peak_mib=round(mixed.peak_mib),
                mixed_rss_after_mib=round(mixed.server_after_kib / 1024),
                mixed_met=met,
            )
        if memory is not None:
            met = memory.increase_mb < RSS_TARGET_MB
            print(
                f"video: {memory.size / MIB:.0f} MiB in {memory.seconds:.1f} s ({memory.size / 1e6 / memory.seconds:.1f} MB/s), "
                f"{memory.samples} RSS samples"
            )
            print(
                f"server RSS baseline: {memory.server_baseline_kib / 1024:.1f} MiB  peak: {memory.server_peak_kib / 1024:.1f} MiB  "
                f"increase: {memory.increase_mb:.1f} MiB  (target < {RSS_TARGET_MB}: {'met' if met else 'NOT met'})"
            )
            if memory.hwm_increase_mb is not None:
                print(
                    f"server VmHWM (kernel peak since reset): {memory.server_hwm_kib / 1024:.1f} MiB  "  # type: ignore[operator]
                    f"increase: {memory.hwm_increase_mb:.1f} MiB"
                )
            print(
                f"server RssAnon: baseline {memory.server_anon_baseline_kib / 1024:.1f} MiB, "
                f"peak {memory.server_anon_peak_kib / 1024:.1f} MiB"
            )
            print(
                f"client RSS baseline: {memory.client_baseline_kib / 1024:.1f} MiB  peak: {memory.client_peak_kib / 1024:.1f} MiB  "
                f"increase: {(memory.client_peak_kib - memory.client_baseline_kib) / 1024:.1f} MiB"
            )
            figures.update(
                video_mib=args.video_mb,
                video_seconds=round(memory.seconds, 2),
                rss_baseline_mib=round(memory.server_baseline_kib / 1024, 1),
                rss_peak_mib=round(memory.server_peak_kib / 1024, 1),
                rss_increase_mib=round(memory.increase_mb, 1),
                rss_met=met,
                hwm_increase_mib=None if memory.hwm_increase_mb is None else round(memory.hwm_increase_mb, 1),
            )
        if args.json:
            print(json.dumps(figures))
        return 0

    return run_in_environment("evidence-bench-", args.timeout, run)


if __name__ == "__main__":
    sys.exit(main())
