"""Settings from the environment, with defaults that let the service start with nothing installed."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import overload

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Password hashing: argon2id with OWASP's minimum configuration (Password Storage Cheat Sheet,
# https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html: "Argon2id with a minimum
# configuration of 19 MiB of memory, an iteration count of 2, and 1 degree of parallelism"). RFC 9106 §4 gives two
# uniformly safe options (t=1, p=4, m=2 GiB; "if much less memory is available", t=3, p=4, m=64 MiB, which is
# argon2-cffi's default and what hashes made before this setting carry) and otherwise a procedure tailored to the
# hardware: choose the lanes p each call may use, the memory m each call can afford, then the passes t that fit the
# time each call can take. On a 2-core server that answers bursts of logins, each call gets one core (p=1, with
# PASSWORD_HASH_CONCURRENCY calls at once) and a few tens of milliseconds: measured on the 2-vCPU machine of
# bench/RESULTS.md, t=3/p=4/64 MiB costs 160-175 ms of CPU per hash, this one 20-25 ms. Salt 16 bytes and tag
# 32 bytes, as RFC 9106 §4 recommends. Hashes made with other parameters still verify and are rehashed at login.
ARGON2_TIME_COST = 2
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_PARALLELISM = 1

# The font the PDFs embed (a subset of it: only the glyphs a document uses), so any reader shows them. WenQuanYi Micro
# Hei from Debian's fonts-wqy-microhei (Apache-2.0 or GPLv3 with the font-embedding exception): a glyf-based TrueType
# collection with Chinese (GB 18030's common characters), Latin, digits and full-width punctuation. `./run.sh`
# installs it when it is missing.
DEFAULT_PDF_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def cpu_count() -> int:
    """CPUs this process may run on (its affinity, where the platform tells)."""
    sched_getaffinity = getattr(os, "sched_getaffinity", None)
    return len(sched_getaffinity(0)) if sched_getaffinity else os.cpu_count() or 1


@overload
def _env(name: str, default: str) -> str: ...
@overload
def _env(name: str, default: None = None) -> str | None: ...
def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _positive(name: str, default: int) -> int:
    """A whole number of at least 1 (`52_000_000` is fine); anything else stops start-up naming the setting."""
    raw = _env(name, str(default))
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive whole number, not {value}")
    return value


def _read_or_create_secret(path: Path, nbytes: int = 32) -> str:
    """A secret kept in local state: generated once, never hard-coded, readable only by the owner."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    value = secrets.token_urlsafe(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value)
    return value


def _seconds(name: str, default: float) -> float:
    """A positive number of seconds (`0.5` is fine); anything else stops start-up naming the setting."""
    raw = _env(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, not {raw}")
    return value


def _flag(name: str, default: bool) -> bool:
    return _env(name, "true" if default else "false").lower() in ("1", "true", "yes", "on")


def _dates(name: str) -> tuple[date, ...]:
    """A comma-separated list of ISO dates (`2026-10-01,2026-10-02`); anything else stops start-up naming the setting."""
    raw = _env(name, "")
    try:
        return tuple(sorted(date.fromisoformat(part.strip()) for part in raw.split(",") if part.strip()))
    except ValueError:
        raise ValueError(f"{name} must be ISO dates separated by commas, not {raw!r}") from None


def _unclassified(raw: str) -> str | None:
    if raw not in ("general", "key", "none"):
        raise ValueError(f"UNCLASSIFIED_CATEGORY must be general, key or none, not {raw!r}")
    return None if raw == "none" else raw


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    database_url: str
    secret_key: str
    s3_endpoint: str | None
    s3_access_key: str | None
    s3_secret_key: str | None
    s3_bucket: str
    s3_secure: bool
    admin_username: str
    admin_password: str | None
    host: str
    port: int
    token_ttl_minutes: int
    lookback_delay_days: int
    lookback_sample_rate: float
    major_fine_threshold: int
    max_upload_bytes: int
    max_photo_bytes: int
    max_document_bytes: int
    timezone: str
    max_json_body_bytes: int = 1024**2
    max_header_bytes: int = 16 * 1024
    login_max_failures: int = 5  # failed logins per username and client address within the window
    login_window_seconds: int = 300
    login_max_failures_per_address: int = 50  # failed logins per client address, whatever the usernames
    password_hash_concurrency: int = field(default_factory=cpu_count)  # argon2 runs at once, in worker threads
    password_hash_time_cost: int = ARGON2_TIME_COST
    password_hash_memory_kib: int = ARGON2_MEMORY_KIB
    password_hash_parallelism: int = ARGON2_PARALLELISM
    # photos: see backend/evidence/media.py PhotoLimits for why these numbers
    max_photo_pixels: int = 52_000_000
    max_photo_pixels_full_decode: int = 24_000_000
    photo_decodes: int = 2
    checklists_dir: Path = field(default=PROJECT_ROOT / "checklists")
    # The object store as phones reach it (`https://s3.agency.example`); presigned links are signed for that host.
    s3_public_endpoint: str | None = None
    # Seconds to open a connection to the store, and to wait for its answer or for the next bytes of a body.
    s3_connect_timeout: float = 2.0
    s3_read_timeout: float = 15.0
    # Tries of an idempotent store call (GET, HEAD, PUT, DELETE) before it fails; 0.5 s, 1 s, ... between tries.
    s3_attempts: int = 2
    database_connect_timeout: float = 5.0
    # The `Retry-After` of a 503 answered while the database or the object store is unavailable.
    retry_after_seconds: int = 5
    # 行政处罚程序 (backend/enforcement/procedure.py). 陈述、申辩: the statute sets no period (行政处罚法 第四十四、
    # 四十五条); the agency's notice gives one, in working days like the statute's short periods (第八十五条).
    statement_days: int = 3
    # 较大数额罚款 (第六十三条(一)): set by each province; without one, the old 安全生产违法行为行政处罚办法's
    # figures (3万 for a unit, 1万 for a person). Also the amount of 没收较大数额违法所得 (第六十三条(二)).
    hearing_fine_unit: int = 30000
    hearing_fine_person: int = 10000
    # Working days (第八十五条: "二日""三日""五日""七日" are working days): Monday to Friday but these holidays,
    # plus these weekend days that are worked (调休). Nobody publishes them in advance for more than a year.
    holidays: tuple[date, ...] = ()
    makeup_workdays: tuple[date, ...] = ()
    # Where a fine is paid (第六十七条第三款), printed in the 行政处罚决定书.
    payment_place: str = "指定的银行或者通过电子支付系统"
    # The 行政复议机关 printed in the remedy line; unset: the 本级人民政府 of the deciding agency (行政复议法 第二十四条).
    review_authority: str | None = None
    # 分类分级 (安全生产法 第六十二条): no national rule says how an enterprise nobody classified yet is treated
    # (regulations/PROCEDURE.md §B3: 安监总政法〔2017〕150号 第八条 onward NOT FOUND). By default it is drawn from as
    # `general` (一般检查单位: the 双随机 population); `none` leaves it out of every draw until it is classified.
    unclassified_category: str | None = "general"
    # 一公开: when a draw appears on GET /public/draws. No national deadline was found (PROCEDURE.md §B3, "20个工作日"
    # NOT FOUND); by default at once. Days after the draw otherwise (so a list is not out before the visits begin).
    draw_publication_delay_days: int = 0
    # 事故整改和防范措施落实情况评估: the statute (安全生产法 第八十六条第三款) sets only "批复事故调查报告后一年内"; the
    # days to finish an evaluation once started are provincial practice (四川: 60日内完成, PROCEDURE.md §B4), not
    # the national 办法, whose text is not verified.
    accident_evaluation_days: int = 60
    # The desk console's session cookie is sent over HTTPS only (set it wherever the console is served over TLS).
    console_cookie_secure: bool = False
    # Processes `serve` runs (PostgreSQL only), and the proxies whose X-Forwarded-For/-Proto uvicorn believes.
    workers: int = 1
    forwarded_allow_ips: str = "127.0.0.1"
    # Background jobs of this process: the webhook dispatcher and the scheduler (backend/integration/).
    jobs: bool = True
    scheduler_interval_seconds: float = 60.0
    case_deadline_near_days: int = 3  # case.deadline_near is raised this many days before a case's deadline
    # Webhooks (backend/integration/webhooks.py, delivery.py)
    webhook_allow_private: bool = False  # receivers on loopback and private ranges (an agency's intranet)
    webhook_timeout_seconds: float = 10.0  # one delivery attempt, connect to last byte
    webhook_concurrency: int = 8  # deliveries in flight per receiver per process
    webhook_retry_window_seconds: float = 86400.0  # retried with back-off this long, then `failed`
    webhook_backoff_base_seconds: float = 10.0  # first retry after this, doubling up to the maximum
    webhook_backoff_max_seconds: float = 3600.0
    webhook_poll_seconds: float = 1.0  # how often a process looks for due deliveries and new events
    webhook_key: str | None = None  # encrypts stored webhook secrets; unset: derived from SECRET_KEY
    # A TrueType font (.ttf, or a .ttc with the index of the face to use) with Chinese glyphs, embedded in every PDF.
    pdf_font_path: Path = DEFAULT_PDF_FONT
    pdf_font_index: int = 0

    @classmethod
    def from_env(cls) -> Settings:
        state_dir = Path(_env("STATE_DIR", str(PROJECT_ROOT / ".state"))).resolve()
        state_dir.mkdir(parents=True, exist_ok=True)
        workers = _positive("WORKERS", 1)
        return cls(
            state_dir=state_dir,
            database_url=_env("DATABASE_URL", f"sqlite+aiosqlite:///{state_dir / 'safety.db'}"),
            secret_key=_env("SECRET_KEY") or _read_or_create_secret(state_dir / "secret_key"),
            s3_endpoint=_env("S3_ENDPOINT"),
            s3_access_key=_env("S3_ACCESS_KEY"),
            s3_secret_key=_env("S3_SECRET_KEY"),
            s3_bucket=_env("S3_BUCKET", "safety-evidence"),
            s3_secure=_env("S3_SECURE", "false").lower() in ("1", "true", "yes"),
            admin_username=_env("ADMIN_USERNAME", "admin"),
            admin_password=_env("ADMIN_PASSWORD"),
            host=_env("HOST", "127.0.0.1"),
            port=int(_env("PORT", "8000")),
            token_ttl_minutes=int(_env("TOKEN_TTL_MINUTES", "720")),
            lookback_delay_days=int(_env("LOOKBACK_DELAY_DAYS", "30")),
            lookback_sample_rate=float(_env("LOOKBACK_SAMPLE_RATE", "0.2")),
            major_fine_threshold=int(_env("MAJOR_FINE_THRESHOLD", "100000")),
            max_upload_bytes=int(_env("MAX_UPLOAD_BYTES", str(2 * 1024**3))),
            max_photo_bytes=int(_env("MAX_PHOTO_BYTES", str(40 * 1024**2))),
            max_document_bytes=int(_env("MAX_DOCUMENT_BYTES", str(100 * 1024**2))),
            timezone=_env("TIMEZONE", "Asia/Shanghai"),
            max_json_body_bytes=int(_env("MAX_JSON_BODY_BYTES", str(1024**2))),
            max_header_bytes=int(_env("MAX_HEADER_BYTES", str(16 * 1024))),
            login_max_failures=_positive("LOGIN_MAX_FAILURES", 5),
            login_window_seconds=_positive("LOGIN_WINDOW_SECONDS", 300),
            login_max_failures_per_address=_positive("LOGIN_MAX_FAILURES_PER_ADDRESS", 50),
            # the machine's CPUs shared by the processes `serve` runs on it
            password_hash_concurrency=_positive("PASSWORD_HASH_CONCURRENCY", max(1, cpu_count() // workers)),
            password_hash_time_cost=_positive("PASSWORD_HASH_TIME_COST", ARGON2_TIME_COST),
            password_hash_memory_kib=_positive("PASSWORD_HASH_MEMORY_KIB", ARGON2_MEMORY_KIB),
            password_hash_parallelism=_positive("PASSWORD_HASH_PARALLELISM", ARGON2_PARALLELISM),
            max_photo_pixels=_positive("MAX_PHOTO_PIXELS", 52_000_000),
            max_photo_pixels_full_decode=_positive("MAX_PHOTO_PIXELS_FULL_DECODE", 24_000_000),
            photo_decodes=_positive("PHOTO_DECODES", 2),
            checklists_dir=Path(_env("CHECKLISTS_DIR", str(PROJECT_ROOT / "checklists"))),
            s3_public_endpoint=_env("S3_PUBLIC_ENDPOINT"),
            s3_connect_timeout=float(_env("S3_CONNECT_TIMEOUT", "2")),
            s3_read_timeout=float(_env("S3_READ_TIMEOUT", "15")),
            s3_attempts=max(1, int(_env("S3_ATTEMPTS", "2"))),
            database_connect_timeout=float(_env("DATABASE_CONNECT_TIMEOUT", "5")),
            retry_after_seconds=int(_env("RETRY_AFTER_SECONDS", "5")),
            statement_days=_positive("STATEMENT_DAYS", 3),
            hearing_fine_unit=_positive("HEARING_FINE_UNIT", 30000),
            hearing_fine_person=_positive("HEARING_FINE_PERSON", 10000),
            holidays=_dates("HOLIDAYS"),
            makeup_workdays=_dates("MAKEUP_WORKDAYS"),
            payment_place=_env("PAYMENT_PLACE", "指定的银行或者通过电子支付系统"),
            review_authority=_env("REVIEW_AUTHORITY"),
            unclassified_category=_unclassified(_env("UNCLASSIFIED_CATEGORY", "general")),
            draw_publication_delay_days=int(_env("DRAW_PUBLICATION_DELAY_DAYS", "0")),
            accident_evaluation_days=_positive("ACCIDENT_EVALUATION_DAYS", 60),
            console_cookie_secure=_env("CONSOLE_COOKIE_SECURE", "false").lower() in ("1", "true", "yes"),
            workers=workers,
            forwarded_allow_ips=_env("FORWARDED_ALLOW_IPS", "127.0.0.1"),
            jobs=_flag("JOBS", True),
            scheduler_interval_seconds=_seconds("SCHEDULER_INTERVAL_SECONDS", 60.0),
            case_deadline_near_days=_positive("CASE_DEADLINE_NEAR_DAYS", 3),
            webhook_allow_private=_flag("WEBHOOK_ALLOW_PRIVATE", False),
            webhook_timeout_seconds=_seconds("WEBHOOK_TIMEOUT_SECONDS", 10.0),
            webhook_concurrency=_positive("WEBHOOK_CONCURRENCY", 8),
            webhook_retry_window_seconds=_seconds("WEBHOOK_RETRY_WINDOW_SECONDS", 86400.0),
            webhook_backoff_base_seconds=_seconds("WEBHOOK_BACKOFF_BASE_SECONDS", 10.0),
            webhook_backoff_max_seconds=_seconds("WEBHOOK_BACKOFF_MAX_SECONDS", 3600.0),
            webhook_poll_seconds=_seconds("WEBHOOK_POLL_SECONDS", 1.0),
            webhook_key=_env("WEBHOOK_KEY"),
            pdf_font_path=Path(_env("PDF_FONT_PATH", str(DEFAULT_PDF_FONT))),
            pdf_font_index=int(_env("PDF_FONT_INDEX", "0")),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
