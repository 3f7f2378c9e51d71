"""Database engine, sessions and the column types every table shares."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import DateTime, event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

# Stable constraint names, so Alembic migrations are the same on PostgreSQL and SQLite.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Instants stored in UTC and always returned timezone-aware (SQLite keeps no offset of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def uuid_pk() -> Any:
    return Field(default_factory=uuid.uuid4, primary_key=True)


def created_at_field() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def rel(relationship: Sequence[SQLModel]) -> QueryableAttribute[Any]:
    """A relationship as loader options such as selectinload() take it: what sqlmodel.col() is for columns.

    On the class a relationship is an InstrumentedAttribute, but SQLModel annotates it as the list it loads, and
    col() types it as Mapped, which loader options do not accept; so the type is cast, and nothing happens at run time."""
    return cast("QueryableAttribute[Any]", relationship)


def to_async_url(url: str) -> str:
    """Accept plain postgresql:// and sqlite:// URLs and pick the async drivers the stack uses."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


# A session opened with this execution option starts its SQLite transaction with BEGIN IMMEDIATE: it takes the
# database's single write lock up front, so concurrent writers queue (busy_timeout) instead of failing with
# "database is locked" when a reader tries to upgrade to a writer halfway through.
SQLITE_WRITE = {"sqlite_begin": "IMMEDIATE"}


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    if "sqlite" in type(dbapi_connection).__module__:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        # The driver's own transaction handling is off; the "begin" listener below emits BEGIN itself, which is
        # also what makes SAVEPOINT work on SQLite.
        dbapi_connection.isolation_level = None


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection: Any) -> None:
    if connection.dialect.name != "sqlite":
        return
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str, *, connect_timeout: float = 5.0, pool_size: int = 10, max_overflow: int = 20) -> AsyncEngine:
    """`connect_timeout`: seconds a new PostgreSQL connection may take (asyncpg's own default is 60), so a server
    that does not answer fails a request in seconds, as a 503, instead of holding it for a minute."""
    url = to_async_url(url)
    if url.startswith("sqlite"):
        return create_async_engine(url, connect_args={"timeout": 30})
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True, connect_args={"timeout": connect_timeout}
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def upsert_into(dialect_name: str, model: Any) -> Any:
    """An INSERT that takes ON CONFLICT clauses, in the dialect of the session it runs on (both speak them)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql.insert if dialect_name == "postgresql" else sqlite.insert)(model)
