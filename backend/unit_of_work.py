"""The one write path.

- One unit of work per request: the session a handler gets is committed once, after the handler returned, and
  rolled back on any error (`provide_db_session`). Services never commit.
- On SQLite, the embedded default, a request that may write starts with `BEGIN IMMEDIATE`, so writers queue instead
  of failing each other.
- What every change of a tracked aggregate brings along is applied at flush, so no service can forget it: the
  `updated_at` stamp, the change-feed row phones sync from, the running figures, and two checks — the change was
  audited, and any status it changed was moved by its workflow's `transition()`.
- An offline create racing its own retry is settled by `insert_once`, inside a savepoint.
- No call to the object store while a transaction is open: a request that needs the store reads and checks first,
  ends that transaction with `end_reads` (its connection goes back to the pool), calls the store, and then writes in
  a fresh transaction, the one the unit of work commits. A stalled store never holds a connection or a lock.
- A concurrent change that lost (a stale version, a unique key taken meanwhile) is `409 concurrent_change`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

from litestar import Request, Response
from sqlalchemy import event, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import col

from backend.accounts.models import Agency, Enterprise
from backend.audit import AuditLog
from backend.clock import now
from backend.db import SQLITE_WRITE
from backend.errors import Conflict, ErrorCode, handle_app_error
from backend.sync.models import ChangeLog
from backend.workflow import ALLOWED_MOVES_KEY

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# (session, state before the change or None for a new row, the row) -> None; runs inside the flush
FigureHook = Callable[[Session, dict[str, Any] | None, Any], None]
# (session, row) -> (enterprise id, agency path) that scope the row's change-feed entries
FeedScope = Callable[[Session, Any], tuple[uuid.UUID | None, str | None]]


@dataclass
class Tracked:
    entity: str
    feed: FeedScope | None
    figures: list[FigureHook] = field(default_factory=list)
    # columns whose committed value the figure hooks need to know where the row was counted before
    remembered: tuple[str, ...] = ()


TRACKED: dict[type, Tracked] = {}
AUDITED_KEY, TOUCHED_KEY = "audited", "touched"  # session.info: what this transaction audited and changed


def track(model: type, entity: str, *, feed: FeedScope | None, remembered: tuple[str, ...] = ()) -> Tracked:
    TRACKED[model] = Tracked(entity=entity, feed=feed, remembered=remembered)
    return TRACKED[model]


def feed_of_enterprise(session: Session, row: Any) -> tuple[uuid.UUID | None, str | None]:
    """Feed scope of a row that belongs to an enterprise: its users, and the staff of the agencies over it."""
    query = (
        select(col(Agency.path))
        .join(Enterprise, col(Enterprise.agency_id) == col(Agency.id))
        .where(col(Enterprise.id) == row.enterprise_id)
    )
    return row.enterprise_id, session.execute(query).scalar_one()


def _before(row: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    state = inspect(row)
    values = {}
    for name in columns:
        history = state.attrs[name].history
        values[name] = history.deleted[0] if history.deleted else getattr(row, name)
    return values


@event.listens_for(Session, "before_flush")
def _with_every_change(session: Session, _context: Any, _instances: Any) -> None:
    audited: set[tuple[str, str]] = session.info.setdefault(AUDITED_KEY, set())
    audited.update((row.entity, row.entity_id) for row in session.new if isinstance(row, AuditLog))
    touched: set[tuple[str, str]] = session.info.setdefault(TOUCHED_KEY, set())
    moves: set[tuple[int, str]] = session.info.get(ALLOWED_MOVES_KEY, set())
    changed = [(row, True) for row in session.new] + [(row, False) for row in session.dirty]
    for row, is_new in changed:
        spec = TRACKED.get(type(row))
        if spec is None or (not is_new and not session.is_modified(row)):
            continue
        touched.add((spec.entity, str(row.id)))
        before = None
        if not is_new:
            status = inspect(row).attrs.status.history if hasattr(row, "status") else None
            if status is not None and status.has_changes() and (id(row), row.status) not in moves:
                raise RuntimeError(f"{spec.entity} {row.id}: status set outside its workflow's transition()")
            before = _before(row, spec.remembered)
            if hasattr(row, "updated_at"):
                row.updated_at = now()
        for hook in spec.figures:
            hook(session, before, row)
        if spec.feed is not None:
            enterprise_id, agency_path = spec.feed(session, row)
            session.add(
                ChangeLog(
                    entity=spec.entity,
                    entity_id=str(row.id),
                    op="create" if is_new else "update",
                    enterprise_id=str(enterprise_id) if enterprise_id else None,
                    agency_path=agency_path,
                )
            )


@event.listens_for(Session, "before_commit")
def _every_change_audited(session: Session) -> None:
    session.flush()
    unaudited = session.info.get(TOUCHED_KEY, set()) - session.info.get(AUDITED_KEY, set())
    if unaudited:
        raise RuntimeError(f"changed without an audit row in the same transaction: {sorted(unaudited)}")


@event.listens_for(Session, "after_commit")
def _forget(session: Session) -> None:
    for key in (AUDITED_KEY, TOUCHED_KEY, ALLOWED_MOVES_KEY):
        session.info.pop(key, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_unless_savepoint(session: Session, previous_transaction: Any) -> None:
    """A savepoint rolled back (a racing insert_once) keeps what the enclosing transaction has to answer for."""
    if not previous_transaction.nested:
        _forget(session)


async def insert_once(session: AsyncSession, row: Any, *companions: Any) -> bool:
    """Insert `row` (with the rows that go with it: its audit and timeline rows) unless a row with its key exists.

    False when a racing retry inserted it first: the savepoint is rolled back, the rest of the unit of work is kept,
    and the caller reads the existing row and compares it."""
    await session.flush()
    try:
        async with session.begin_nested():
            session.add(row)
            session.add_all(companions)
    except IntegrityError:
        return False
    return True


async def end_reads(session: AsyncSession) -> None:
    """End the request's transaction after its reads, before a slow call outside the database (the object store).

    Nothing may have been written yet: writes belong after the slow call, in the transaction the unit of work commits.
    The connection goes back to the pool (on SQLite the write lock is released). Rows read so far stay usable with
    what was loaded (they are detached, not expired); the next query begins a fresh transaction."""
    if session.new or session.dirty or session.deleted or session.info.get(TOUCHED_KEY) or session.info.get(AUDITED_KEY):
        raise RuntimeError("end_reads() after a write: write after the slow call, in the transaction the unit of work commits")
    session.expunge_all()
    await session.rollback()


async def provide_db_session(request: Request[Any, Any, Any]) -> AsyncGenerator[AsyncSession, None]:
    """One unit of work per request: committed once when the handler returned, rolled back on any error."""
    writes = request.method not in READ_METHODS or bool(request.route_handler.opt.get("writes"))
    options = SQLITE_WRITE if writes else {}
    async with request.app.state.sessionmaker(execution_options=options) as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        try:
            await session.commit()
        except (StaleDataError, IntegrityError) as exc:
            await session.rollback()
            raise concurrent_change() from exc


def concurrent_change() -> Conflict:
    return Conflict("the resource changed at the same moment; read it again and resend", code=ErrorCode.CONCURRENT_CHANGE)


def _lost_race(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """A race lost at an automatic flush inside a handler: the same 409 as one lost at commit."""
    return handle_app_error(request, concurrent_change())


lost_race_handlers = {StaleDataError: _lost_race, IntegrityError: _lost_race}


async def flush(session: AsyncSession) -> None:
    """Write what is pending now, so a lost race answers 409 here rather than at commit."""
    try:
        await session.flush()
    except (StaleDataError, IntegrityError) as exc:
        raise concurrent_change() from exc
