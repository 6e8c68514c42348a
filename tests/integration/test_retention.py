"""Retention against a real MariaDB (and, last, the services on a real
broker): the right rows go, a small batch at a time; the running totals
stay; nothing unprocessed, in the outbox or named by an idempotency key is
removed."""

from datetime import datetime, timedelta
from decimal import Decimal

from generator_service import generation
from generator_service import retention as order_retention
from generator_service import store as generator_store
from harness.processes import wait_until
from harness.tables import sql, sql_metrics
from order_pipeline.settings import Retention
from order_pipeline.times import utc_now
from processor_service import processing
from processor_service import retention as result_retention
from processor_service import store as processor_store
from processor_service.processing import ProcessingResult, metrics_as_dict
from tests.support.services import InProcessServices, wait_processed

NOW = datetime(2026, 12, 7, 12, 0, 0)
OLD = NOW - timedelta(days=10)
RECENT = NOW - timedelta(days=1)
KEEP_7_DAYS_IN_3S = Retention(days=7, batch_size=3)


def add_orders(db, count, created_at):
    """`count` orders created at `created_at`, their events delivered (no
    outbox row); their ids."""
    with db.get_session() as session:
        generator_store.seed_state(session, running=True)
        ids = [row.id for row in generator_store.add_orders(session, [5] * count, created_at)]
        generator_store.clear_outbox(session, ids)
    return ids


def order_ids(db):
    return [row[0] for row in sql(db.uri, "SELECT id FROM orders ORDER BY id")]


def orders_created(db):
    with db.get_session() as session:
        return generator_store.orders_created(session)


class Processor:
    """The processor's answer to `processed_order_ids`, for the orders it has
    processed; records each call (one per batch)."""

    def __init__(self, processed):
        self.processed = set(processed)
        self.calls = []

    def processed_ids(self, ids):
        self.calls.append(list(ids))
        return [i for i in ids if i in self.processed]


def test_processed_old_orders_go_in_small_batches_and_the_rest_stay(db):
    old = add_orders(db, 8, OLD)
    recent = add_orders(db, 2, RECENT)
    unprocessed = old[-1]
    with db.get_session() as session:  # an old order whose event never went out
        waiting = generator_store.add_order(session, 4, OLD).id
    keyed, created = generation.create_order_once(db, 6, "a-key-still-remembered", now=OLD)
    assert created
    with db.get_session() as session:  # its event went out: only its key holds it
        generator_store.clear_outbox(session, [keyed["id"]])
    processor = Processor([*old[:-1], *recent, waiting, keyed["id"]])
    created_before = orders_created(db)

    report = order_retention.prune_orders(db, processor.processed_ids, KEEP_7_DAYS_IN_3S, now=NOW)

    assert report.deleted == 7
    assert order_ids(db) == sorted([unprocessed, *recent, waiting, keyed["id"]])
    # Only old orders with no outbox row and no key were asked about, three
    # at a time: 8 candidates make three batches.
    assert processor.calls == [old[0:3], old[3:6], old[6:8]]
    assert report.batches == 3 and report.kept == 1
    assert sql(db.uri, "SELECT order_id FROM order_outbox") == [(waiting,)]
    assert orders_created(db) == created_before == 12


def test_a_second_pass_finds_what_the_processor_confirmed_since(db):
    old = add_orders(db, 4, OLD)
    processor = Processor(old[:2])
    order_retention.prune_orders(db, processor.processed_ids, KEEP_7_DAYS_IN_3S, now=NOW)
    assert order_ids(db) == old[2:]
    processor.processed.update(old[2:])
    report = order_retention.prune_orders(db, processor.processed_ids, KEEP_7_DAYS_IN_3S, now=NOW)
    assert (report.deleted, order_ids(db)) == (2, [])


def add_results(db, first_id, count, processed_at):
    """Results for orders first_id.. (no orders: the processor's tables
    alone), prices first_id.01 and up; their ids."""
    results = [
        ProcessingResult(i, Decimal("10.0000"), Decimal(f"{i}.{i % 100:02d}"), processed_at, None)
        for i in range(first_id, first_id + count)
    ]
    processing.store_results(db, results)
    return [result.order_id for result in results]


def processor_metrics(db):
    with db.get_session() as session:
        return metrics_as_dict(*processor_store.totals(session))


def result_ids(db):
    return [row[0] for row in sql(db.uri, "SELECT order_id FROM order_process ORDER BY order_id")]


def test_old_results_go_once_their_orders_are_gone_and_the_totals_stay(db):
    old = add_results(db, 1, 7, OLD)
    recent = add_results(db, 100, 2, RECENT)
    still_ordered = old[:2]  # the generator still has these orders
    metrics = processor_metrics(db)
    asked = []

    def existing_ids(ids):
        asked.append(list(ids))
        return [i for i in ids if i in still_ordered]

    report = result_retention.prune_results(db, existing_ids, KEEP_7_DAYS_IN_3S, now=NOW)

    assert result_ids(db) == [*still_ordered, *recent]
    assert asked == [old[0:3], old[3:6], old[6:7]]
    assert (report.batches, report.deleted, report.kept) == (3, 5, 2)
    # /metrics reads the running totals: unchanged, and still equal to SQL,
    # which now counts order_process and what retention deleted from it.
    assert processor_metrics(db) == metrics == sql_metrics(db.uri)
    assert metrics["total_orders_processed"] == 9
    deleted = sum(Decimal(f"{i}.{i:02d}") for i in old[2:])
    assert sql(db.uri, "SELECT orders, execution_price_sum FROM pruned_results") == [(5, deleted)]


def test_pruning_twice_at_once_counts_each_result_once(db):
    add_results(db, 1, 6, OLD)
    metrics = processor_metrics(db)
    with db.get_session() as session:  # another processor's pass, mid-way
        assert processor_store.delete_results(session, [1, 2, 3], NOW) == 3
        assert processor_store.delete_results(session, [2, 3, 4], NOW) == 1
    result_retention.prune_results(db, lambda ids: [], KEEP_7_DAYS_IN_3S, now=NOW)
    assert result_ids(db) == []
    assert processor_metrics(db) == metrics == sql_metrics(db.uri)


def test_the_services_prune_their_own_tables_and_metrics_stay(db, db_uri, amqp_uri):
    with InProcessServices(
        db_uri,
        amqp_uri,
        ORDER_RETENTION_DAYS=2,
        RESULT_RETENTION_DAYS=2,
        RETENTION_INTERVAL_SECONDS=1,
        RETENTION_BATCH_SIZE=2,
    ) as services:
        services.start("generator", "processor")
        with services.rpc() as rpc:
            rpc.order_generator.create_orders([3, 1, 4, 1, 5])
            wait_processed(services)
            metrics = rpc.order_processor.metrics()
            # An order the processor never stored (its event dead-lettered,
            # say), older than all: the first every pass looks at.
            (unprocessed,) = add_orders(db, 1, utc_now() - timedelta(days=5))
            # Three days pass for the rest.
            sql(
                db_uri,
                "UPDATE orders SET created_at = created_at - INTERVAL 3 DAY WHERE id <> :id",
                id=unprocessed,
            )
            sql(db_uri, "UPDATE order_process SET processed_at = processed_at - INTERVAL 3 DAY")
            wait_until(
                lambda: order_ids(db) == [unprocessed] and result_ids(db) == [],
                30,
                message="the processed orders and their results deleted",
            )
            assert rpc.order_processor.metrics() == metrics == sql_metrics(db_uri)
            assert rpc.order_generator.status()["orders_created"] == 6


def test_a_results_pass_stops_where_the_generator_has_not_got_to(db):
    old = add_results(db, 1, 9, OLD)
    asked = []

    def existing_ids(ids):  # the generator has deleted only the first three orders
        asked.append(list(ids))
        return [i for i in ids if i not in old[:3]]

    report = result_retention.prune_results(db, existing_ids, KEEP_7_DAYS_IN_3S, now=NOW)
    assert (report.deleted, result_ids(db)) == (3, old[3:])
    # The second batch deleted nothing: the third was not read.
    assert asked == [old[0:3], old[3:6]]
