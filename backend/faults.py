"""Dependencies that fail: which part is down, one log line per outage, and a fast answer while it lasts.

- `DependencyUnavailable(part)` is what a call to the object store raises when the store does not answer in time
  (or answers 5xx); a database that cannot be reached is recognised by `database_unreachable(exc)`. Both become
  `503 service_unavailable` naming the part (`dependency`), with `Retry-After` (`backend/errors.py`).
- `Outage` follows one dependency as the requests see it: the first failure logs a warning with its cause, later
  failures are only counted, and the first success after them logs "recovered after N failures" once. A service
  whose database is down answers a hundred requests with a hundred 503s and two log lines, not a hundred tracebacks.
- While the object store is down, one call at a time goes to it to find out whether it is back (`Outage.admit`);
  the others answer 503 at once instead of each waiting out the store's timeouts.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time

import asyncpg
import sqlalchemy.exc

logger = logging.getLogger("backend.faults")

DATABASE, OBJECT_STORE = "database", "object_store"


class DependencyUnavailable(Exception):
    """A dependency (`database` or `object_store`) did not answer; the request may be retried later."""

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(detail)
        self.dependency = dependency
        self.detail = detail


class Outage:
    """The availability of one dependency, as the calls to it found it."""

    def __init__(self, name: str, *, trial_seconds: float = 60.0) -> None:
        self.name = name
        self.failures = 0  # failed calls since the dependency last answered; 0 while it is up
        self.trial_seconds = trial_seconds  # how long one call that tests a down dependency may take at most
        self._trial_until = 0.0
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self.failures > 0

    def failed(self, cause: BaseException | str) -> None:
        with self._lock:
            self.failures += 1
            first = self.failures == 1
            self._trial_until = 0.0  # the next call may test it again
        if first:
            reason = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
            logger.warning("%s unavailable: %s (further failures are counted until it answers again)", self.name, reason)

    def succeeded(self) -> None:
        if not self.failures:  # the common case, without the lock
            return
        with self._lock:
            failures, self.failures, self._trial_until = self.failures, 0, 0.0
        if failures:
            logger.warning("%s recovered after %d failures", self.name, failures)

    def admit(self) -> bool:
        """Whether a call may go to the dependency now: always while it is up; while it is down, one call at a time
        (a call that is refused counts as a failure)."""
        if not self.failures:
            return True
        with self._lock:
            now = time.monotonic()
            if now >= self._trial_until:
                self._trial_until = now + self.trial_seconds
                return True
            self.failures += 1
            return False


_NETWORK_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ENETDOWN,
    errno.EHOSTDOWN,
    errno.ETIMEDOUT,
    errno.EPIPE,
}
# SQLSTATE classes that mean "the server cannot serve now": 08 connection exception, 53 insufficient resources
# (too many connections), 57 operator intervention (shutting down, starting up, crashed).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")


def database_unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached (as opposed to a bug or a refused statement).

    Covers SQLAlchemy's OperationalError, InterfaceError, a connection it invalidated and its pool's TimeoutError;
    asyncpg's connection errors and SQLSTATEs of classes 08/53/57; and the OSErrors a failed connect raises (refused,
    reset, unreachable, timed out, a name that does not resolve). The object store's failures never get here raw:
    they arrive as `DependencyUnavailable`."""
    if isinstance(exc, sqlalchemy.exc.TimeoutError | sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    for error in (exc, getattr(exc, "orig", None)):
        if isinstance(error, asyncpg.exceptions.InterfaceError | asyncpg.exceptions.PostgresConnectionError):
            return True
        sqlstate = getattr(error, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES and sqlstate != "57014":  # 57014: cancelled
            return True
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return True
    # asyncio's connect to several addresses raises OSError("Multiple exceptions: ...") without an errno.
    return isinstance(exc, OSError) and (exc.errno in _NETWORK_ERRNOS or (exc.errno is None and "connect" in str(exc).lower()))
