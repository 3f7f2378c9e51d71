"""Run uvicorn with a per-thread CPU sampler, so the ingest benchmark can say where the server's CPU goes.

    python bench/profiled_server.py CONTROL_FILE [uvicorn arguments ...]

Every `INTERVAL` seconds a daemon thread reads each thread's own CPU clock (``pthread_getcpuclockid``) and its
current Python stack (``sys._current_frames``), and charges the CPU that thread used since the previous sample to
the first *category* found walking that stack from the innermost frame outwards (see ``CATEGORIES``). C code that
releases the GIL (Pillow's decoders, hashlib on large buffers, socket I/O) is charged to the Python frame that called
it, which is what we want: "JPEG draft decode" rather than "C". Threads that sleep use no CPU and cost nothing.

The benchmark drives it through CONTROL_FILE: it writes ``reset`` before a measured phase and ``dump PATH`` after;
the sampler answers by writing a JSON object {category: cpu_seconds} to PATH (atomically, via PATH.tmp).

Sampling costs a little CPU itself (``sampler`` in the table); at 2 ms it is about 1-2 % of one core.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from types import FrameType

INTERVAL = 0.002
SWITCH_INTERVAL = 0.0001

# (category, predicate on (filename, function name)); the innermost matching frame wins, so more specific entries
# (a Pillow call inside inspect_photo) are matched before the enclosing one (inspect_photo itself).
CATEGORIES: list[tuple[str, str, str]] = [
    # photo inspection, split by step
    ("photo: decode (Image.load)", "PIL/ImageFile.py", "load"),
    ("photo: decode (Image.load)", "PIL/Image.py", "load"),
    ("photo: draft / open / header", "PIL/JpegImagePlugin.py", ""),
    ("photo: draft / open / header", "PIL/PngImagePlugin.py", ""),
    ("photo: EXIF parse", "PIL/TiffImagePlugin.py", ""),
    ("photo: EXIF parse", "PIL/Image.py", "getexif"),
    ("photo: EXIF parse", "PIL/Image.py", "get_ifd"),
    ("photo: orientation (exif_transpose)", "PIL/ImageOps.py", "exif_transpose"),
    ("photo: thumbnail resize", "PIL/Image.py", "thumbnail"),
    ("photo: thumbnail resize", "PIL/Image.py", "resize"),
    ("photo: thumbnail resize", "PIL/Image.py", "reduce"),
    ("photo: thumbnail JPEG encode", "PIL/Image.py", "save"),
    ("photo: open / other Pillow", "PIL/", ""),
    ("photo: open / other Pillow", "backend/evidence/media.py", ""),
    # receiving the body
    ("upload: sha256", "backend/evidence/upload.py", "_hash"),
    ("upload: multipart parse", "multipart.py", ""),
    ("upload: spool write / parser loop", "backend/evidence/upload.py", ""),
    ("upload: spool write / parser loop", "tempfile.py", ""),
    ("http: receive (uvicorn/httptools)", "uvicorn/protocols/", ""),
    ("http: receive (litestar request.stream)", "litestar/connection/", ""),
    # the rest of the request
    ("store: minio put (SigV4 sha256, send)", "minio/", ""),
    ("store: minio put (SigV4 sha256, send)", "urllib3/", ""),
    ("store: minio put (SigV4 sha256, send)", "backend/storage.py", ""),
    ("database (SQLAlchemy, asyncpg, aiosqlite)", "sqlalchemy/", ""),
    ("database (SQLAlchemy, asyncpg, aiosqlite)", "asyncpg/", ""),
    ("database (SQLAlchemy, asyncpg, aiosqlite)", "aiosqlite/", ""),
    ("database (SQLAlchemy, asyncpg, aiosqlite)", "sqlmodel/", ""),
    ("auth (JWT, user lookup)", "backend/auth.py", ""),
    ("auth (JWT, user lookup)", "jwt/", ""),
    ("auth (JWT, user lookup)", "joserfc/", ""),
    ("service (evidence, audit, unit of work)", "backend/", ""),
    ("litestar (routing, DI, serialisation)", "litestar/", ""),
    ("litestar (routing, DI, serialisation)", "msgspec/", ""),
    ("litestar (routing, DI, serialisation)", "pydantic", ""),
    ("thread hand-off (anyio / asyncio)", "anyio/", ""),
    ("thread hand-off (anyio / asyncio)", "concurrent/futures", ""),
    ("event loop (asyncio/uvloop, sockets)", "asyncio/", ""),
    ("event loop (asyncio/uvloop, sockets)", "uvicorn/", ""),
    ("event loop (asyncio/uvloop, sockets)", "uvloop/", ""),
    ("event loop (asyncio/uvloop, sockets)", "threading.py", ""),
]


def categorise(frame: FrameType | None) -> str:
    seen: list[tuple[str, str]] = []
    while frame is not None:
        seen.append((frame.f_code.co_filename, frame.f_code.co_name))
        frame = frame.f_back
    for filename, function in seen:  # innermost first
        for category, path_part, name in CATEGORIES:
            if path_part in filename and (not name or name == function):
                return category
    return "other"


class Sampler(threading.Thread):
    def __init__(self, control: Path) -> None:
        super().__init__(name="cpu-sampler", daemon=True)
        self.control = control
        self.totals: dict[str, float] = defaultdict(float)
        self.innermost: dict[str, float] = defaultdict(float)
        self.last: dict[int, float] = {}
        self.samples = 0
        self.threads_at_reset: dict[str, list[float]] = {}

    @staticmethod
    def _thread_times() -> dict[str, list[float]]:
        """User and system CPU seconds of the event loop thread and of all other threads, from /proc."""
        tick = os.sysconf("SC_CLK_TCK")
        main = threading.main_thread().native_id
        out = {"event loop thread": [0.0, 0.0], "other threads": [0.0, 0.0]}
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            which = out["event loop thread" if int(task) == main else "other threads"]
            which[0] += int(fields[11]) / tick
            which[1] += int(fields[12]) / tick
        return out

    def _control(self) -> None:
        try:
            command = self.control.read_text().strip()
        except OSError:
            return
        if not command:
            return
        self.control.write_text("")
        if command == "reset":
            self.totals.clear()
            self.innermost.clear()
            self.threads_at_reset = self._thread_times()
            self.samples = 0
        elif command.startswith("dump "):
            target = Path(command[5:])
            tmp = target.with_suffix(".tmp")
            now = self._thread_times()
            threads = {
                name: [now[name][i] - self.threads_at_reset.get(name, [0.0, 0.0])[i] for i in (0, 1)] for name in now
            }  # threads that ended meanwhile are missing from `now`: an approximation, fine for a long-lived pool
            body = {"samples": self.samples, "cpu_seconds": dict(self.totals), "innermost": dict(self.innermost), "threads": threads}
            tmp.write_text(json.dumps(body))
            tmp.replace(target)

    def run(self) -> None:
        own = threading.get_ident()
        tick = 0
        while True:
            time.sleep(INTERVAL)
            tick += 1
            if tick % 50 == 0:
                self._control()
            frames = sys._current_frames()
            self.samples += 1
            for ident, frame in frames.items():
                try:
                    cpu = time.clock_gettime(time.pthread_getcpuclockid(ident))
                except (OSError, ProcessLookupError):
                    continue
                used = cpu - self.last.get(ident, cpu)
                self.last[ident] = cpu
                if used <= 0:
                    continue
                self.totals["sampler (this profiler)" if ident == own else categorise(frame)] += used
                if frame is not None and ident != own:
                    where = f"{'/'.join(frame.f_code.co_filename.split('/')[-2:])}:{frame.f_code.co_name}:{frame.f_lineno}"
                    self.innermost[where] += used


def main() -> None:
    # A short switch interval makes the event loop thread give up the GIL to the sampler within 0.1 ms wherever it
    # is, so its samples land at random points of its work rather than only where it blocks (epoll, socket I/O).
    sys.setswitchinterval(SWITCH_INTERVAL)
    control = Path(sys.argv[1])
    control.write_text("")
    Sampler(control).start()
    import uvicorn

    sys.argv = ["uvicorn", *sys.argv[2:]]
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    uvicorn.main()


if __name__ == "__main__":
    main()
