"""Transactions run again whole against the real MariaDB: a real deadlock,
a connection killed between a transaction's statements, a connection lost
during COMMIT, and auto-increment ids stepped as Galera steps them.

Galera's own failures (certification conflicts, a node leaving) come back
as the same error codes, tested on the real cluster in tests/cluster.
"""

import logging
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal

import pymysql.err
import pytest
from nameko_sqlalchemy.database import Session
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from generator_service import generation, store
from harness.processes import wait_until
from harness.tables import sql, sql_metrics
from order_contract import ORDER_CREATED
from order_pipeline.times import utc_now
from order_pipeline.transactions import run_transaction
from processor_service import processing
from processor_service import store as processor_store
from processor_service.processing import ProcessingResult

from .conftest import SessionFactory
from .test_generator_store import SETTINGS, RecordingPublisher, lock_waits, outbox

RETRIES = "order_pipeline.transactions"


@pytest.fixture(autouse=True)
def seeded_state(db):
    with db.get_session() as session:
        store.seed_state(session, running=True)


def orders(db):
    return [tuple(row) for row in sql(db.uri, "SELECT id, quantity FROM orders ORDER BY id")]


def orders_created(db):
    with db.get_session() as session:
        return store.orders_created(session)


def retried_with(caplog, code):
    return [r for r in caplog.records if r.name == RETRIES and f" {code}:" in r.getMessage()]


@pytest.fixture
def blocker(db):
    """A connection of the test's own, its transaction left open."""
    engine = create_engine(db.uri)
    connection = engine.connect()
    yield connection
    connection.close()
    engine.dispose()


def waiting_connection_id(db):
    """The connection id of this database's one transaction in LOCK WAIT."""
    ((thread_id,),) = sql(
        db.uri,
        "SELECT t.trx_mysql_thread_id FROM information_schema.INNODB_TRX t "
        "JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id "
        "WHERE t.trx_state = 'LOCK WAIT' AND p.DB = DATABASE()",
    )
    return thread_id


def test_a_create_chosen_as_a_deadlock_victim_runs_again_and_is_stored_once(
    db, blocker, monkeypatch, caplog
):
    caplog.set_level(logging.WARNING, logger=RETRIES)
    monkeypatch.setattr(store, "pick_count_shard", lambda: 0)
    # The blocker writes every count shard (heavier than a create, so the
    # create is the victim InnoDB picks)...
    blocker.execute(text("UPDATE order_counts SET orders_created = orders_created + 1"))
    with ThreadPoolExecutor(1) as pool:
        create = pool.submit(generation.create_order, db, 7)
        # ...the create has inserted its order and outbox row and waits for shard 0...
        wait_until(lambda: lock_waits(db) == 1, 30, message="the create waiting on shard 0")
        # ...and the blocker now waits for the create's outbox row: a deadlock.
        blocker.execute(text("SELECT * FROM order_outbox FOR UPDATE")).all()
        blocker.rollback()  # let the create's second attempt through
        order = create.result(timeout=60)
    assert len(retried_with(caplog, 1213)) == 1
    assert orders(db) == [(order["id"], 7)]
    assert outbox(db) == [order["id"]]
    assert orders_created(db) == 1


def test_a_connection_killed_between_statements_runs_the_whole_transaction_again(
    db, blocker, monkeypatch, caplog
):
    caplog.set_level(logging.WARNING, logger=RETRIES)
    monkeypatch.setattr(store, "pick_count_shard", lambda: 0)
    blocker.execute(text("UPDATE order_counts SET orders_created = 0 WHERE shard = 0"))
    with ThreadPoolExecutor(1) as pool:
        create = pool.submit(generation.create_orders, db, [3, 4])
        # Orders and outbox rows inserted, the count not yet: kill it there.
        wait_until(lambda: lock_waits(db) == 1, 30, message="the create waiting on shard 0")
        sql(db.uri, f"KILL {int(waiting_connection_id(db))}")
        wait_until(lambda: retried_with(caplog, 1927) or retried_with(caplog, 2013), 30)
        blocker.rollback()
        created = create.result(timeout=60)
    ids = [order["id"] for order in created]
    # The killed attempt's rows are gone with its transaction; the second's are all there.
    assert orders(db) == [(ids[0], 3), (ids[1], 4)]
    assert outbox(db) == ids
    assert orders_created(db) == 2


# --- a connection lost during COMMIT ----------------------------------------------------


def lost_connection():
    return OperationalError(
        "COMMIT", {}, pymysql.err.OperationalError(2013, "Lost connection during query")
    )


class CommitAnswerLost(Session):
    """A session whose next commits, as `plan` says, lose their connection:
    "applied" after the commit is applied (its answer lost), "not applied"
    before it."""

    plan: list = []

    def commit(self):
        step = self.plan.pop(0) if self.plan else None
        if step == "not applied":
            self.rollback()
            raise lost_connection()
        super().commit()
        if step == "applied":
            raise lost_connection()


@pytest.fixture
def lossy(db):
    """`db` whose commits lose their connection as `lossy.plan` says."""

    class Lossy:
        uri = db.uri
        plan = []

        def get_session(self):
            session_class = type("Planned", (CommitAnswerLost,), {"plan": self.plan})
            return sessionmaker(bind=db.engine, class_=session_class)()

    return Lossy()


@pytest.mark.parametrize("outcome", ["applied", "not applied"])
def test_orders_whose_commit_answer_is_lost_are_created_once(lossy, outcome):
    lossy.plan.append(outcome)
    created = generation.create_orders(lossy, [5, 6, 7])
    assert orders(lossy) == [(order["id"], order["quantity"]) for order in created]
    assert [order["quantity"] for order in created] == [5, 6, 7]
    assert outbox(lossy) == [order["id"] for order in created]
    assert orders_created(lossy) == 3
    assert lossy.plan == []


def test_a_tick_whose_commit_answer_is_lost_creates_its_orders_once(lossy):
    lossy.plan.append("applied")
    created = generation.generate_tick(lossy, SETTINGS, random.Random(1))
    assert len(created) == 1 and orders(lossy) == [(created[0]["id"], created[0]["quantity"])]


def test_a_keyed_create_whose_commit_answer_is_lost_reports_it_created(lossy):
    lossy.plan.append("applied")
    order, created = generation.create_order_once(lossy, 5, "lost-answer")
    assert created is True and orders(lossy) == [(order["id"], 5)]
    assert generation.create_order_once(lossy, 5, "lost-answer") == (order, False)


def test_results_whose_commit_answer_is_lost_are_stored_and_reported_once(lossy):
    order_ids = [order["id"] for order in generation.create_orders(lossy, [1, 2])]
    moment = datetime(2026, 1, 1, 0, 0, 0, 123456)
    results = [ProcessingResult(i, Decimal("1.5"), Decimal("3.00"), moment) for i in order_ids]
    lossy.plan.append("applied")
    assert processing.store_results(lossy, results) == results
    assert sql_metrics(lossy.uri) == {
        "total_orders_processed": 2,
        "average_execution_price": "3.00",
    }
    with lossy.get_session() as session:
        assert processor_store.totals(session) == (2, Decimal("6.00"))


def test_an_outbox_pass_that_loses_a_conflict_runs_again_and_loses_no_event(db, lossy):
    """As when a publisher on another Galera node took the same rows: the
    commit fails certification (1213). The pass runs again; the events go
    out twice (the processor stores each order once), none is lost."""
    ids = [order["id"] for order in generation.create_orders(db, [1, 2, 3])]
    conflict = OperationalError("COMMIT", {}, pymysql.err.OperationalError(1213, "conflict"))

    class LosesCertification(CommitAnswerLost):
        def commit(self):
            if lossy.plan:
                lossy.plan.pop(0)
                self.rollback()
                raise conflict
            super().commit()

    lossy.get_session = lambda: sessionmaker(bind=db.engine, class_=LosesCertification)()
    lossy.plan.append("conflict")
    publish = RecordingPublisher()
    assert generation.publish_outbox(lossy, publish) == (3, 3)
    sent = [payload["order_id"] for _, payload in publish.published]
    assert sent == ids + ids
    assert {event for event, _ in publish.published} == {ORDER_CREATED}
    assert outbox(db) == []


# --- ids stepped by the cluster size --------------------------------------------------


@pytest.fixture
def stepped(db_uri):
    """The test's database on connections whose auto-increment steps by 3
    from 2, as on the second node of a 3-node Galera cluster (session
    variables: the shared server's settings are left alone)."""
    factory = SessionFactory(db_uri)

    @event.listens_for(factory.engine, "connect")
    def step_ids(dbapi_connection, connection_record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET SESSION auto_increment_increment = 3, auto_increment_offset = 2")

    with factory.get_session() as session:
        store.seed_state(session, running=True)
    yield factory
    factory.engine.dispose()


def test_bulk_creates_read_their_stepped_ids_back(stepped):
    created = generation.create_orders(stepped, [5, 1, 9, 4])
    ids = [order["id"] for order in created]
    assert [b - a for a, b in zip(ids, ids[1:])] == [3, 3, 3]
    assert orders(stepped) == [(order["id"], order["quantity"]) for order in created]
    assert outbox(stepped) == ids
    single = generation.create_order(stepped, 2)
    keyed, _ = generation.create_order_once(stepped, 3, "stepped")
    assert orders(stepped)[-2:] == [(single["id"], 2), (keyed["id"], 3)]
    assert orders_created(stepped) == 6


def test_stepped_ids_are_processed_and_counted_in_every_shard(stepped):
    ids = [order["id"] for order in generation.create_orders(stepped, [1] * 32)]
    moment = utc_now()
    results = [ProcessingResult(i, Decimal("1"), Decimal(f"{i}.00"), moment) for i in ids]
    assert processing.store_results(stepped, results) == results
    assert processing.store_results(stepped, results) == []
    shards = sql(stepped.uri, "SELECT COUNT(*) FROM processing_totals WHERE orders_processed > 0")
    assert shards == [(16,)]
    with stepped.get_session() as session:
        assert processing.metrics_as_dict(*processor_store.totals(session)) == sql_metrics(
            stepped.uri
        )
        assert [order.id for order in store.get_orders(session, ids + [ids[-1] + 1])] == ids


def test_keys_expire_by_time_not_by_id(stepped):
    generation.create_order_once(stepped, 5, "old", now=utc_now() - timedelta(hours=25))
    generation.create_order_once(stepped, 5, "young")
    assert generation.forget_expired_keys(stepped) == 1


def test_a_lost_commit_is_looked_up_with_causal_reads(lossy):
    """Galera applies other nodes' write sets asynchronously: the lookup
    must wait for what the cluster has committed (wsrep_sync_wait), then
    leave the pooled connection as it found it."""

    def sync_wait(session):
        return session.scalar(text("SELECT @@SESSION.wsrep_sync_wait"))

    lossy.plan.append("applied")
    assert run_transaction(lossy, lambda session: None, recover=sync_wait) == 1
    assert run_transaction(lossy, sync_wait) == 0
