"""order_pipeline.transactions: which errors run a transaction again, and
what a connection lost during COMMIT does, with a fake session (the real
deadlocks and killed connections are in tests/integration/test_transactions.py)."""

import pymysql.err
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from order_pipeline import transactions
from order_pipeline.transactions import (
    CommitOutcomeUnknown,
    TransactionFailed,
    is_connection_lost,
    is_rolled_back,
    is_transient,
    mysql_error_code,
    run_transaction,
)


def error(code, cls=OperationalError, driver=pymysql.err.OperationalError):
    return cls("COMMIT", {}, driver(code, "message"))


@pytest.mark.parametrize("code", [1213, 1205, 1047])
def test_rolled_back_errors_run_again(code):
    assert mysql_error_code(error(code)) == code
    assert is_rolled_back(error(code)) and is_transient(error(code))
    assert not is_connection_lost(error(code))


@pytest.mark.parametrize("code", [2006, 2013, 2003, 4031, 1927, 1053, 2055])
def test_lost_connections_run_again(code):
    assert is_connection_lost(error(code)) and is_transient(error(code))
    assert not is_rolled_back(error(code))


@pytest.mark.parametrize(
    "failure",
    [
        error(1062, IntegrityError, pymysql.err.IntegrityError),  # duplicate key
        error(1146, driver=pymysql.err.ProgrammingError),  # no such table
        error(1054),  # unknown column
        ValueError("not a database error"),
    ],
)
def test_other_errors_do_not(failure):
    assert not is_transient(failure)


def test_an_invalidated_connection_counts_as_lost():
    lost = OperationalError("SELECT 1", {}, pymysql.err.OperationalError(0, ""))
    lost.connection_invalidated = True
    assert is_connection_lost(lost)


def test_the_pause_grows_and_is_capped():
    class Top:
        def uniform(self, low, high):
            return high

    pauses = [transactions.backoff_seconds(n, Top()) for n in range(1, 10)]
    assert pauses == sorted(pauses) and pauses[0] == transactions.FIRST_PAUSE_SECONDS
    assert pauses[-1] == transactions.MAX_PAUSE_SECONDS


class FakeSession:
    """Records its calls; commit raises what the Db scripts for it."""

    def __init__(self, db):
        self.db = db

    def flush(self):
        pass

    def commit(self):
        failure = self.db.commit_failures.pop(0) if self.db.commit_failures else None
        if failure is None:
            self.db.committed += 1
        elif failure == "applied-then-lost":
            self.db.committed += 1
            raise error(2013)
        else:
            raise failure

    def rollback(self):
        self.db.rollbacks += 1

    def invalidate(self):
        self.db.invalidated += 1

    def close(self):
        pass

    def execute(self, *args, **kwargs):
        return self

    def first(self):
        return ("wsrep_sync_wait", "0")


class FakeDb:
    def __init__(self, *commit_failures):
        self.commit_failures = list(commit_failures)
        self.committed = self.rollbacks = self.invalidated = 0

    def get_session(self):
        return FakeSession(self)


def no_sleep(seconds):
    pass


def test_a_deadlock_at_commit_runs_the_work_again_and_commits_once():
    db, runs = FakeDb(error(1213)), []
    assert run_transaction(db, lambda s: runs.append(1) or "done", sleep=no_sleep) == "done"
    assert (len(runs), db.committed, db.rollbacks) == (2, 1, 1)


def test_a_lost_connection_in_the_work_drops_the_connection_and_runs_again():
    db, runs = FakeDb(), []

    def work(session):
        runs.append(1)
        if len(runs) == 1:
            raise error(2006)
        return "done"

    assert run_transaction(db, work, sleep=no_sleep) == "done"
    assert (len(runs), db.committed, db.invalidated) == (2, 1, 1)


def test_attempts_are_bounded():
    db = FakeDb(*[error(1213)] * 3)
    with pytest.raises(TransactionFailed, match="3 attempts"):
        run_transaction(db, lambda s: None, attempts=3, sleep=no_sleep)
    assert db.committed == 0


def test_other_errors_are_raised_at_once():
    db = FakeDb()

    def work(session):
        raise error(1062, IntegrityError, pymysql.err.IntegrityError)

    with pytest.raises(IntegrityError):
        run_transaction(db, work, sleep=no_sleep)
    assert db.rollbacks == 1


def test_a_commit_lost_without_a_way_to_tell_raises_commit_outcome_unknown():
    db, runs = FakeDb("applied-then-lost"), []
    with pytest.raises(CommitOutcomeUnknown):
        run_transaction(db, lambda s: runs.append(1), sleep=no_sleep)
    assert len(runs) == 1


def test_a_lost_commit_of_idempotent_work_runs_it_again():
    db, runs = FakeDb("applied-then-lost"), []
    run_transaction(db, lambda s: runs.append(1), retry_unknown_commit=True, sleep=no_sleep)
    assert len(runs) == 2


def test_a_lost_commit_that_was_applied_is_recovered_not_run_again():
    db, runs = FakeDb("applied-then-lost"), []
    result = run_transaction(
        db, lambda s: runs.append(1) or "new", recover=lambda s: "found", sleep=no_sleep
    )
    assert (result, len(runs), db.committed) == ("found", 1, 2)  # 2: the recovery's own


def test_a_lost_commit_that_was_not_applied_runs_again():
    db, runs = FakeDb(error(2013)), []
    result = run_transaction(
        db, lambda s: runs.append(1) or "new", recover=lambda s: None, sleep=no_sleep
    )
    assert (result, len(runs)) == ("new", 2)
