"""A real HTTP receiver of webhooks on 127.0.0.1, for tests and benchmarks: asyncio streams, HTTP/1.1 with
keep-alive, and a behaviour chosen per request — answer 200, answer 500, answer late, or close the connection
without answering."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

OK, ERROR, SLOW, CLOSE = "ok", "error", "slow", "close"


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes
    answered: str

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        expected = hmac.new(secret.encode(), self.headers["x-timestamp"].encode() + b"." + self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers["x-signature"], f"sha256={expected}")


@dataclass
class Receiver:
    """`plan` answers the first requests in order; then every request gets `then` (a mode, or a function of the
    request choosing one)."""

    plan: list[str] = field(default_factory=list)
    then: str | Callable[[Received], str] = OK
    delay: float = 5.0  # how late a SLOW answer comes
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def event_ids(self, answered: str | None = OK) -> list[str]:
        return [r.headers["x-event-id"] for r in self.received if answered is None or r.answered == answered]

    def _mode(self, request: Received) -> str:
        if self.plan:
            return self.plan.pop(0)
        return self.then(request) if callable(self.then) else self.then

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Received(time.monotonic(), headers, body, "")
                request.answered = mode = self._mode(request)
                self.received.append(request)
                if mode == CLOSE:
                    return
                if mode == SLOW:
                    await asyncio.sleep(self.delay)
                status = b"500 Internal Server Error" if mode == ERROR else b"200 OK"
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()
