"""Run a database transaction again, whole, when the database says it may.

On a Galera cluster behind one address (HAProxy) a transaction can fail for
reasons that say nothing about the work: another node's write set won
certification (1213, reported like a deadlock), a lock wait ran out (1205),
the node is not part of the primary component (1047), or the node died and
took the connection with it. `run_transaction(db, work)` runs
`work(session)` in a transaction of its own and, for those errors, rolls
back and runs it again from the start in a new transaction, a bounded
number of times with a short jittered pause: never half-applied, since the
database rolled the failed attempt back.

One failure is ambiguous: the connection lost during COMMIT. The commit may
have been applied (the answer was lost) or not. What to do then depends on
the work, so the caller says it:

- `retry_unknown_commit=True`: running the work twice does no harm (it
  skips what is already stored, or deletes what is already gone).
- `recover=find(session) -> result or None`: the work leaves a mark it can
  look for (a token stored with its rows); `find` runs in a new transaction,
  with Galera's causal reads on, and returns the first attempt's result if
  it was applied, or None to run the work again.
- neither: CommitOutcomeUnknown is raised, and the caller must not assume
  either outcome.
"""

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

log = logging.getLogger(__name__)

T = TypeVar("T")

# MySQL/MariaDB error codes, by what running the transaction again means.
DUPLICATE_KEY = 1062
DEADLOCK = 1213  # also Galera's certification conflict ("WSREP detected deadlock/conflict")
LOCK_WAIT_TIMEOUT = 1205
WSREP_NOT_READY = 1047  # "WSREP has not yet prepared node for application use"
ROLLED_BACK = frozenset({DEADLOCK, LOCK_WAIT_TIMEOUT, WSREP_NOT_READY})
CONNECTION_LOST = frozenset(
    {
        1053,  # server shutdown in progress
        1927,  # connection was killed (MariaDB)
        2003,  # can't connect (the node is down; nothing was sent)
        2006,  # server has gone away
        2013,  # lost connection during query
        2055,  # lost connection (system error)
        4031,  # disconnected by the server for inactivity
    }
)

DEFAULT_ATTEMPTS = 5
FIRST_PAUSE_SECONDS = 0.05
MAX_PAUSE_SECONDS = 1.0


class Sessions:
    """`get_session()`, as nameko-sqlalchemy's `db` offers it, for code that
    holds a session factory (`Sessions(make_session)`) or an engine
    (`Sessions.of_engine(engine)`) instead."""

    def __init__(self, make_session: Callable):
        self.make_session = make_session

    @classmethod
    def of_engine(cls, engine) -> "Sessions":
        return cls(sessionmaker(bind=engine))

    def get_session(self):
        return self.make_session()


class TransactionFailed(Exception):
    """A transient error (deadlock, certification conflict, lost
    connection...) came back on every attempt; nothing was applied."""


class CommitOutcomeUnknown(Exception):
    """The connection was lost during COMMIT, and the work can neither be
    run twice safely nor tell whether it was applied: it may or may not
    have been."""


def mysql_error_code(error: BaseException) -> int | None:
    """The server's (or client library's) error number behind a SQLAlchemy
    or PyMySQL error, or None."""
    original = getattr(error, "orig", error)
    args = getattr(original, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def is_duplicate_key(error: BaseException) -> bool:
    """A unique key refused the row: it is there already."""
    return mysql_error_code(error) == DUPLICATE_KEY


def is_rolled_back(error: BaseException) -> bool:
    """The database rolled the transaction back and it can run again:
    deadlock or certification conflict, lock wait timeout, node not ready."""
    return isinstance(error, DBAPIError) and mysql_error_code(error) in ROLLED_BACK


def is_connection_lost(error: BaseException) -> bool:
    """The connection is gone; the transaction did not commit, unless this
    happened during COMMIT itself."""
    if not isinstance(error, DBAPIError):
        return False
    return error.connection_invalidated or mysql_error_code(error) in CONNECTION_LOST


def is_transient(error: BaseException) -> bool:
    """Worth running the whole transaction again."""
    return is_rolled_back(error) or is_connection_lost(error)


def backoff_seconds(attempt: int, rng=random) -> float:
    """Pause before attempt `attempt + 1`: full jitter over an exponential
    ceiling, so transactions that collided do not collide again in step."""
    ceiling = min(MAX_PAUSE_SECONDS, FIRST_PAUSE_SECONDS * 2 ** (attempt - 1))
    return rng.uniform(0, ceiling)


def run_transaction(
    db,
    work: Callable,
    *,
    name: str = "transaction",
    attempts: int = DEFAULT_ATTEMPTS,
    retry_unknown_commit: bool = False,
    recover: Callable | None = None,
    sleep: Callable[[float], None] = time.sleep,
):
    """`work(session)` in a transaction of `db.get_session()`, committed;
    its result. Run whole again on a transient error (see the module's
    docstring for a connection lost during COMMIT); other errors are raised
    as they are, after a rollback."""
    for attempt in range(1, attempts + 1):
        try:
            return _attempt(db, work, retry_unknown_commit, recover)
        except _Again as again:
            error = again.error
        if attempt == attempts:
            raise TransactionFailed(
                f"{name}: gave up after {attempts} attempts: {_describe(error)}"
            ) from error
        pause = backoff_seconds(attempt)
        log.warning(
            "%s: %s; running it again in %.3f s (attempt %d of %d)",
            name,
            _describe(error),
            pause,
            attempt + 1,
            attempts,
        )
        sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


class _Again(Exception):
    def __init__(self, error):
        self.error = error


def _attempt(db, work, retry_unknown_commit, recover):
    session = db.get_session()
    try:
        try:
            result = work(session)
            session.flush()
        except DBAPIError as error:
            _discard(session, error)
            if is_transient(error):
                raise _Again(error) from error
            raise
        except BaseException:
            session.rollback()
            raise
        try:
            session.commit()
        except DBAPIError as error:
            _discard(session, error)
            if is_rolled_back(error):  # certification failed: not applied
                raise _Again(error) from error
            if not is_connection_lost(error):
                raise
            if retry_unknown_commit:
                raise _Again(error) from error
            if recover is None:
                raise CommitOutcomeUnknown(
                    f"the connection was lost during COMMIT ({_describe(error)})"
                ) from error
            found = _find_applied(db, recover)
            if found is not None:
                return found
            raise _Again(error) from error
        return result
    finally:
        session.close()


def _find_applied(db, recover):
    """recover(session) in a transaction that reads everything the cluster
    has committed so far (wsrep_sync_wait; a no-op without Galera)."""

    def causal_read(session):
        # Absent on MySQL without Galera: nothing to wait for there.
        row = session.execute(text("SHOW SESSION VARIABLES LIKE 'wsrep_sync_wait'")).first()
        if row is None:
            return recover(session)
        previous = int(row[1])
        session.execute(text("SET SESSION wsrep_sync_wait = :on"), {"on": previous | 1})
        try:
            return recover(session)
        finally:
            session.execute(text("SET SESSION wsrep_sync_wait = :was"), {"was": previous})

    return run_transaction(db, causal_read, name="finding a commit's outcome")


def _discard(session, error):
    """Roll back, and drop a connection that cannot be trusted any more: a
    lost one, or one to a node that is not ready (the pool would hand it out
    again; a new connection may reach a live node through the proxy)."""
    if is_connection_lost(error) or mysql_error_code(error) == WSREP_NOT_READY:
        session.invalidate()
    else:
        try:
            session.rollback()
        except DBAPIError:
            session.invalidate()


def _describe(error) -> str:
    code = mysql_error_code(error)
    original = getattr(error, "orig", error)
    return f"{type(original).__name__} {code}: {original}" if code else repr(original)
